// @ts-check
// The documents view: the list (paged), a document's tree, editing with If-Match, conflicts, history.
// Documents are read and written in the API's tagged dialect and parsed losslessly, so saving
// an edit of one field leaves every other value exactly as it was (sets, big ints, 1.0).
import { api, ApiError, can } from "../api.js";
import { replay } from "../diff.js";
import { Num, Obj, parse, stringify } from "../ljson.js";
import { $, bytes, clearError, confirmTyped, diffView, fill, guarded, h, notify, showError, tree, when } from "../view.js";

const PAGE = 500;

/** @typedef {{ name: string, version: number, updated_at: number, updated_by: string, data: import("../ljson.js").Value }} OpenDoc */

const state = {
  /** @type {any[]} */ docs: [],
  /** @type {string | null} */ next: null,
  /** @type {OpenDoc | null} */ open: null,
  editing: false,
  filter: "",
  /** @type {ReturnType<typeof setTimeout> | undefined} */ refreshTimer: undefined,
};

const path = (/** @type {string} */ name) => `/v1/docs/${encodeURIComponent(name)}`;
const number = (/** @type {unknown} */ value) => (value instanceof Num ? Number(value.text) : Number(value));

/** The envelope of a tagged read, parsed losslessly. @param {any} envelope @returns {OpenDoc} */
function opened(envelope) {
  const field = (/** @type {string} */ key) => (envelope instanceof Obj ? envelope.get(key) : undefined);
  return { name: String(field("name")), version: number(field("version")), updated_at: number(field("updated_at")),
    updated_by: String(field("updated_by")), data: field("data") ?? null };
}

export function leave() { state.editing = false; }

export async function viewDocs() {
  const search = h("input", { id: "search", type: "search", value: state.filter,
    oninput: (/** @type {Event} */ event) => { state.filter = /** @type {HTMLInputElement} */ (event.target).value; renderList(); } });
  fill($("view"), h("h2", {}, "Documents"),
    h("div", { class: "layout" },
      h("div", {}, h("label", { for: "search" }, "Search documents"), search, h("div", { id: "doclist", class: "scroll" })),
      h("div", { id: "docpanel", class: "panel" }, h("p", { class: "meta" }, "Choose a document."))));
  await loadDocs();
  if (state.open) await openDoc(state.open.name);
}

/** The first page again (after a change); ``more``: the next page, added to the list. */
export async function loadDocs(more = false) {
  await guarded(async () => {
    const query = `limit=${PAGE}` + (more && state.next ? `&after=${encodeURIComponent(state.next)}` : "");
    const page = await api("GET", `/v1/docs?${query}`);
    const link = page.headers.get("Link") || "";
    state.docs = more ? [...state.docs, ...page.data] : page.data;
    state.next = /rel="next"/.test(link) && page.data.length ? page.data[page.data.length - 1].name : null;
    renderList();
  });
}

function renderList() {
  const list = $("doclist");
  if (!list) return;
  const rows = state.docs.filter((doc) => doc.name.toLowerCase().includes(state.filter.toLowerCase()));
  const shown = state.next ? `${rows.length} of the first ${state.docs.length} documents` : `${rows.length} of ${state.docs.length} documents`;
  fill(list, h("table", {},
    h("caption", { class: "meta" }, shown),
    h("thead", {}, h("tr", {}, ["Name", "Version", "Size", "Last writer", "Changed"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((doc) => h("tr", { class: state.open && state.open.name === doc.name ? "selected" : "" },
      h("td", {}, h("button", { class: "link", type: "button", onclick: () => openDoc(doc.name) }, doc.name)),
      h("td", {}, doc.version), h("td", {}, bytes(doc.size)), h("td", {}, doc.updated_by), h("td", {}, when(doc.updated_at)))))),
    state.next ? h("button", { type: "button", class: "secondary", onclick: () => loadDocs(true) }, "Load more documents") : null);
}

/** @param {string} name */
async function read(name) {
  return opened((await api("GET", `${path(name)}?format=tagged`, { lossless: true })).data);
}

/** @param {string} name */
async function openDoc(name, quiet = false) {
  await guarded(async () => {
    state.open = await read(name); state.editing = false;
    if (!quiet) notify("");
    renderList(); renderDoc();
  });
}

function renderDoc() {
  const doc = state.open, panel = $("docpanel");
  if (!panel || !doc) return;
  const buttons = [h("button", { type: "button", class: "secondary", onclick: () => showHistory(doc.name) }, "History")];
  if (can("write")) {
    buttons.unshift(h("button", { type: "button", onclick: () => editDoc() }, "Edit"));
    buttons.push(h("button", { type: "button", class: "danger", onclick: () => deleteDoc() }, "Delete"));
  }
  fill(panel, h("h3", {}, doc.name),
    h("p", { class: "meta" }, `version ${doc.version} · ${doc.updated_by} · ${when(doc.updated_at)}`),
    h("div", { class: "actions" }, buttons), h("div", { class: "tree" }, tree(doc.data)));
}

/** @param {string | null} [text] */
function editDoc(text = null) {
  const doc = /** @type {OpenDoc} */ (state.open);
  state.editing = true;
  const status = h("p", { id: "validity", class: "valid", "aria-live": "polite" }, "Valid JSON");
  const save = /** @type {HTMLButtonElement} */ (h("button", { type: "button", onclick: () => saveDoc(editor.value, doc.version) }, "Save"));
  const editor = /** @type {HTMLTextAreaElement} */ (h("textarea", { id: "editor", spellcheck: "false", "aria-describedby": "dialect", oninput: () => {
    try { parse(editor.value); status.textContent = "Valid JSON"; status.className = "valid"; save.disabled = false; }
    catch (error) { status.textContent = `Invalid JSON: ${/** @type {Error} */ (error).message}`; status.className = "invalid"; save.disabled = true; }
  } }));
  // the text as the API sent it: values left alone are saved back exactly
  editor.value = text ?? stringify(doc.data, 2);
  fill($("docpanel"), h("h3", {}, `Editing ${doc.name}`),
    h("p", { class: "meta" }, `from version ${doc.version}: saved only if nobody changed it meanwhile`),
    h("label", { for: "editor" }, "Document JSON"), editor,
    h("p", { id: "dialect", class: "meta" }, 'Exact values: {"$set": [...]} is a set, {"$frozenset": [...]} a frozenset; numbers are kept as written.'),
    status,
    h("div", { class: "actions" }, save,
      h("button", { type: "button", class: "secondary", onclick: () => { state.editing = false; renderDoc(); } }, "Cancel")));
  editor.focus();
}

/** @param {string} text @param {number} version */
async function saveDoc(text, version) {
  const doc = /** @type {OpenDoc} */ (state.open);
  try {
    clearError();
    const written = await api("PUT", `${path(doc.name)}?format=tagged`, { body: text, headers: { "If-Match": `"${version}"` } });
    // our own write comes back on the live feed too: it is not someone else's change meanwhile
    state.editing = false;
    doc.version = written.data.version;
    notify(`Saved ${doc.name} as version ${written.data.version}`);
    await openDoc(doc.name, true); await loadDocs();
  } catch (error) {
    // awaited here so a failure while fetching their version (e.g. deleted meanwhile) is shown too
    if (error instanceof ApiError && error.status === 412) return await showConflict(text).catch(showError);
    showError(error);
  }
}

/** @param {string} mine */
async function showConflict(mine) {
  const open = /** @type {OpenDoc} */ (state.open);
  const theirs = await read(open.name);
  const panel = h("div", { class: "conflict", role: "region", "aria-label": "Conflict" },
    h("h3", {}, "Conflict: not saved"),
    h("p", {}, `${theirs.updated_by} saved version ${theirs.version} while you were editing version ${open.version}. Nothing was overwritten.`),
    diffView(theirs.data, parse(mine), [`their version ${theirs.version}`, "your edit"]),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", onclick: () => saveDoc(mine, theirs.version) }, `Overwrite version ${theirs.version} with mine`),
      h("button", { type: "button", class: "secondary", onclick: () => { state.open = theirs; editDoc(mine); } }, "Keep editing mine"),
      h("button", { type: "button", class: "secondary", onclick: () => { state.open = theirs; state.editing = false; renderDoc(); } }, "Discard mine")));
  $("docpanel").prepend(panel);
}

async function deleteDoc() {
  const doc = /** @type {OpenDoc} */ (state.open);
  const ok = await confirmTyped({ title: `Delete ${doc.name}?`, text: "The document goes; its history stays.",
    label: `Type ${doc.name} to confirm`, expect: doc.name, ok: "Delete" });
  if (!ok) return;
  await guarded(async () => {
    await api("DELETE", path(doc.name), { headers: { "If-Match": `"${doc.version}"` } });
    notify(`Deleted ${doc.name}`); state.open = null;
    fill($("docpanel"), h("p", { class: "meta" }, "Choose a document."));
    await loadDocs();
  });
}

/** @param {string} name */
async function showHistory(name) {
  await guarded(async () => {
    /** @type {any[]} */
    const changes = (await api("GET", `${path(name)}/history?limit=50`)).data;
    const states = replay(changes);
    const versions = changes.map((c) => c.version);
    const pick = (/** @type {string} */ id, /** @type {string} */ label, /** @type {number} */ index) => [h("label", { for: id }, label),
      h("select", { id }, versions.map((v, i) => h("option", { value: v, selected: i === index }, `version ${v}`)))];
    const output = h("div", { id: "history-diff" });
    const compare = () => {
      const a = Number(/** @type {HTMLSelectElement} */ ($("from")).value), b = Number(/** @type {HTMLSelectElement} */ ($("to")).value);
      const before = states.get(a), after = states.get(b);
      const fallback = (/** @type {number} */ v) => changes.find((c) => c.version === v)?.fields ?? null;
      const note = before === undefined || after === undefined
        ? h("p", { class: "meta" }, "A version older than the kept history is shown as its change only.") : null;
      fill(output, note, diffView(before === undefined ? fallback(a) : before,
        after === undefined ? fallback(b) : after, [`version ${a}`, `version ${b}`]));
    };
    fill($("docpanel"), h("h3", {}, `History of ${name}`),
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Version", "Change", "By", "When"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, changes.map((c) => h("tr", {}, h("td", {}, c.version),
          h("td", {}, c.op + (c.removed.length ? ` (${c.removed.join(", ")})` : "")), h("td", {}, c.writer), h("td", {}, when(c.time))))))),
      versions.length > 1 ? h("div", { class: "actions" }, ...pick("from", "From", 1), ...pick("to", "To", 0),
        h("button", { type: "button", onclick: compare }, "Compare")) : null,
      output,
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: () => openDoc(name) }, "Back to the document")));
  });
}

/** A change from the live feed. @param {{ name: string, version: number, op: string, writer: string }} change */
export function onChange(change) {
  if (location.hash === "#docs" || location.hash === "") {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(() => loadDocs(), 250);
  }
  if (state.open && state.open.name === change.name && change.version > state.open.version) {
    if (state.editing) notify(`${change.writer} saved version ${change.version} of ${change.name} meanwhile: saving will show a conflict`);
    else { openDoc(change.name, true); notify(`Live: ${change.name} is now version ${change.version} (${change.op} by ${change.writer})`); }
  }
}

/** What the live feed missed is gone (e.g. feed_trimmed): reload what is shown. */
export function onMissed() { if (location.hash === "#docs" || location.hash === "") loadDocs(); }
