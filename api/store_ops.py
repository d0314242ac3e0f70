"""Store operations the API needs beyond the public methods, kept in this one module.

The API reports the version a write replaced (for audit lines) and imports all documents in
one MULTI/EXEC transaction; both use the store's core calls directly (GETs: api/reads.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from sharedstate import AsyncSharedStore, Document, InvalidDocument
from sharedstate._core import Written


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
