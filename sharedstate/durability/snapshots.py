"""Taking snapshots, listing them, retention and the catalogue published to Redis."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sharedstate._core import Call
from sharedstate.durability import batch, state
from sharedstate.durability.format import (
    SUFFIX,
    Header,
    Record,
    SnapshotWriter,
    read_header,
    read_snapshot,
    scan_names,
)
from sharedstate.durability.pipelined import pipelined
from sharedstate.durability.retention import select_kept
from sharedstate.durability.target import SNAPSHOTS, Item, Source, Target, as_target, source_size
from sharedstate.errors import SharedStateError, SnapshotError
from sharedstate.store import SharedStore

log = logging.getLogger("sharedstate.durability")

BATCH = 500  # documents read per call at most,
BATCH_BYTES = 1 << 20  # about this many bytes of them once their size is known,
FIRST_BATCH = 20  # and this many before
TEMP_MAX_AGE = 600.0  # seconds without a write after which a temporary file is a crash's leftover
FUTURE_SLACK = 300.0  # seconds a snapshot may be dated ahead of this clock (clocks differ a little)

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    """A file in the snapshots folder of a target, with its header if it could be read."""

    path: Source
    size: int
    header: Header | None
    error: str | None = None
    mtime: float = 0.0

    @property
    def id(self) -> str:
        """The snapshot's id: its file name."""
        return self.path.name

    @property
    def namespace(self) -> str:
        """The namespace it records, or (header unreadable) the one its file name starts with."""
        if self.header is not None:
            return self.header.namespace
        return self.path.name.rsplit("-", 2)[0]

    @property
    def future(self) -> bool:
        """Dated more than ``FUTURE_SLACK`` seconds ahead of this clock: reported, never preferred."""
        return self.header is not None and self.header.created_at > time.time() + FUTURE_SLACK

    @property
    def ranked_at(self) -> float:
        """The time newest-first order and retention go by: a future-dated file counts as the oldest."""
        return 0.0 if self.future else self.created_at

    @property
    def created_at(self) -> float:
        """The creation time recorded in the file (the file's mtime if it has no readable header)."""
        if self.header is not None:
            return self.header.created_at
        return self.mtime


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """A snapshot just written; ``skipped`` the documents left out because their stored bytes do
    not decode (name, why): the snapshot holds every other document."""

    path: Source
    header: Header
    size: int
    seconds: float
    skipped: tuple[tuple[str, str], ...] = ()


class NamespaceNotReady(SharedStateError):
    """Redis lost the namespace (marker missing) while snapshots exist: restore before snapshotting."""


def list_snapshots(where: Target | Path, namespace: str | None = None) -> list[SnapshotEntry]:
    """Snapshots of a target (or a snapshots directory), of ``namespace``, newest first by
    recorded creation time (files dated in the future last).

    Files whose header cannot be read, symbolic links and other non-regular files are listed
    with ``error`` (never read through) and count for the namespace their file name starts
    with; temporary files (``.``-prefixed) are not listed.
    """
    target = as_target(where)
    entries = []
    for item in target.list(SNAPSHOTS):
        if item.name.startswith(".") or not item.name.endswith(SUFFIX):
            continue
        source = _sized(target, item)
        if item.refused is not None:
            entry = SnapshotEntry(source, 0, None, item.refused, item.mtime)
        else:
            try:
                entry = SnapshotEntry(source, item.size, _header(target, item, source), None, item.mtime)
            except SnapshotError as exc:
                if isinstance(source, Path) and not source.exists():
                    continue  # removed meanwhile
                entry = SnapshotEntry(source, item.size, None, exc.reason, item.mtime)
            if entry.future:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(entry.created_at))
                entry = SnapshotEntry(
                    source,
                    entry.size,
                    entry.header,
                    f"dated in the future ({stamp}): never preferred",
                    item.mtime,
                )
        if namespace is None or entry.namespace == namespace:
            entries.append(entry)
    return sorted(entries, key=lambda entry: (entry.ranked_at, entry.id), reverse=True)


_headers: dict[tuple[str, str, int, float], Header] = {}
HEADERS_KEPT = 10_000


def _header(target: Target, item: Item, source: Source) -> Header:
    """A snapshot's header, read once per file: a published snapshot never changes (a bucket's
    listing would otherwise cost one GET per snapshot each time)."""
    key = (target.description, item.name, item.size, item.mtime)
    header = _headers.get(key)
    if header is None:
        header = read_header(source)
        if len(_headers) >= HEADERS_KEPT:
            _headers.clear()
        _headers[key] = header
    return header


def _sized(target: Target, item: Item) -> Source:
    sized = getattr(target, "sized", None)  # a bucket's object knows its listed size
    return sized(SNAPSHOTS, item) if sized is not None else target.source(SNAPSHOTS, item.name)


def take_snapshot(
    store: SharedStore,
    where: Target | Path,
    *,
    progress: Progress | None = None,
    allow_unmarked: bool = False,
    key: bytes | None = None,
) -> SnapshotResult:
    """Write every document of the store's namespace to a new snapshot on a target (or in a
    snapshots directory).

    Each document is captured with the version it had at one instant (read in batches, one
    script call per batch); memory grows with the largest batch of documents only. A document
    whose stored bytes do not decode is skipped, logged and named in ``skipped`` and the header.
    With ``key`` the file is signed (HMAC-SHA256 in the trailer).

    A namespace whose marker is missing while snapshots exist has lost its data in Redis:
    snapshotting it would make an empty snapshot the newest, so NamespaceNotReady is raised
    unless ``allow_unmarked``. A fresh namespace (no snapshots yet) is marked and snapshotted.
    If the marker changes while the documents are read (Redis lost them meanwhile, so some read
    as gone), NamespaceNotReady is raised too and nothing is written.
    """
    started = time.monotonic()
    target = as_target(where)
    bulk = store.bulk()
    epoch = state.get_marker(bulk)
    if epoch is None:
        if list_snapshots(target, bulk.namespace) and not allow_unmarked:
            raise NamespaceNotReady(
                f"namespace {bulk.namespace!r} has no marker in Redis but snapshots exist: Redis lost "
                "its data. Restore first (sharedstate restore) or snapshot anyway (--force)."
            )
        epoch = state.set_marker(bulk)
    position = state.feed_position(bulk)
    floor = state.get_floor(bulk)
    names = bulk.names()
    carried = _lost_since(bulk, target, names, key)
    if carried:
        names = sorted(set(names) | set(carried))
    max_version = 0
    written = 0  # bytes of JSON
    skipped: list[tuple[str, str]] = []
    try:
        with SnapshotWriter(target, bulk.namespace, key=key) as writer:

            def calls() -> Iterator[Call[list[Record | batch.Unreadable | None]]]:
                start = 0
                while start < len(names):
                    # about BATCH_BYTES of documents per call, judged by those written so far
                    count = (
                        max(1, min(BATCH, BATCH_BYTES * writer.count // written)) if written else FIRST_BATCH
                    )
                    chunks.append(names[start : start + count])
                    yield batch.dump(bulk._core, chunks[-1])
                    start += count

            chunks: deque[list[str]] = deque()
            done = 0
            for records in pipelined(bulk, calls(), "read documents"):  # the next batch is read meanwhile
                for name, found in zip(chunks.popleft(), records, strict=True):
                    record = carried.get(name, found) if not isinstance(found, Record) else found
                    if record is None:
                        continue  # deleted since the names were listed
                    if isinstance(record, batch.Unreadable):  # one bad document never stops a backup
                        log.error("snapshot: skipping document %r: %s", record.name, record.reason)
                        skipped.append((record.name, record.reason))
                        continue
                    written += writer.add(record)
                    max_version = max(max_version, record.version)
                done += len(records)
                if progress is not None:
                    progress(done, len(names))
            if state.get_marker(bulk) != epoch:  # what was read after the loss is missing, not deleted
                raise NamespaceNotReady(
                    f"Redis lost namespace {bulk.namespace!r} while it was being snapshotted: the "
                    "snapshot was discarded. Restore first (the worker does so by itself)."
                )
            path = writer.commit(
                epoch=epoch,
                max_version=max_version,
                floor=floor,
                feed_position=position,
                skipped=[name for name, _ in skipped],
            )
    except OSError as exc:
        raise SnapshotError(target.description, f"cannot write a snapshot: {exc.strerror or exc}") from exc
    assert writer.header is not None
    return SnapshotResult(path, writer.header, source_size(path), time.monotonic() - started, tuple(skipped))


def _lost_since(bulk: SharedStore, target: Target, names: list[str], key: bytes | None) -> dict[str, Record]:
    """Documents of the previous snapshot that Redis no longer has although nothing deleted
    them (no tombstone): lost with all their keys. The new snapshot carries them over, so the
    backup never forgets them and the integrity check fills them in."""
    previous = next((entry for entry in list_snapshots(target, bulk.namespace) if entry.error is None), None)
    if previous is None:
        return {}
    try:
        gone = sorted(set(scan_names(previous.path)) - set(names))
    except SnapshotError:
        return {}
    if not gone:
        return {}
    deleted = batch.deleted_versions(bulk, gone)
    lost = {name for name in gone if name not in deleted}
    if not lost:
        return {}
    try:
        _, records = read_snapshot(previous.path, key=key)
        carried = {record.name: record for record in records if record.name in lost}
    except SnapshotError as exc:
        log.error("snapshot: cannot carry over lost documents from %s: %s", previous.id, exc.reason)
        return {}
    log.critical(
        "snapshot: %d document(s) of %s are gone from Redis with no delete (lost with their keys): "
        "carried over into the new snapshot, to be filled in: %s",
        len(carried), previous.id, ", ".join(sorted(carried)[:10]),
    )  # fmt: skip
    return carried


def clean_temp_files(where: Target | Path, older_than: float = TEMP_MAX_AGE) -> list[Source]:
    """Remove temporary files a crashed snapshot left behind (untouched for ``older_than`` s)."""
    target = as_target(where)
    now = time.time()
    stale = [
        item.name
        for item in target.list(SNAPSHOTS)
        if item.name.startswith(".") and item.refused is None and now - item.mtime >= older_than
    ]
    target.delete(SNAPSHOTS, stale)
    return [target.source(SNAPSHOTS, name) for name in stale]


def apply_retention(
    where: Target | Path, namespace: str, keep: dict[str, int], newest_good: Source | None = None
) -> list[Source]:
    """Delete the namespace's snapshots that ``keep`` does not keep; returns those removed.

    Never removes ``newest_good`` (the last snapshot known to verify), and never touches
    files of other namespaces or files whose header cannot be read.
    """
    target = as_target(where)
    entries = [entry for entry in list_snapshots(target, namespace) if entry.header is not None]
    good = None if newest_good is None else newest_good.name
    always = next((entry for entry in entries if entry.id == good), None)
    kept = select_kept(entries, lambda entry: entry.ranked_at, keep, always)
    removed = [entry.path for entry in entries if entry not in kept]
    target.delete(SNAPSHOTS, [source.name for source in removed])
    return removed


def read_catalogue(store: SharedStore) -> dict[str, Any]:
    """The published catalogue: ``{"updated_at": ..., "snapshots": [...]}`` (empty before any)."""
    return state.catalogue(store)


def publish_catalogue(
    store: SharedStore, where: Target | Path, verified: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Publish the namespace's snapshot list to Redis (``sys:catalogue``) for the API.

    ``verified`` maps snapshot ids to "ok" or the reason they failed verification; statuses
    from the previous catalogue carry over for files whose size did not change.
    """
    rows = catalogue_rows(
        list_snapshots(where, store.namespace), read_catalogue(store)["snapshots"], verified
    )
    state.set_catalogue(store, {"updated_at": time.time(), "snapshots": rows})
    return rows


def catalogue_rows(
    entries: list[SnapshotEntry], previous: list[dict[str, Any]], verified: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Catalogue rows (id, time, size, documents, status) of listed snapshots. Pure: statuses come
    from ``verified`` (id -> "ok" or why not), else from ``previous`` rows of the same size."""
    verified = verified or {}
    before_rows = {row["id"]: row for row in previous}
    rows = []
    for entry in entries:
        row: dict[str, Any] = {
            "id": entry.id,
            "created_at": entry.created_at,
            "size": entry.size,
            "documents": entry.header.documents if entry.header else None,
            "status": "unverified",
        }
        before = before_rows.get(entry.id)
        if entry.error is not None:
            row.update(status="corrupt", error=entry.error)
        elif entry.id in verified:
            outcome = verified[entry.id]
            row.update(status="ok") if outcome == "ok" else row.update(status="corrupt", error=outcome)
        elif before is not None and before["size"] == entry.size and before["status"] != "unverified":
            row.update({key: before[key] for key in ("status", "error") if key in before})
        rows.append(row)
    return rows
