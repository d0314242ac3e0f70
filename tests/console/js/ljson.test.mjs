// node --test: the console's lossless JSON (a value the user did not change is printed back as sent).
import assert from "node:assert/strict";
import test from "node:test";
import { Num, Obj, parse, stringify, tagOf } from "../../../sharedstate/api/console/ljson.js";

test("numbers keep their text: big ints, 1.0, exponents", () => {
  const text = '{"big":12345678901234567890123,"id":1234567890123456789,"ratio":1.0,"e":1e5,"neg":-0.5}';
  const value = parse(text);
  assert.equal(stringify(value), text);
  assert.ok(value instanceof Obj);
  assert.ok(/** @type {Num} */ (value.get("big")).unsafe);
  assert.ok(/** @type {Num} */ (value.get("ratio")).isFloat);
  assert.ok(!(/** @type {Num} */ (value.get("id")).isFloat));
});

test("key order and integer-like keys survive (a JS object would reorder them)", () => {
  const text = '{"b":1,"2":2,"a":[true,false,null,"x\\u00e9\\n"],"__proto__":{}}';
  assert.equal(stringify(parse(text)), '{"b":1,"2":2,"a":[true,false,null,"xé\\n"],"__proto__":{}}');
});

test("a repeated key keeps the last value, as Python does", () => {
  assert.equal(stringify(parse('{"a":1,"a":2}')), '{"a":2}');
});

test("indented output matches JSON.stringify for ordinary values", () => {
  const plain = { a: [1, 2, { b: "c" }], d: {}, e: [] };
  assert.equal(stringify(parse(JSON.stringify(plain)), 2), JSON.stringify(plain, null, 2));
  assert.equal(stringify(plain, 2), JSON.stringify(plain, null, 2));
});

test("tags are recognised, and only well-formed ones", () => {
  assert.equal(tagOf(parse('{"$set":[1,2]}'))?.kind, "set");
  assert.equal(tagOf(parse('{"$frozenset":["a"]}'))?.kind, "frozenset");
  assert.equal(tagOf(parse('{"$dict":{"$set":[1]}}'))?.kind, "dict");
  assert.equal(tagOf(parse('{"$set":5}')), null);
  assert.equal(tagOf(parse('{"$set":[1],"other":2}')), null);
});

test("invalid text is a SyntaxError naming the offset", () => {
  for (const bad of ["", "{", '{"a" 1}', "[1,]", "01", "NaN", '{"a":1} x', '"\\x"', "1.", "tru"]) {
    assert.throws(() => parse(bad), SyntaxError, bad);
  }
});
