// @ts-check
// Lossless JSON for the console: numbers keep their text (an int beyond 2^53 every digit, 1.0
// stays 1.0) and objects their key order, so a value the user did not change is printed back
// exactly as the API sent it. The API's tagged dialect marks sets as {"$set": [...]}.

/** A JSON number, kept as its literal text. */
export class Num {
  /** @param {string} text */
  constructor(text) { this.text = text; }
  /** True for an integer literal that a JS number cannot hold exactly. */
  get unsafe() { return /^-?\d+$/.test(this.text) && !Number.isSafeInteger(Number(this.text)); }
  /** True for a literal with a fraction or exponent (a float in Python). */
  get isFloat() { return /[.eE]/.test(this.text); }
  toString() { return this.text; }
}

/** A JSON object, as its entries in order (keys may repeat in text; the last one wins, as in Python). */
export class Obj {
  /** @param {Array<[string, Value]>} entries */
  constructor(entries) {
    const last = new Map(entries.map(([key], index) => [key, index]));
    /** @type {Array<[string, Value]>} */
    this.entries = entries.filter(([key], index) => last.get(key) === index);
  }
  /** @param {string} key */
  get(key) { const found = this.entries.find(([k]) => k === key); return found ? found[1] : undefined; }
}

/** @typedef {null | boolean | string | Num | Obj | any[]} Value (arrays hold Values) */

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const SPACE = /[ \t\n\r]*/y;

/**
 * Parse JSON text into a lossless tree; SyntaxError (with the offset) on invalid text.
 * @param {string} text
 * @returns {Value}
 */
export function parse(text) {
  let at = 0;
  const fail = (/** @type {string} */ what) => { throw new SyntaxError(`${what} at offset ${at}`); };
  const skip = () => { SPACE.lastIndex = at; SPACE.exec(text); at = SPACE.lastIndex; };
  const match = (/** @type {RegExp} */ pattern) => {
    pattern.lastIndex = at;
    const found = pattern.exec(text);
    if (!found) return null;
    at = pattern.lastIndex;
    return found[0];
  };
  /** @returns {Value} */
  const value = () => {
    skip();
    const c = text[at];
    if (c === "{") {
      at++; skip();
      /** @type {Array<[string, Value]>} */
      const entries = [];
      if (text[at] === "}") { at++; return new Obj(entries); }
      for (;;) {
        skip();
        const key = match(STRING);
        if (key === null) fail("expected a string key");
        skip();
        if (text[at] !== ":") fail("expected ':'");
        at++;
        entries.push([JSON.parse(/** @type {string} */ (key)), value()]);
        skip();
        if (text[at] === ",") { at++; continue; }
        if (text[at] === "}") { at++; return new Obj(entries); }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++; skip();
      /** @type {Value[]} */
      const items = [];
      if (text[at] === "]") { at++; return items; }
      for (;;) {
        items.push(value());
        skip();
        if (text[at] === ",") { at++; continue; }
        if (text[at] === "]") { at++; return items; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') {
      const literal = match(STRING);
      if (literal === null) fail("invalid string");
      return JSON.parse(/** @type {string} */ (literal));
    }
    for (const [word, result] of /** @type {const} */ ([["true", true], ["false", false], ["null", null]])) {
      if (text.startsWith(word, at)) { at += word.length; return result; }
    }
    const number = match(NUMBER);
    if (number === null) fail(at >= text.length ? "unexpected end" : `unexpected ${JSON.stringify(c)}`);
    return new Num(/** @type {string} */ (number));
  };
  const result = value();
  skip();
  if (at < text.length) fail("unexpected text after the value");
  return result;
}

/**
 * JSON text of a lossless tree (or of a plain JS value), indented like JSON.stringify.
 * @param {unknown} value
 * @param {number} [indent]
 * @returns {string}
 */
export function stringify(value, indent = 0, depth = 0) {
  const pad = indent ? "\n" + " ".repeat(indent * (depth + 1)) : "";
  const end = indent ? "\n" + " ".repeat(indent * depth) : "";
  const colon = indent ? ": " : ":";
  if (value instanceof Num) return value.text;
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return "[" + value.map((item) => pad + stringify(item, indent, depth + 1)).join(",") + end + "]";
  }
  if (value instanceof Obj || (value !== null && typeof value === "object")) {
    const entries = value instanceof Obj ? value.entries : Object.entries(/** @type {object} */ (value));
    if (entries.length === 0) return "{}";
    return "{" + entries.map(([key, item]) => pad + JSON.stringify(key) + colon + stringify(item, indent, depth + 1)).join(",") + end + "}";
  }
  return JSON.stringify(value ?? null);
}

/**
 * What a tagged value stands for: a set or frozenset (with its members), a user's own object
 * escaped as {"$dict": {...}}, or null for anything else.
 * @param {Value} value
 * @returns {{kind: "set" | "frozenset", members: Value[]} | {kind: "dict", object: Obj} | null}
 */
export function tagOf(value) {
  if (!(value instanceof Obj) || value.entries.length !== 1) return null;
  const [key, inner] = value.entries[0];
  if ((key === "$set" || key === "$frozenset") && Array.isArray(inner))
    return { kind: key === "$set" ? "set" : "frozenset", members: inner };
  if (key === "$dict" && inner instanceof Obj) return { kind: "dict", object: inner };
  return null;
}
