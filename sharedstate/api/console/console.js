// The sharedstate console: plain ES modules, no build step, nothing from a CDN.
import { bytes, diffView, h, replay, tree, when } from "./view.js";

const $ = (id) => document.getElementById(id);
// replaceChildren() would print null as "null": optional parts are dropped instead.
const fill = (node, ...children) => node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
const session = { token: sessionStorage.getItem("sharedstate-token"), role: null, events: null };
const state = { docs: [], open: null, editing: false, filter: "", refreshTimer: null };
const RANK = { read: 1, write: 2, admin: 3 };
const can = (role) => RANK[session.role] >= RANK[role];

class ApiError extends Error {
  constructor(status, body, headers) {
    const detail = body && typeof body === "object" ? body.detail : body;
    const text = typeof detail === "string" ? detail : JSON.stringify(detail);
    super(`${status} ${body && body.error ? body.error : "error"}: ${text}`);
    this.status = status; this.body = body; this.headers = headers;
  }
}

async function api(method, path, { body, headers = {} } = {}) {
  const options = { method, headers: { ...headers, Authorization: `Bearer ${session.token}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) throw new ApiError(response.status, data, response.headers);
  return { status: response.status, data, headers: response.headers };
}

function showError(error) {
  const alert = $("alert");
  alert.textContent = error instanceof Error ? error.message : String(error);
  alert.hidden = false;
}
function clearError() { $("alert").hidden = true; $("alert").textContent = ""; }
function notify(text) { $("notice").textContent = text; }

async function guarded(action) {
  try { clearError(); return await action(); } catch (error) {
    showError(error);
    if (error instanceof ApiError && error.status === 401) signOut();
  }
}

function confirmTyped({ title, text, expect, label, ok }) {
  const dialog = $("confirm"), input = $("confirm-input"), button = $("confirm-ok");
  $("confirm-title").textContent = title; $("confirm-text").textContent = text;
  $("confirm-label").textContent = label; button.textContent = ok;
  input.value = ""; button.disabled = true;
  input.oninput = () => { button.disabled = input.value !== expect; };
  dialog.showModal(); input.focus();
  return new Promise((resolve) => {
    dialog.onclose = () => resolve(dialog.returnValue === "ok" && input.value === expect);
  });
}

// -- signing in and the live feed ------------------------------------------------------------

async function signIn(token) {
  session.token = token;
  const who = await api("GET", "/v1/whoami");
  session.role = who.data.role;
  sessionStorage.setItem("sharedstate-token", token);
  $("who").textContent = `namespace ${who.data.namespace} · role ${session.role}`;
  for (const id of ["who", "nav", "signout", "view"]) $(id).hidden = false;
  $("signin").hidden = true;
  startEvents();
  route();
}

function signOut() {
  sessionStorage.removeItem("sharedstate-token");
  if (session.events) session.events.abort();
  Object.assign(session, { token: null, role: null, events: null });
  for (const id of ["who", "nav", "signout", "view"]) $(id).hidden = true;
  $("signin").hidden = false;
  fill($("view"), );
}

// EventSource cannot send an Authorization header: read the SSE stream with fetch instead.
async function startEvents(lastId = null) {
  const controller = new AbortController();
  session.events = controller;
  try {
    const headers = { Authorization: `Bearer ${session.token}` };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch("/v1/events", { headers, signal: controller.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const fields = Object.fromEntries(block.split("\n").filter((l) => !l.startsWith(":") && l.includes(": "))
          .map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]));
        if (fields.event === "change") { lastId = fields.id; onChange(JSON.parse(fields.data)); }
        // e.g. feed_trimmed: what we missed is gone from the feed, so start from now and reload
        if (fields.event === "error") { lastId = null; if (location.hash === "#docs" || location.hash === "") loadDocs(); }
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
  }
  if (session.events === controller) setTimeout(() => startEvents(lastId), 2000);
}

function onChange(change) {
  if (location.hash === "#docs" || location.hash === "") {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(() => loadDocs(), 250);
  }
  if (state.open && state.open.name === change.name && change.version > state.open.version) {
    if (state.editing) notify(`${change.writer} saved version ${change.version} of ${change.name} meanwhile: saving will show a conflict`);
    else { openDoc(change.name, true); notify(`Live: ${change.name} is now version ${change.version} (${change.op} by ${change.writer})`); }
  }
}

// -- documents --------------------------------------------------------------------------------

async function viewDocs() {
  const search = h("input", { id: "search", type: "search", value: state.filter,
    oninput: (event) => { state.filter = event.target.value; renderList(); } });
  fill($("view"), h("h2", {}, "Documents"),
    h("div", { class: "layout" },
      h("div", {}, h("label", { for: "search" }, "Search documents"), search, h("div", { id: "doclist", class: "scroll" })),
      h("div", { id: "docpanel", class: "panel" }, h("p", { class: "meta" }, "Choose a document."))));
  await loadDocs();
  if (state.open) await openDoc(state.open.name);
}

async function loadDocs() {
  await guarded(async () => { state.docs = (await api("GET", "/v1/docs")).data; renderList(); });
}

function renderList() {
  const list = $("doclist");
  if (!list) return;
  const rows = state.docs.filter((doc) => doc.name.toLowerCase().includes(state.filter.toLowerCase()));
  fill(list, h("table", {},
    h("caption", { class: "meta" }, `${rows.length} of ${state.docs.length} documents`),
    h("thead", {}, h("tr", {}, ["Name", "Version", "Size", "Last writer", "Changed"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((doc) => h("tr", { class: state.open && state.open.name === doc.name ? "selected" : "" },
      h("td", {}, h("button", { class: "link", type: "button", onclick: () => openDoc(doc.name) }, doc.name)),
      h("td", {}, doc.version), h("td", {}, bytes(doc.size)), h("td", {}, doc.updated_by), h("td", {}, when(doc.updated_at)))))));
}

async function openDoc(name, quiet = false) {
  await guarded(async () => {
    const doc = (await api("GET", `/v1/docs/${encodeURIComponent(name)}`)).data;
    state.open = doc; state.editing = false;
    if (!quiet) notify("");
    renderList(); renderDoc();
  });
}

function renderDoc(extra = null) {
  const doc = state.open, panel = $("docpanel");
  if (!panel || !doc) return;
  const buttons = [h("button", { type: "button", class: "secondary", onclick: () => showHistory(doc.name) }, "History")];
  if (can("write")) {
    buttons.unshift(h("button", { type: "button", onclick: () => editDoc() }, "Edit"));
    buttons.push(h("button", { type: "button", class: "danger", onclick: () => deleteDoc() }, "Delete"));
  }
  fill(panel, h("h3", {}, doc.name),
    h("p", { class: "meta" }, `version ${doc.version} · ${doc.updated_by} · ${when(doc.updated_at)}`),
    h("div", { class: "actions" }, buttons), extra, h("div", { class: "tree" }, tree(doc.data)));
}

function editDoc(text = null) {
  const doc = state.open;
  state.editing = true;
  const status = h("p", { id: "validity", class: "valid", "aria-live": "polite" }, "Valid JSON");
  const save = h("button", { type: "button", onclick: () => saveDoc(editor.value, doc.version) }, "Save");
  const editor = h("textarea", { id: "editor", spellcheck: "false", oninput: () => {
    try { JSON.parse(editor.value); status.textContent = "Valid JSON"; status.className = "valid"; save.disabled = false; }
    catch (error) { status.textContent = `Invalid JSON: ${error.message}`; status.className = "invalid"; save.disabled = true; }
  } });
  editor.value = text ?? JSON.stringify(doc.data, null, 2);
  fill($("docpanel"), h("h3", {}, `Editing ${doc.name}`),
    h("p", { class: "meta" }, `from version ${doc.version}: saved only if nobody changed it meanwhile`),
    h("label", { for: "editor" }, "Document JSON"), editor, status,
    h("div", { class: "actions" }, save,
      h("button", { type: "button", class: "secondary", onclick: () => { state.editing = false; renderDoc(); } }, "Cancel")));
  editor.focus();
}

async function saveDoc(text, version) {
  const doc = state.open;
  try {
    clearError();
    const written = await api("PUT", `/v1/docs/${encodeURIComponent(doc.name)}`,
      { body: text, headers: { "If-Match": `"${version}"` } });
    notify(`Saved ${doc.name} as version ${written.data.version}`);
    await openDoc(doc.name, true); await loadDocs();
  } catch (error) {
    // awaited here so a failure while fetching their version (e.g. deleted meanwhile) is shown too
    if (error instanceof ApiError && error.status === 412) return await showConflict(text).catch(showError);
    showError(error);
  }
}

async function showConflict(mine) {
  const theirs = (await api("GET", `/v1/docs/${encodeURIComponent(state.open.name)}`)).data;
  const mineValue = JSON.parse(mine);
  const panel = h("div", { class: "conflict", role: "region", "aria-label": "Conflict" },
    h("h3", {}, "Conflict: not saved"),
    h("p", {}, `${theirs.updated_by} saved version ${theirs.version} while you were editing version ${state.open.version}. Nothing was overwritten.`),
    diffView(theirs.data, mineValue, [`their version ${theirs.version}`, "your edit"]),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", onclick: () => saveDoc(mine, theirs.version) }, `Overwrite version ${theirs.version} with mine`),
      h("button", { type: "button", class: "secondary", onclick: () => { state.open = theirs; editDoc(mine); } }, "Keep editing mine"),
      h("button", { type: "button", class: "secondary", onclick: () => { state.open = theirs; state.editing = false; renderDoc(); } }, "Discard mine")));
  $("docpanel").prepend(panel);
}

async function deleteDoc() {
  const doc = state.open;
  const ok = await confirmTyped({ title: `Delete ${doc.name}?`, text: "The document goes; its history stays.",
    label: `Type ${doc.name} to confirm`, expect: doc.name, ok: "Delete" });
  if (!ok) return;
  await guarded(async () => {
    await api("DELETE", `/v1/docs/${encodeURIComponent(doc.name)}`, { headers: { "If-Match": `"${doc.version}"` } });
    notify(`Deleted ${doc.name}`); state.open = null;
    fill($("docpanel"), h("p", { class: "meta" }, "Choose a document."));
    await loadDocs();
  });
}

async function showHistory(name) {
  await guarded(async () => {
    const changes = (await api("GET", `/v1/docs/${encodeURIComponent(name)}/history?limit=50`)).data;
    const states = replay(changes);
    const versions = changes.map((c) => c.version);
    const pick = (id, label, index) => [h("label", { for: id }, label),
      h("select", { id }, versions.map((v, i) => h("option", { value: v, selected: i === index }, `version ${v}`)))];
    const output = h("div", { id: "history-diff" });
    const compare = () => {
      const a = Number($("from").value), b = Number($("to").value);
      const before = states.get(a), after = states.get(b);
      const fallback = (v) => changes.find((c) => c.version === v)?.fields ?? null;
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

// -- snapshots, jobs, health ------------------------------------------------------------------

async function viewSnapshots() {
  await guarded(async () => {
    const rows = (await api("GET", "/v1/snapshots")).data;
    const progress = h("p", { id: "job-progress", role: "status" });
    fill($("view"), h("h2", {}, "Snapshots"),
      can("admin") ? h("div", { class: "actions" }, h("button", { type: "button", onclick: () => takeSnapshot(progress) }, "Take snapshot now")) : null,
      progress,
      rows.length === 0 ? h("p", { class: "meta" }, "No snapshots yet: is a worker running?") :
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Snapshot", "Created", "Documents", "Size", "Status", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows.map((row) => h("tr", {}, h("td", {}, h("code", {}, row.id)), h("td", {}, when(row.created_at)),
          h("td", {}, row.documents ?? "?"), h("td", {}, bytes(row.size)),
          h("td", { class: `status-${row.status}` }, row.status + (row.error ? `: ${row.error}` : "")),
          h("td", {}, can("admin") && row.status !== "corrupt"
            ? h("button", { type: "button", class: "danger", "aria-label": `Restore ${row.id}`, onclick: () => restore(row.id, progress) }, "Restore…") : "")))))));
  });
}

async function follow(jobId, progress, what) {
  for (;;) {
    const job = (await api("GET", `/v1/jobs/${jobId}`)).data;
    progress.textContent = `${what}: ${job.status}${job.error ? ` — ${job.error}` : ""}`;
    progress.className = job.status === "failed" ? "status-failed" : job.status === "finished" ? "status-ok" : "";
    if (job.status === "finished" || job.status === "failed") return job;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function takeSnapshot(progress) {
  await guarded(async () => {
    const accepted = (await api("POST", "/v1/snapshots")).data;
    if (accepted.warning) notify(accepted.warning);
    const job = await follow(accepted.job_id, progress, "Snapshot");
    await viewSnapshots();
    const run = job.result || {};
    $("job-progress").textContent = run.status === "skipped" ? `Snapshot skipped: ${run.reason}` : `Snapshot: ${job.status}`;
  });
}

async function restore(id, progress) {
  const ok = await confirmTyped({ title: "Restore this snapshot?",
    text: `A roll-back: every document is replaced by its copy in ${id}, newer ones too, and documents it does not hold are deleted.`,
    label: "Type the snapshot id to confirm", expect: id, ok: "Restore" });
  if (!ok) return;
  await guarded(async () => {
    const accepted = (await api("POST", `/v1/snapshots/${encodeURIComponent(id)}/restore`, { body: { force: true } })).data;
    const job = await follow(accepted.job_id, progress, "Restore");
    const run = job.result || {};
    if (job.status !== "finished") return;
    if (run.status === "skipped") notify(`Restore skipped: ${run.reason}`);
    else notify(`Restored ${run.result ? run.result.restored : "?"} documents from ${id}`);
  });
}

async function viewJobs() {
  await guarded(async () => {
    const jobs = (await api("GET", "/v1/jobs?runs=5")).data;
    fill($("view"), h("h2", {}, "Jobs"),
      jobs.length === 0 ? h("p", { class: "meta" }, "No schedule published yet: is a worker running?") :
      h("div", { class: "scroll" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Job", "Schedule", "Next run", "Last run", "Outcome"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, jobs.map((job) => {
          const last = job.last_runs[0];
          return h("tr", {}, h("td", {}, job.name),
            h("td", {}, job.cron ? `cron ${job.cron} (UTC)` : job.interval ? `every ${job.interval} s` : "on demand"),
            h("td", {}, when(job.next_run)), h("td", {}, last ? when(last.started_at) : when(job.last_checked)),
            h("td", { class: last ? `status-${last.status}` : "" },
              last ? `${last.status}${last.error ? `: ${last.error}` : last.reason ? `: ${last.reason}` : ""}` : "nothing to do"));
        })))));
  });
}

async function viewHealth() {
  await guarded(async () => {
    const health = (await api("GET", "/v1/health")).data;
    const figures = (object) => h("dl", { class: "figures" }, Object.entries(object ?? {})
      .filter(([, value]) => typeof value !== "object" || value === null)
      .flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, value === null ? "—" : String(value))]));
    fill($("view"), h("h2", {}, "Health"),
      h("p", {}, "Status: ", h("span", { class: `status-${health.status}` }, health.status)),
      health.warnings.length ? h("ul", { class: "warnings", "aria-label": "Warnings" }, health.warnings.map((w) => h("li", {}, w))) : h("p", { class: "status-ok" }, "No warnings."),
      h("h3", {}, "Redis"), figures(health.redis),
      h("h3", {}, "Worker"), h("p", {}, health.worker.alive ? `${health.worker.workers.length} worker(s), heartbeat ${health.worker.workers[0].age} s ago` : "no worker heartbeat"),
      h("h3", {}, "Snapshots"), figures(health.snapshots),
      h("h3", {}, "Documents"), h("p", {}, String(health.documents ?? "?")));
  });
}

// -- routing ----------------------------------------------------------------------------------

const VIEWS = { "#docs": viewDocs, "#snapshots": viewSnapshots, "#jobs": viewJobs, "#health": viewHealth };

function route() {
  if (!session.role) return;
  const hash = VIEWS[location.hash] ? location.hash : "#docs";
  for (const link of document.querySelectorAll("nav a"))
    link.toggleAttribute("aria-current", link.getAttribute("href") === hash) && link.setAttribute("aria-current", "page");
  state.editing = false;
  VIEWS[hash]();
}

window.addEventListener("hashchange", route);
$("signout").addEventListener("click", signOut);
$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(() => signIn($("token").value.trim()));
});
if (session.token) guarded(() => signIn(session.token)).then(() => { if (!session.role) signOut(); });
