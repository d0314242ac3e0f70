// node --test: the console's Server-Sent Events parser.
import assert from "node:assert/strict";
import test from "node:test";
import { sseParser } from "../../../sharedstate/api/console/sse.js";

/** @param {string[]} chunks */
function parseAll(chunks) {
  /** @type {any[]} */
  const events = [];
  const push = sseParser((event) => events.push(event));
  for (const chunk of chunks) push(chunk);
  return events;
}

test("events, comments and ids, in one chunk", () => {
  const events = parseAll([": connected\n\nid: 1-0\nevent: change\ndata: {\"a\":1}\n\n: keep-alive\n\n"]);
  assert.deepEqual(events, [{ type: "change", data: '{"a":1}', id: "1-0" }]);
});

test("an event cut anywhere across chunks, CRLF cut between CR and LF", () => {
  const text = "id: 5-1\r\nevent: change\r\ndata: x\r\n\r\nevent: error\r\ndata: gone\r\n\r\n";
  for (let cut = 0; cut <= text.length; cut++) {
    const events = parseAll([text.slice(0, cut), text.slice(cut)]);
    assert.deepEqual(events, [{ type: "change", data: "x", id: "5-1" }, { type: "error", data: "gone", id: "5-1" }], `cut at ${cut}`);
  }
});

test("data lines join with newlines; no space after the colon is fine; no data, no event", () => {
  const events = parseAll(["data:a\ndata: b\n\nevent: change\n\nfield-without-colon\ndata\n\n"]);
  assert.deepEqual(events, [{ type: "message", data: "a\nb", id: null }, { type: "message", data: "", id: null }]);
});

test("an incomplete event at the end is not dispatched", () => {
  assert.deepEqual(parseAll(["event: change\ndata: half"]), []);
});
