"""GET bodies: rendered once per document version, read from Redis in batches under load."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

from sharedstate import AsyncSharedStore, Document, DocumentNotFound
from sharedstate.jsonio import dumps_plain, encode_entries, encode_tagged
from sharedstate.offload import is_large

Body = tuple[int, bytes]  # (version, rendered body)


def _envelope(doc: Document) -> dict[str, object]:
    return {"name": doc.name, "version": doc.version, "updated_at": doc.updated_at,
            "updated_by": doc.updated_by, "data": doc.data}  # fmt: skip


def render_document(doc: Document) -> bytes:
    """The body of ``GET /v1/docs/{name}``: sets as sorted lists."""
    if is_large(doc.data):
        return _render_large(doc, tagged=False)
    return dumps_plain(_envelope(doc)).encode()


def render_tagged(doc: Document) -> bytes:
    """The body of ``GET /v1/docs/{name}?format=tagged``: lossless (the snapshots' dialect)."""
    if is_large(doc.data):
        return _render_large(doc, tagged=True)
    return encode_tagged(_envelope(doc))


def _render_large(doc: Document, tagged: bool) -> bytes:
    # the data entry by entry (run in a thread: the loop turns between entries)
    head = {key: value for key, value in _envelope(doc).items() if key != "data"}
    return dumps_plain(head).encode()[:-1] + b',"data":' + encode_entries(doc.data, tagged=tagged) + b"}"


class DocumentReads:
    """``(version, body)`` of documents as of now, for ``GET /v1/docs/{name}``.

    Bodies are kept rendered per (document, version): a version is never reused, so a body is
    valid for as long as the document is still at that version. The store's client cache knows
    that without a round trip while its copy is current (Redis invalidates it); otherwise Redis
    is asked (``get_if_changed`` then sends no data). The reads asked for while the event loop is
    busy go to Redis together in one pipeline when it next turns, and GETs of one document share
    the read not yet sent: it runs after each of them arrived, so each still sees every write
    acknowledged before it.
    """

    def __init__(
        self,
        store: AsyncSharedStore,
        render: Callable[[Document], bytes] = render_document,
        max_documents: int = 1000,
        max_body: int = 1 << 20,
    ) -> None:
        self.store = store
        self.render = render
        self.max_documents = max_documents
        self.max_body = max_body
        self._bodies: OrderedDict[str, Body] = OrderedDict()
        self._next_batch: dict[str, asyncio.Future[Body]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def get(self, name: str) -> Body:
        """``(version, body)`` of ``name`` as of now; DocumentNotFound if it does not exist."""
        current = self.store.cached_version(name)  # the client cache's: kept current by Redis
        if current == 0:
            raise DocumentNotFound(name)
        kept = self._bodies.get(name)
        if kept is not None and kept[0] == current:
            self._bodies.move_to_end(name)
            await asyncio.sleep(0)  # an answer without I/O still lets the loop turn
            return kept
        future = self._next_batch.get(name)
        if future is None:
            loop = asyncio.get_running_loop()
            if not self._next_batch:
                loop.call_soon(self._send)
            future = self._next_batch[name] = loop.create_future()
            future.add_done_callback(_retrieve)
        # shielded: a client that goes away must not cancel the read the others wait for
        return await asyncio.shield(future)

    def _send(self) -> None:
        batch, self._next_batch = self._next_batch, {}
        task = asyncio.ensure_future(self._read(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sending.discard)

    async def _read(self, batch: dict[str, asyncio.Future[Body]]) -> None:
        known = {name: self._bodies.get(name) for name in batch}
        # Issued in one loop turn, these reads share one round trip (the store's auto-pipeline),
        # and each gets its own outcome: one document that does not decode fails only its GETs.
        reads = [self.store.get_if_changed(name, body[0] if body else -1) for name, body in known.items()]
        try:
            found = await asyncio.gather(*reads, return_exceptions=True)
        except BaseException:  # cancelled: the loop is closing
            for future in batch.values():
                future.cancel()
            raise
        for (name, future), cached, result in zip(batch.items(), known.values(), found, strict=True):
            try:
                body = None
                if isinstance(result, Document) and is_large(result.data):
                    body = await asyncio.to_thread(self.render, result)  # megabytes: off the loop
                outcome = self._settle(name, cached, result, body)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(outcome)

    def _settle(
        self, name: str, cached: Body | None, found: Document | BaseException | None, body: bytes | None
    ) -> Body:
        if isinstance(found, DocumentNotFound):
            self._bodies.pop(name, None)
            raise found
        if isinstance(found, BaseException):
            raise found
        if found is None:  # still at the version of the body kept
            assert cached is not None
            if name in self._bodies:
                self._bodies.move_to_end(name)
            return cached
        if body is None:
            body = self.render(found)
        if len(body) <= self.max_body:
            self._bodies[name] = (found.version, body)
            self._bodies.move_to_end(name)
            while len(self._bodies) > self.max_documents:
                self._bodies.popitem(last=False)
        return found.version, body


def _retrieve(future: asyncio.Future[Body]) -> None:
    """Mark an error as seen: when every waiter went away, asyncio would log it as never retrieved."""
    if not future.cancelled():
        future.exception()
