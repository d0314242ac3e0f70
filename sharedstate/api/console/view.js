// @ts-check
// Building the page: elements, the JSON tree, the diff view, and the shared bits of every view.
import { ApiError } from "./api.js";
import { diff } from "./diff.js";
import { Num, Obj, tagOf } from "./ljson.js";

/**
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
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

/** @param {string} id */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

// replaceChildren() would print null as "null": optional parts are dropped instead.
/** @param {Element} node @param {...any} children */
export const fill = (node, ...children) =>
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));

/** @param {number | null | undefined} epochSeconds */
export function when(epochSeconds) {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

/** @param {number | null | undefined} size */
export function bytes(size) {
  if (size === null || size === undefined) return "?";
  if (size < 1000) return `${size} B`;
  if (size < 1e6) return `${(size / 1000).toFixed(1)} kB`;
  return `${(size / 1e6).toFixed(1)} MB`;
}

/** @param {unknown} error */
export function showError(error) {
  const alert = $("alert");
  alert.textContent = error instanceof Error ? error.message : String(error);
  alert.hidden = false;
}
export function clearError() { $("alert").hidden = true; $("alert").textContent = ""; }
/** @param {string} text */
export function notify(text) { $("notice").textContent = text; }

/**
 * Run an action, showing its error; a 401 signs out (console.js listens for the event).
 * @template T
 * @param {() => Promise<T>} action
 * @returns {Promise<T | undefined>}
 */
export async function guarded(action) {
  try { clearError(); return await action(); } catch (error) {
    showError(error);
    if (error instanceof ApiError && error.status === 401) window.dispatchEvent(new Event("sharedstate:unauthorized"));
    return undefined;
  }
}

/**
 * A modal that asks to type ``expect`` before ``ok`` is enabled; resolves true if confirmed.
 * @param {{ title: string, text: string, expect: string, label: string, ok: string }} options
 * @returns {Promise<boolean>}
 */
export function confirmTyped({ title, text, expect, label, ok }) {
  const dialog = /** @type {HTMLDialogElement} */ ($("confirm"));
  const input = /** @type {HTMLInputElement} */ ($("confirm-input"));
  const button = /** @type {HTMLButtonElement} */ ($("confirm-ok"));
  $("confirm-title").textContent = title; $("confirm-text").textContent = text;
  $("confirm-label").textContent = label; button.textContent = ok;
  input.value = ""; button.disabled = true;
  input.oninput = () => { button.disabled = input.value !== expect; };
  dialog.showModal(); input.focus();
  return new Promise((resolve) => {
    dialog.onclose = () => resolve(dialog.returnValue === "ok" && input.value === expect);
  });
}

/**
 * A collapsible tree of a JSON value (lossless trees too: sets and big ints show as what they
 * are); <details> keeps it keyboard- and screen-reader-friendly.
 * @param {unknown} value
 * @param {string | null} [label]
 * @returns {HTMLElement}
 */
export function tree(value, label = null, depth = 0) {
  const name = label === null ? [] : [h("span", { class: "key" }, label), ": "];
  const tag = value instanceof Obj ? tagOf(value) : null;
  if (tag && tag.kind !== "dict") {
    return h("details", { open: depth < 2 },
      h("summary", {}, ...name, h("span", { class: "type" }, tag.kind), ` {${tag.members.length}}`),
      h("ul", {}, tag.members.map((member) => h("li", {}, tree(member, null, depth + 1)))));
  }
  if (tag && tag.kind === "dict") value = tag.object;
  if (value instanceof Num) {
    const kind = value.unsafe ? "big int" : value.isFloat ? "float" : null;
    return h("span", {}, ...name, h("span", { class: "number" }, value.text), kind ? h("span", { class: "type" }, ` ${kind}`) : null);
  }
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((item, i) => [String(i), item])
      : value instanceof Obj ? value.entries : Object.entries(value);
    const kind = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
    return h("details", { open: depth < 2 },
      h("summary", {}, ...name, kind),
      h("ul", {}, entries.map(([key, item]) => h("li", {}, tree(item, key, depth + 1)))));
  }
  const type = value === null ? "null" : typeof value;
  return h("span", {}, ...name, h("span", { class: type }, JSON.stringify(value)));
}

/**
 * @param {unknown} before
 * @param {unknown} after
 * @param {[string, string]} labels
 */
export function diffView(before, after, labels) {
  const lines = diff(before, after);
  const changed = lines.some((line) => line.kind !== "same");
  return h("div", {},
    h("p", { class: "meta" }, `${labels[0]} → ${labels[1]}: ${changed ? "lines removed (−) and added (+)" : "no difference"}`),
    h("div", { class: "diff", role: "region", "aria-label": `Differences ${labels[0]} to ${labels[1]}`, tabindex: "0" },
      lines.map(({ kind, line }) => h("div", { class: kind === "same" ? "" : kind },
        `${kind === "add" ? "+" : kind === "del" ? "−" : " "} ${line}`))));
}
