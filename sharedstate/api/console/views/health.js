// @ts-check
// The health view: status, warnings and the figures of /v1/health.
import { api } from "../api.js";
import { $, fill, guarded, h } from "../view.js";

export async function viewHealth() {
  await guarded(async () => {
    const health = (await api("GET", "/v1/health")).data;
    const figures = (/** @type {Record<string, unknown> | null} */ object) => h("dl", { class: "figures" }, Object.entries(object ?? {})
      .filter(([, value]) => typeof value !== "object" || value === null)
      .flatMap(([key, value]) => [h("dt", {}, key), h("dd", {}, value === null ? "—" : String(value))]));
    fill($("view"), h("h2", {}, "Health"),
      h("p", {}, "Status: ", h("span", { class: `status-${health.status}` }, health.status)),
      health.warnings.length ? h("ul", { class: "warnings", "aria-label": "Warnings" }, health.warnings.map((/** @type {string} */ w) => h("li", {}, w))) : h("p", { class: "status-ok" }, "No warnings."),
      h("h3", {}, "Redis"), figures(health.redis),
      h("h3", {}, "Worker"), h("p", {}, health.worker.alive ? `${health.worker.workers.length} worker(s), heartbeat ${health.worker.workers[0].age} s ago` : "no worker heartbeat"),
      h("h3", {}, "Snapshots"), figures(health.snapshots),
      h("h3", {}, "Documents"), h("p", {}, String(health.documents ?? "?")));
  });
}
