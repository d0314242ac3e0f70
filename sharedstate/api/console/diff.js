// @ts-check
// Pure parts of the history view: a line diff of two values (removals before additions, as diff
// tools print them), and each version rebuilt from history.
import { stringify } from "./ljson.js";

/** @typedef {{ kind: "same" | "add" | "del" | "note", line: string }} DiffLine */

/**
 * Line diff of two JSON values (pretty-printed; lossless trees print their exact text), by
 * longest common subsequence.
 * @param {unknown} before
 * @param {unknown} after
 * @returns {DiffLine[]}
 */
export function diff(before, after) {
  const a = stringify(before, 2).split("\n");
  const b = stringify(after, 2).split("\n");
  const n = a.length, m = b.length;
  if (n * m > 4_000_000) return [{ kind: "note", line: "(too large to compare line by line)" }];
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  /** @type {DiffLine[]} */
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push({ kind: "same", line: a[i] }); i++; j++; }
    else if (j < m && (i >= n || lcs[i][j + 1] > lcs[i + 1][j])) { out.push({ kind: "add", line: b[j] }); j++; }
    else { out.push({ kind: "del", line: a[i] }); i++; }
  }
  return out;
}

/**
 * Rebuild each version's whole document from history entries (given newest first). A change
 * holds what it changed: an object payload updates an object (a put over an object only carries
 * the fields that changed), then its removed fields go; any other payload is the whole document.
 * A state is known from the first restore, delete or whole-value put on; before that, undefined.
 * @param {Array<{version: number, op: string, fields: any, removed: string[], omitted?: boolean}>} changesNewestFirst
 * @returns {Map<number, any>}
 */
export function replay(changesNewestFirst) {
  const states = new Map();
  /** @type {any} */
  let state;
  let known = false;
  const isObject = (/** @type {unknown} */ v) => v !== null && typeof v === "object" && !Array.isArray(v);
  for (const change of [...changesNewestFirst].reverse()) {
    if (change.omitted) known = false;
    else if (change.op === "restore") { state = change.fields; known = true; }
    else if (change.op === "delete") { state = null; known = true; }
    else if (change.op === "put" && !isObject(change.fields)) { state = change.fields; known = true; }
    else if (known) {
      state = { ...(isObject(state) ? state : {}), ...change.fields };
      for (const field of change.removed) delete state[field];
    }
    states.set(change.version, known ? structuredClone(state) : undefined);
  }
  return states;
}
