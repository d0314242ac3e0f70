// node --test: the history view's pure parts (line diff, replay of changes into versions).
import assert from "node:assert/strict";
import test from "node:test";
import { diff, replay } from "../../../sharedstate/api/console/diff.js";
import { parse } from "../../../sharedstate/api/console/ljson.js";

test("a line diff marks what was removed and added, in order", () => {
  const lines = diff({ a: 1, b: 2 }, { a: 1, b: 3 });
  assert.deepEqual(lines.map((l) => l.kind), ["same", "same", "del", "add", "same"]);
  assert.equal(lines[2].line, '  "b": 2');
  assert.equal(lines[3].line, '  "b": 3');
});

test("lossless values diff by their exact text (1 and 1.0 differ; big ints keep digits)", () => {
  const lines = diff(parse('{"x":1,"id":12345678901234567890}'), parse('{"x":1.0,"id":12345678901234567891}'));
  assert.deepEqual(lines.filter((l) => l.kind !== "same").map((l) => l.line),
    ['  "x": 1,', '  "id": 12345678901234567890', '  "x": 1.0,', '  "id": 12345678901234567891']);
});

test("equal values give no changed line", () => {
  assert.ok(diff({ a: [1, 2] }, { a: [1, 2] }).every((l) => l.kind === "same"));
});

test("replay rebuilds each version from a known state on", () => {
  const changes = [
    { version: 4, op: "delete_field", fields: {}, removed: ["b"] },
    { version: 3, op: "merge", fields: { b: 2 }, removed: [] },
    { version: 2, op: "set_field", fields: { a: 2 }, removed: [] },
    { version: 1, op: "restore", fields: { a: 1 }, removed: [] },
  ];
  const states = replay(changes);
  assert.deepEqual(states.get(1), { a: 1 });
  assert.deepEqual(states.get(3), { a: 2, b: 2 });
  assert.deepEqual(states.get(4), { a: 2 });
});

test("before a known state, and after an omitted entry, versions are unknown", () => {
  const states = replay([
    { version: 3, op: "merge", fields: { c: 1 }, removed: [] },
    { version: 2, op: "merge", fields: { b: 1 }, removed: [], omitted: true },
    { version: 1, op: "put", fields: [1, 2], removed: [] },
  ]);
  assert.deepEqual(states.get(1), [1, 2]);
  assert.equal(states.get(2), undefined);
  assert.equal(states.get(3), undefined);
});
