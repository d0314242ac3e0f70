// @ts-check
// The jobs view: each scheduled job, its next run and its last outcome.
import { api } from "../api.js";
import { $, fill, guarded, h, when } from "../view.js";

export async function viewJobs() {
  await guarded(async () => {
    /** @type {any[]} */
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
