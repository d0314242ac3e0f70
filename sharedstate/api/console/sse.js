// @ts-check
// A Server-Sent Events parser (the WHATWG event-stream rules), fed text as it arrives.

/** @typedef {{ type: string, data: string, id: string | null }} SseEvent */

/**
 * A function taking the next chunk of the stream's text; it calls ``onEvent`` per complete event.
 * Comments (``: keep-alive``) are skipped; ``id`` persists from one event to the next, as in
 * EventSource, so it is what to send back as Last-Event-ID.
 * @param {(event: SseEvent) => void} onEvent
 * @returns {(chunk: string) => void}
 */
export function sseParser(onEvent) {
  let pending = "";
  /** @type {string[]} */
  let data = [];
  let type = "";
  /** @type {string | null} */
  let id = null;
  const line = (/** @type {string} */ text) => {
    if (text === "") {
      if (data.length) onEvent({ type: type || "message", data: data.join("\n"), id });
      data = []; type = "";
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") type = value;
    else if (field === "id" && !value.includes("\0")) id = value;
  };
  return (chunk) => {
    let text = pending + chunk;
    // a trailing CR may be the first half of CRLF: keep the line until the next chunk says
    const held = text.endsWith("\r");
    if (held) text = text.slice(0, -1);
    const lines = text.split(/\r\n|\r|\n/);
    pending = /** @type {string} */ (lines.pop()) + (held ? "\r" : "");
    for (const each of lines) line(each);
  };
}
