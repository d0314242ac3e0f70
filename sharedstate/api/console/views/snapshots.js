// @ts-check
// The snapshots view: the list, taking one now, a restore (a roll-back) with a typed confirmation,
// and a roll-back to a point in time (a snapshot plus the journal up to it).
import { api, can } from "../api.js";
import { $, bytes, confirmTyped, fill, guarded, h, notify, when } from "../view.js";

export async function viewSnapshots() {
  await guarded(async () => {
    /** @type {any[]} */
    const rows = (await api("GET", "/v1/snapshots")).data;
    const progress = h("p", { id: "job-progress", role: "status" });
    fill($("view"), h("h2", {}, "Snapshots"),
      can("admin") ? h("div", { class: "actions" }, h("button", { type: "button", onclick: () => takeSnapshot(progress) }, "Take snapshot now")) : null,
      progress,
      can("admin") && rows.length > 0 ? pointInTime(progress) : null,
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

/** Poll a job until it ends, showing its status. @param {string} jobId @param {HTMLElement} progress @param {string} what */
async function follow(jobId, progress, what) {
  for (;;) {
    const job = (await api("GET", `/v1/jobs/${encodeURIComponent(jobId)}`)).data;
    progress.textContent = `${what}: ${job.status}${job.error ? ` — ${job.error}` : ""}`;
    progress.className = job.status === "failed" ? "status-failed" : job.status === "finished" ? "status-ok" : "";
    if (job.status === "finished" || job.status === "failed") return job;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** @param {HTMLElement} progress */
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

/** @param {string} id @param {HTMLElement} progress */
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

/** The form for a roll-back to a time (local time in the browser, sent as epoch seconds). @param {HTMLElement} progress */
function pointInTime(progress) {
  const input = h("input", { type: "datetime-local", step: "1", id: "restore-at", "aria-label": "Time to roll back to" });
  return h("form", { class: "actions", onsubmit: (/** @type {Event} */ event) => { event.preventDefault(); restoreAt(/** @type {HTMLInputElement} */ (input).value, progress); } },
    h("label", { for: "restore-at" }, "Roll back to a time: "), input,
    h("button", { type: "submit", class: "danger" }, "Restore to this time…"));
}

/** @param {string} local @param {HTMLElement} progress */
async function restoreAt(local, progress) {
  const at = Date.parse(local) / 1000;
  if (!local || !Number.isFinite(at)) { notify("Pick a date and time first"); return; }
  const shown = new Date(at * 1000).toISOString().replace(".000Z", "Z");
  const ok = await confirmTyped({ title: "Roll back to this time?",
    text: `A roll-back: every document goes back to its state at ${shown} (the newest snapshot complete by then plus the journal up to it); newer documents are replaced and those that did not exist yet are deleted.`,
    label: "Type RESTORE to confirm", expect: "RESTORE", ok: "Restore" });
  if (!ok) return;
  await guarded(async () => {
    const accepted = (await api("POST", "/v1/restore", { body: { at } })).data;
    if (accepted.warning) notify(accepted.warning);
    const job = await follow(accepted.job_id, progress, "Restore");
    const run = job.result || {};
    if (job.status !== "finished") return;
    if (run.status === "skipped") notify(`Restore skipped: ${run.reason}`);
    else notify(`Rolled back to ${shown}: ${run.result ? run.result.restored : "?"} documents restored`);
  });
}
