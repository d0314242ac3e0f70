"""Store operations the API needs beyond the public methods, kept in this one module.

The API reports the version a write replaced (for audit lines), imports all documents in one
MULTI/EXEC transaction, and serves GETs from rendered bodies while Redis says they are
current; all use the store's core calls directly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from sharedstate import AsyncSharedStore, Document, DocumentNotFound, InvalidDocument
from sharedstate._core import Unchanged, Written


async def put(store: AsyncSharedStore, name: str, data: Any, expected: int | None) -> Written:
    return await store._run(store._core.put(name, data, expected))


async def merge(store: AsyncSharedStore, name: str, fields: Mapping[str, Any], expected: int | None) -> int:
    return await store._run(store._core.merge(name, fields, expected))


async def delete(store: AsyncSharedStore, name: str, expected: int | None) -> bool:
    return await store._run(store._core.delete(name, expected))


async def import_all(store: AsyncSharedStore, documents: Mapping[str, Any]) -> dict[str, int]:
    """Validate every document, then write them all in one transaction (all or nothing).

    InvalidDocument lists every problem; nothing is written then.
    """
    calls = []
    problems = []
    for name, data in documents.items():
        try:
            calls.append(store._core.put(name, data, None))
        except InvalidDocument as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidDocument("; ".join(problems))
    results = await store._run_many(calls, "import documents", transaction=True)
    return {name: written.version for name, written in zip(documents, results, strict=True)}


async def documents(store: AsyncSharedStore, batch: int = 200) -> AsyncIterator[Document]:
    """Every document, read in pipelined batches."""
    names = await store.names()
    for start in range(0, len(names), batch):
        calls = [store._core.get(name, stale=False) for name in names[start : start + batch]]
        for doc in await store._run_many(calls, "export documents"):
            if doc is not None:
                yield doc


class RenderedCache:
    """Rendered GET bodies by document: (version, body). A version is never reused, so a body
    is valid for as long as Redis says the document is still at that version."""

    def __init__(self, max_documents: int = 1000, max_body: int = 1 << 20) -> None:
        self.max_documents = max_documents
        self.max_body = max_body
        self._items: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    async def get(
        self, store: AsyncSharedStore, name: str, render: Callable[[Document], bytes]
    ) -> tuple[int, bytes]:
        """(version, body) of ``name`` as of now: one round trip, decoding only when it changed."""
        cached = self._items.get(name)
        found = await store._run(store._core.get_unless(name, cached[0] if cached else -1))
        if isinstance(found, Unchanged):
            assert cached is not None
            self._items.move_to_end(name)
            return cached
        if found is None:
            self._items.pop(name, None)
            raise DocumentNotFound(name)
        body = render(found)
        if len(body) <= self.max_body:
            self._items[name] = (found.version, body)
            self._items.move_to_end(name)
            while len(self._items) > self.max_documents:
                self._items.popitem(last=False)
        return found.version, body
