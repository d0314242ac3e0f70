// Pure helpers of the console: element building, the JSON tree, a line diff, history replay.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function when(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function bytes(size) {
  if (size === null || size === undefined) return "?";
  if (size < 1000) return `${size} B`;
  if (size < 1e6) return `${(size / 1000).toFixed(1)} kB`;
  return `${(size / 1e6).toFixed(1)} MB`;
}

// A collapsible tree of a JSON value: <details> keeps it keyboard- and screen-reader-friendly.
export function tree(value, label = null, depth = 0) {
  const name = label === null ? [] : [h("span", { class: "key" }, label), ": "];
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((item, i) => [String(i), item]) : Object.entries(value);
    const kind = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
    return h("details", { open: depth < 2 },
      h("summary", {}, ...name, kind),
      h("ul", {}, entries.map(([key, item]) => h("li", {}, tree(item, key, depth + 1)))));
  }
  const type = value === null ? "null" : typeof value;
  return h("span", {}, ...name, h("span", { class: type }, JSON.stringify(value)));
}

// Line diff of two JSON values (pretty-printed), by longest common subsequence.
export function diff(before, after) {
  const a = JSON.stringify(before, null, 2).split("\n");
  const b = JSON.stringify(after, null, 2).split("\n");
  const n = a.length, m = b.length;
  if (n * m > 4_000_000) return [{ kind: "note", line: "(too large to compare line by line)" }];
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push({ kind: "same", line: a[i] }); i++; j++; }
    else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) { out.push({ kind: "add", line: b[j] }); j++; }
    else { out.push({ kind: "del", line: a[i] }); i++; }
  }
  return out;
}

export function diffView(before, after, labels) {
  const lines = diff(before, after);
  const changed = lines.some((line) => line.kind !== "same");
  return h("div", {},
    h("p", { class: "meta" }, `${labels[0]} → ${labels[1]}: ${changed ? "lines removed (−) and added (+)" : "no difference"}`),
    h("div", { class: "diff", role: "region", "aria-label": `Differences ${labels[0]} to ${labels[1]}`, tabindex: "0" },
      lines.map(({ kind, line }) => h("div", { class: kind === "same" ? "" : kind },
        `${kind === "add" ? "+" : kind === "del" ? "−" : " "} ${line}`))));
}

// Rebuild each version's whole document from history entries (oldest first). A change holds
// what it changed: an object payload updates an object (a put over an object only carries the
// fields that changed), then its removed fields go; any other payload is the whole document.
// A state is known from the first restore, delete or whole-value put on.
export function replay(changesNewestFirst) {
  const states = new Map();
  let state, known = false;
  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
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
