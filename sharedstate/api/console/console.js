// @ts-check
// The sharedstate console: plain ES modules, no build step, nothing from a CDN. This module
// signs in and out, follows the live feed, and routes between the views.
import { api, session } from "./api.js";
import { sseParser } from "./sse.js";
import { $, fill, guarded } from "./view.js";
import { leave, onChange, onMissed, viewDocs } from "./views/docs.js";
import { viewHealth } from "./views/health.js";
import { viewJobs } from "./views/jobs.js";
import { viewSnapshots } from "./views/snapshots.js";

/** @param {string} token */
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
  fill($("view"));
}

// EventSource cannot send an Authorization header: read the SSE stream with fetch instead.
/** @param {string | null} lastId */
async function startEvents(lastId = null) {
  const controller = new AbortController();
  session.events = controller;
  const push = sseParser((event) => {
    if (event.type === "change") { lastId = event.id; onChange(JSON.parse(event.data)); }
    // e.g. feed_trimmed: what we missed is gone from the feed, so start from now and reload
    if (event.type === "error") { lastId = null; onMissed(); }
  });
  try {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${session.token}` };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch("/v1/events", { headers, signal: controller.signal });
    if (response.ok && response.body) {
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        push(value);
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;
  }
  if (session.events === controller) setTimeout(() => startEvents(lastId), 2000);
}

/** @type {Record<string, () => Promise<void>>} */
const VIEWS = { "#docs": viewDocs, "#snapshots": viewSnapshots, "#jobs": viewJobs, "#health": viewHealth };

function route() {
  if (!session.role) return;
  const hash = VIEWS[location.hash] ? location.hash : "#docs";
  for (const link of document.querySelectorAll("nav a"))
    link.toggleAttribute("aria-current", link.getAttribute("href") === hash) && link.setAttribute("aria-current", "page");
  leave();
  VIEWS[hash]();
}

window.addEventListener("hashchange", route);
window.addEventListener("sharedstate:unauthorized", signOut);
$("signout").addEventListener("click", signOut);
$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(() => signIn(/** @type {HTMLInputElement} */ ($("token")).value.trim()));
});
if (session.token) guarded(() => signIn(/** @type {string} */ (session.token))).then(() => { if (!session.role) signOut(); });
