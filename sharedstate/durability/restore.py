"""Restores: planned by a pure function, then executed; and the automatic restore.

A restore never acts on a file that has not verified completely. While a full restore runs,
the namespace's marker is absent and ``sys:restore`` names the snapshot: a restore that is
killed half-way is finished with the same snapshot by the next ``auto_restore``, and the
namespace is never marked complete before every document is back. Before writing, the
version floor is raised to the restore time in milliseconds (and above every version in the
snapshot), so a writer holding a version from before the restore gets VersionConflict.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharedstate._core import Call
from sharedstate.durability import batch, state
from sharedstate.durability.format import Header, Record, read_snapshot
from sharedstate.durability.pipelined import pipelined
from sharedstate.durability.snapshots import Progress, list_snapshots, publish_catalogue
from sharedstate.errors import InvalidDocument, SharedStateError, SnapshotError
from sharedstate.jsonio import dumps_tagged
from sharedstate.lease import Lease
from sharedstate.models import Written
from sharedstate.store import SharedStore

log = logging.getLogger("sharedstate.durability")

BATCH = 200  # documents per call when a dry run compares, or a restore deletes


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What a restore will do: write ``restore`` from the snapshot, delete ``delete``."""

    snapshot: Path
    header: Header
    restore: tuple[str, ...]
    delete: tuple[str, ...]
    full: bool


def plan_restore(
    snapshot: Path,
    header: Header,
    in_snapshot: Iterable[str],
    in_store: Iterable[str],
    only: Iterable[str] | None = None,
    delete_others: bool = True,
) -> RestorePlan:
    """Decide what to write and delete. Pure: no I/O.

    ``only`` restores a subset (nothing else touched). Otherwise every snapshot document is
    written, and with ``delete_others`` documents absent from the snapshot are deleted.
    """
    listed = list(dict.fromkeys(in_snapshot))  # a snapshot lists its names sorted: kept in order
    available = set(listed)
    if only is not None:
        wanted = sorted(set(only))
        missing = [name for name in wanted if name not in available]
        if missing:
            raise InvalidDocument(f"not in snapshot {snapshot.name}: {', '.join(missing)}")
        return RestorePlan(snapshot, header, tuple(wanted), (), full=False)
    delete = sorted(set(in_store) - available) if delete_others else []
    # sorted() of a sorted list is linear: no n log n sort of a set at 100k documents
    return RestorePlan(snapshot, header, tuple(sorted(listed)), tuple(delete), full=True)


@dataclass(slots=True)
class RestoreReport:
    """What a restore did (or, dry, would do)."""

    snapshot: str
    dry_run: bool
    restored: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # newer snapshots passed over: (id, why)
    floor: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "snapshot": self.snapshot,
            "dry_run": self.dry_run,
            "restored": len(self.restored),
            "deleted": self.deleted,
            "created": self.created,
            "changed": self.changed,
            "unchanged": len(self.unchanged),
            "skipped": [{"id": snapshot, "reason": reason} for snapshot, reason in self.skipped],
            "floor": self.floor,
            "seconds": round(self.seconds, 3),
        }


def _names_of(path: Path) -> tuple[Header, list[str]]:
    """Verify the whole file and return its header and document names."""
    header, records = read_snapshot(path, exact=False)
    names = [record.name for record in records]
    return header, names


def restore_snapshot(
    store: SharedStore,
    path: Path,
    *,
    only: Iterable[str] | None = None,
    dry_run: bool = False,
    delete_others: bool = True,
    progress: Progress | None = None,
    lease_ttl: float = state.RESTORE_LEASE_TTL,
) -> RestoreReport:
    """Restore ``path`` into the store's namespace (all documents, or ``only`` some).

    Raises SnapshotError before writing anything if the file does not verify, or if it
    belongs to another namespace.
    """
    started = time.monotonic()
    path = Path(path)
    header, names = _names_of(path)
    return _restore(store, path, header, names, started, only, dry_run, delete_others, progress, lease_ttl)


def _restore(
    store: SharedStore,
    path: Path,
    header: Header,
    names: list[str],
    started: float,
    only: Iterable[str] | None,
    dry_run: bool,
    delete_others: bool,
    progress: Progress | None,
    lease_ttl: float,
) -> RestoreReport:
    """restore_snapshot of a file already verified completely (its ``names`` read from it)."""
    bulk = store.bulk()
    if header.namespace != bulk.namespace:
        raise SnapshotError(path, f"belongs to namespace {header.namespace!r}, not {bulk.namespace!r}")
    plan = plan_restore(path, header, names, bulk.names(), only, delete_others)
    report = RestoreReport(path.name, dry_run)
    if dry_run:
        _compare(bulk, plan, report)
    else:
        _execute(bulk, plan, report, progress, lease_ttl)
    report.seconds = time.monotonic() - started
    return report


def _selected(plan: RestorePlan) -> Iterable[Record]:
    wanted = set(plan.restore)
    _, records = read_snapshot(plan.snapshot)
    return (record for record in records if record.name in wanted)


def _batches(records: Iterable[Record], size: int) -> Iterable[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _compare(bulk: SharedStore, plan: RestorePlan, report: RestoreReport) -> None:
    chunks: deque[list[Record]] = deque()

    def calls() -> Iterator[Call[list[Record | None]]]:
        for chunk in _batches(_selected(plan), BATCH):
            chunks.append(chunk)
            yield batch.dump(bulk._core, [record.name for record in chunk])

    for current in pipelined(bulk, calls(), "read documents"):  # as a snapshot reads them
        for record, now in zip(chunks.popleft(), current, strict=True):
            report.restored.append(record.name)
            if now is None:
                report.created.append(record.name)
            elif dumps_tagged(now.data) == dumps_tagged(record.data):
                report.unchanged.append(record.name)
            else:
                report.changed.append(record.name)
    report.deleted = list(plan.delete)


def _execute(
    bulk: SharedStore, plan: RestorePlan, report: RestoreReport, progress: Progress | None, lease_ttl: float
) -> None:
    lease = state.restore_lease(bulk, lease_ttl)
    if lease.acquire() is None:
        raise SharedStateError(f"another restore of namespace {bulk.namespace!r} is running")
    try:
        state.set_restore_intent(
            bulk,
            {
                "snapshot": plan.snapshot.name,
                "only": None if plan.full else list(plan.restore),
                "started_at": time.time(),
                "by": f"{socket.gethostname()}:{os.getpid()}",
            },
        )
        if plan.full:
            state.clear_marker(bulk)
        report.floor = state.raise_floor(bulk, max(int(time.time() * 1000), plan.header.max_version))
        holding = _Holding(lease, lease_ttl, progress, len(plan.restore) + len(plan.delete))
        writer = f"restore:{plan.snapshot.name}"[:200]
        batches: deque[list[str]] = deque()

        def calls() -> Iterator[Call[list[Written]]]:
            for names, call in batch.restore_calls(bulk._core, _selected(plan), writer):
                batches.append(names)
                yield call

        for _ in pipelined(bulk, calls(), "restore documents"):  # the next batch is sent meanwhile
            names = batches.popleft()
            report.restored += names
            holding.advanced(len(names))
        for start in range(0, len(plan.delete), BATCH):
            names = list(plan.delete[start : start + BATCH])
            bulk._run_many(
                [bulk._core.delete(name, None, writer=writer) for name in names], "delete documents"
            )
            report.deleted += names
            holding.advanced(len(names))
        if len(report.restored) != len(plan.restore):
            raise SnapshotError(plan.snapshot, "changed while it was being restored")
        holding.renew()  # still ours: no other restore took over while this one was paused
        if plan.full:
            state.set_marker(bulk)
        state.clear_restore_intent(bulk)
    finally:
        lease.release()


class _Holding:
    """Keeps the restore's lease: renewed once a third of its lifetime has passed, not after
    every batch (a renewal waits behind the batch in flight, leaving Redis idle meanwhile)."""

    def __init__(self, lease: Lease, ttl: float, progress: Progress | None, total: int) -> None:
        self.lease = lease
        self.every = ttl / 3
        self.renewed = time.monotonic()
        self.progress = progress
        self.total = total
        self.done = 0

    def advanced(self, count: int) -> None:
        """``count`` more documents are done: report progress, renew the lease when due."""
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)
        if time.monotonic() - self.renewed >= self.every:
            self.renew()

    def renew(self) -> None:
        """Renew now; SharedStateError if the lease was lost meanwhile."""
        if not self.lease.renew():
            raise SharedStateError("the restore lost its lock (it ran longer than the lock's lifetime)")
        self.renewed = time.monotonic()


def restore_newest(
    store: SharedStore,
    directory: Path,
    *,
    only: Iterable[str] | None = None,
    dry_run: bool = False,
    delete_others: bool = True,
    prefer: str | None = None,
    progress: Progress | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    lease_ttl: float = state.RESTORE_LEASE_TTL,
) -> RestoreReport | None:
    """Restore the newest snapshot of the namespace that verifies (``prefer`` an id first).

    Newer snapshots that fail verification are skipped, each reported to ``on_skip`` and in
    ``report.skipped``. None if the directory holds no snapshot of the namespace at all;
    SnapshotError if none verifies.
    """
    entries = list_snapshots(directory, store.namespace)
    if prefer is not None:
        entries.sort(key=lambda entry: entry.id != prefer)
    if not entries:
        return None
    skipped: list[tuple[str, str]] = []
    verified: dict[str, str] = {}
    for entry in entries:
        started = time.monotonic()
        reason = entry.error
        if reason is None:
            try:
                header, names = _names_of(entry.path)  # verifies the whole file
            except SnapshotError as exc:
                reason = exc.reason
        if reason is not None:
            skipped.append((entry.id, reason))
            verified[entry.id] = reason
            if on_skip is not None:
                on_skip(entry.id, reason)
            continue
        verified[entry.id] = "ok"
        report = _restore(
            store, entry.path, header, names, started, only, dry_run, delete_others, progress, lease_ttl
        )
        report.skipped = skipped
        _publish(store, directory, verified)
        return report
    _publish(store, directory, verified)
    raise SnapshotError(
        directory, f"no snapshot of namespace {store.namespace!r} verifies ({len(skipped)} tried)"
    )


def _publish(store: SharedStore, directory: Path, verified: dict[str, str]) -> None:
    try:
        publish_catalogue(store, directory, verified)
    except SharedStateError as exc:  # the catalogue is a convenience; the restore stands
        log.warning("could not publish the snapshot catalogue: %s", exc)


def auto_restore(
    store: SharedStore, directory: Path, lease_ttl: float = state.RESTORE_LEASE_TTL
) -> RestoreReport | None:
    """At start-up and periodically: put the namespace back if Redis lost it.

    Does nothing while the marker is present and no restore was interrupted. If the marker is
    missing (Redis restarted empty) and snapshots exist, restores the newest valid one (the
    interrupted restore's snapshot first), keeping documents written since the loss that the
    snapshot does not have, and logs it loudly. With no snapshot the namespace is new: it is
    marked and left as it is.
    """
    bulk = store.bulk()
    if state.restore_lease(bulk).held_by_anyone():
        return None  # a restore is running right now
    intent = state.restore_intent(bulk)
    if intent is None and state.get_marker(bulk) is not None:
        return None
    only = intent.get("only") if intent else None
    prefer = intent.get("snapshot") if intent else None

    def skipped(snapshot: str, reason: str) -> None:
        log.error("AUTO-RESTORE: skipping snapshot %s: %s", snapshot, reason)

    try:
        report = restore_newest(
            store,
            directory,
            only=only,
            delete_others=False,
            prefer=prefer,
            on_skip=skipped,
            lease_ttl=lease_ttl,
        )
    except SnapshotError as exc:
        log.critical(
            "AUTO-RESTORE FAILED for namespace %r: %s. The namespace starts EMPTY; the bad files stay "
            "in %s for inspection.",
            bulk.namespace,
            exc.reason,
            directory,
        )
        state.set_marker(bulk)
        state.clear_restore_intent(bulk)
        return None
    if report is None:
        state.set_marker(bulk)  # nothing to restore: a new namespace
        state.clear_restore_intent(bulk)
        return None
    log.critical(
        "AUTO-RESTORE: Redis had lost namespace %r; restored %d documents from snapshot %s "
        "(version floor now %d, %d newer snapshot(s) skipped)",
        bulk.namespace,
        len(report.restored),
        report.snapshot,
        report.floor,
        len(report.skipped),
    )
    return report
