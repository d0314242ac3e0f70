"""Restores: planned by a pure function, then executed; and the automatic restore.

The rule: a restore writes a document only where Redis has no copy or an older one (a lower
version than the backup's), never where it was deleted after the backup, and deletes nothing;
so a restore run on a false alarm changes nothing. ``force`` rolls back on purpose. Restored
documents get fresh versions (restore.lua), so a writer holding a pre-loss version gets
VersionConflict; the lease's value is checked inside each writing call, so a restore paused
past its lease never writes again.

A restore never acts on a file that has not verified completely. While a full restore runs,
the namespace's marker is absent and ``sys:restore`` names the snapshot: a restore that is
killed half-way is finished with the same snapshot by the next ``auto_restore``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharedstate._core import Call
from sharedstate.durability import batch, state
from sharedstate.durability.format import Header, Record, read_snapshot
from sharedstate.durability.journal import SegmentName, segments_of
from sharedstate.durability.pipelined import pipelined
from sharedstate.durability.points import GapInJournal, Point, describe, plan_point, replay
from sharedstate.durability.snapshots import Progress, SnapshotEntry, list_snapshots, publish_catalogue
from sharedstate.durability.target import Source, Target, as_target
from sharedstate.errors import InvalidDocument, SharedStateError, SnapshotError
from sharedstate.jsonio import dumps_tagged
from sharedstate.lease import Lease
from sharedstate.store import SharedStore

log = logging.getLogger("sharedstate.durability")

BATCH = 200  # documents per call when a dry run compares, or a restore deletes


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What a restore will do: write ``write`` from the backup, delete ``delete``; ``kept`` are
    left because Redis has the backup's version or a newer one, ``gone`` because they were
    deleted after the backup. ``force`` writes whatever Redis holds (a roll-back on purpose)."""

    snapshot: Source
    header: Header
    key: bytes | None
    write: tuple[str, ...]
    delete: tuple[str, ...]
    kept: tuple[str, ...]
    gone: tuple[str, ...]
    absent: frozenset[str]  # of ``write``: those Redis has no copy of
    full: bool
    force: bool
    max_version: int = 0  # the highest version the backup holds
    point: Point | None = None  # what the journal changed after the snapshot


def plan_restore(
    snapshot: Source,
    header: Header,
    key: bytes | None,
    in_backup: Mapping[str, int],
    live: Mapping[str, int],
    deleted: Mapping[str, int],
    only: Iterable[str] | None = None,
    force: bool = False,
    point: Point | None = None,
) -> RestorePlan:
    """Decide what to write and delete. Pure: no I/O.

    ``in_backup`` and ``live`` map names to versions (the backup's, Redis's), ``deleted`` names
    to the version of their delete. By the restore rule a document is written only where Redis
    has no copy or an older one, and never where it was deleted after the backup; nothing is
    deleted. ``force`` writes every backup document and (restoring everything) deletes the
    documents the backup does not hold. ``only`` restores a subset, nothing else touched.
    """
    if only is not None:
        wanted = sorted(set(only))
        missing = [name for name in wanted if name not in in_backup]
        if missing:
            where = point.description if point is not None else snapshot.name
            raise InvalidDocument(f"not in {where}: {', '.join(missing)}")
    else:
        wanted = sorted(in_backup)
    write: list[str] = []
    kept: list[str] = []
    gone: list[str] = []
    for name in wanted:
        version, current = in_backup[name], live.get(name, 0)
        if force or (current < version and not (current == 0 and deleted.get(name, 0) >= version)):
            write.append(name)
        elif current:
            kept.append(name)
        else:
            gone.append(name)
    delete = sorted(set(live) - set(in_backup)) if force and only is None else []
    absent = frozenset(name for name in write if not live.get(name))
    return RestorePlan(
        snapshot,
        header,
        key,
        tuple(write),
        tuple(delete),
        tuple(kept),
        tuple(gone),
        absent,
        only is None,
        force,
        max(in_backup.values(), default=0),
        point,
    )


@dataclass(slots=True)
class RestoreReport:
    """What a restore did (or, dry, would do)."""

    snapshot: str
    dry_run: bool
    force: bool = False
    restored: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # Redis had the backup's version or a newer one
    gone: list[str] = field(default_factory=list)  # deleted after the backup: left deleted
    skipped: list[tuple[str, str]] = field(default_factory=list)  # newer snapshots passed over: (id, why)
    floor: int = 0
    seconds: float = 0.0
    journal_entries: int = 0  # changes of the journal applied after the snapshot
    journal_to: float | None = None  # the time of the last of them

    @property
    def description(self) -> str:
        """The snapshot's id, and how far the journal took it."""
        return describe(self.snapshot, self.journal_entries, self.journal_to)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "snapshot": self.snapshot,
            "journal_entries": self.journal_entries,
            "journal_to": self.journal_to,
            "dry_run": self.dry_run,
            "force": self.force,
            "restored": len(self.restored),
            "deleted": self.deleted,
            "created": self.created,
            "changed": self.changed,
            "unchanged": len(self.unchanged),
            "kept_newer": len(self.kept),
            "left_deleted": self.gone,
            "skipped": [{"id": snapshot, "reason": reason} for snapshot, reason in self.skipped],
            "floor": self.floor,
            "seconds": round(self.seconds, 3),
        }


def _versions_of(path: Source, key: bytes | None) -> tuple[Header, dict[str, int]]:
    """Verify the whole file and return its header and each document's version."""
    header, records = read_snapshot(path, exact=False, key=key)
    return header, {record.name: record.version for record in records}


def restore_snapshot(
    store: SharedStore,
    path: Source | str,
    *,
    only: Iterable[str] | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    lease_ttl: float = state.RESTORE_LEASE_TTL,
    key: bytes | None = None,
) -> RestoreReport:
    """Restore ``path`` into the store's namespace (all documents, or ``only`` some), by the
    restore rule: only where Redis has no copy or an older one; ``force`` replaces newer ones
    too and deletes what the snapshot does not hold.

    Raises SnapshotError before writing anything if the file does not verify, or if it
    belongs to another namespace.
    """
    started = time.monotonic()
    path = Path(path) if isinstance(path, str) else path
    header, versions = _versions_of(path, key)
    return _restore(store, path, header, key, versions, started, only, dry_run, force, progress, lease_ttl)


def _restore(
    store: SharedStore,
    path: Source,
    header: Header,
    key: bytes | None,
    versions: dict[str, int],
    started: float,
    only: Iterable[str] | None,
    dry_run: bool,
    force: bool,
    progress: Progress | None,
    lease_ttl: float,
    point: Point | None = None,
) -> RestoreReport:
    """restore_snapshot of a file already verified completely (its documents' ``versions`` read),
    with what the journal changed after it (``point``)."""
    bulk = store.bulk()
    if header.namespace != bulk.namespace:
        raise SnapshotError(path, f"belongs to namespace {header.namespace!r}, not {bulk.namespace!r}")
    if point is not None:
        versions = point.versions(versions)
    names = sorted(set(bulk.names()) | set(versions)) if force and only is None else sorted(versions)
    live, deleted = _live_versions(bulk, names if only is None else sorted(set(only) & set(versions)))
    plan = plan_restore(path, header, key, versions, live, deleted, only, force, point)
    report = RestoreReport(path.name, dry_run, force, kept=list(plan.kept), gone=list(plan.gone))
    if point is not None and point.entries:
        report.journal_entries, report.journal_to = point.entries, point.until
    if dry_run:
        _compare(bulk, plan, report)
    else:
        _execute(bulk, plan, report, progress, lease_ttl)
    report.seconds = time.monotonic() - started
    return report


def _live_versions(bulk: SharedStore, names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """What Redis holds of ``names``: their versions, and the versions of their deletes."""
    live: dict[str, int] = {}
    deleted: dict[str, int] = {}
    chunks: deque[list[str]] = deque()

    def calls() -> Iterator[Call[list[tuple[int, int]]]]:
        for start in range(0, len(names), batch.MAX_DOCUMENTS):
            chunk = names[start : start + batch.MAX_DOCUMENTS]
            chunks.append(chunk)
            yield batch.versions(bulk._core, chunk)

    for answers in pipelined(bulk, calls(), "read document versions"):
        for name, (version, tomb) in zip(chunks.popleft(), answers, strict=True):
            if version:
                live[name] = version
            if tomb:
                deleted[name] = tomb
    return live, deleted


def _selected(plan: RestorePlan) -> Iterable[Record]:
    wanted = set(plan.write)
    _, records = read_snapshot(plan.snapshot, key=plan.key)
    if plan.point is not None:
        records = plan.point.records(records)
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
    report.deleted = list(plan.delete)
    if not plan.force:  # Redis has none or an older version of each: no need to read them
        report.restored = list(plan.write)
        report.created = sorted(plan.absent)
        report.changed = [name for name in plan.write if name not in plan.absent]
        return
    chunks: deque[list[Record]] = deque()

    def calls() -> Iterator[Call[list[Record | batch.Unreadable | None]]]:
        for chunk in _batches(_selected(plan), BATCH):
            chunks.append(chunk)
            yield batch.dump(bulk._core, [record.name for record in chunk])

    for current in pipelined(bulk, calls(), "read documents"):  # as a snapshot reads them
        for record, now in zip(chunks.popleft(), current, strict=True):
            report.restored.append(record.name)
            if now is None:
                report.created.append(record.name)
            elif isinstance(now, Record) and dumps_tagged(now.data) == dumps_tagged(record.data):
                report.unchanged.append(record.name)
            else:
                report.changed.append(record.name)


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
                "only": None if plan.full else list(plan.write),
                "force": plan.force,
                "started_at": time.time(),
                "by": f"{socket.gethostname()}:{os.getpid()}",
            },
        )
        if plan.full:
            state.clear_marker(bulk)
        # a document created later gets a version above every one the backup holds, even if the
        # server's clock stepped back (write.lua)
        report.floor = state.raise_floor(bulk, max(plan.header.max_version, plan.max_version))
        holding = _Holding(lease, lease_ttl, progress, len(plan.write) + len(plan.delete))
        target = batch.Target(not plan.force, lease.value, f"restore:{plan.snapshot.name}"[:200])

        def calls() -> Iterator[Call[list[batch.Restored]]]:
            for _, call in batch.restore_calls(bulk._core, _selected(plan), target, plan.delete):
                yield call

        seen = 0
        for results in pipelined(bulk, calls(), "restore documents"):  # the next batch is sent meanwhile
            for result in results:
                if result.status == "w":
                    report.restored.append(result.name)
                    (report.created if result.name in plan.absent else report.changed).append(result.name)
                elif result.status == "x":
                    report.deleted.append(result.name)
                elif result.status == "k":
                    report.kept.append(result.name)  # written by someone since the plan: newer
                elif result.status == "g":
                    report.gone.append(result.name)
            seen += len(results)
            if results:
                holding.advanced(len(results))
        if seen != len(plan.write) + len(plan.delete):
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
    where: Target | Path,
    *,
    only: Iterable[str] | None = None,
    dry_run: bool = False,
    force: bool = False,
    prefer: str | None = None,
    progress: Progress | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    lease_ttl: float = state.RESTORE_LEASE_TTL,
    key: bytes | None = None,
    publish: bool = False,
    at: float | None = None,
    journal: bool = True,
) -> RestoreReport | None:
    """Restore the newest point of the namespace: the newest snapshot that verifies (``prefer``
    an id first) plus the journal after it; with ``at``, the state at that time (the newest
    snapshot complete by then, and the journal up to it).

    Newer snapshots that fail verification are skipped, each reported to ``on_skip`` and in
    ``report.skipped``. None if the target holds no snapshot of the namespace at all;
    SnapshotError if none verifies (or none serves ``at``), GapInJournal if ``at`` lies past a
    gap in the journal. ``publish``: the worker's own target, whose verification results go
    into the catalogue (only the worker publishes it). ``journal=False``: the snapshot alone.
    """
    target = as_target(where)
    entries = list_snapshots(target, store.namespace)
    if prefer is not None:
        entries.sort(key=lambda entry: entry.id != prefer)
    if not entries:
        return None
    segments = segments_of(target, store.namespace) if journal else []
    needs = {entry.id: needed for entry, needed in plan_point(entries, segments, at).candidates}
    skipped: list[tuple[str, str]] = []
    verified: dict[str, str] = {}
    for entry in entries:
        if entry.error is None and entry.id not in needs:
            continue  # complete only after the time asked for
        started = time.monotonic()
        reason = entry.error
        if reason is None:
            try:
                header, versions = _versions_of(entry.path, key)  # verifies the whole file
            except SnapshotError as exc:
                reason = exc.reason
        if reason is not None:
            skipped.append((entry.id, reason))
            verified[entry.id] = reason
            if on_skip is not None:
                on_skip(entry.id, reason)
            continue
        verified[entry.id] = "ok"
        point = _point(target, entry, needs[entry.id], at, key) if segments else None
        report = _restore(
            store,
            entry.path,
            header,
            key,
            versions,
            started,
            only,
            dry_run,
            force,
            progress,
            lease_ttl,
            point,
        )
        report.skipped = skipped
        if publish:
            _publish(store, target, verified)
        return report
    if publish:
        _publish(store, target, verified)
    if at is not None and not skipped:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
        raise SnapshotError(
            target.description, f"no snapshot of namespace {store.namespace!r} was complete by {stamp}"
        )
    raise SnapshotError(
        target.description, f"no snapshot of namespace {store.namespace!r} verifies ({len(skipped)} tried)"
    )


def _point(
    target: Target, entry: SnapshotEntry, segments: Sequence[SegmentName], at: float | None, key: bytes | None
) -> Point:
    """The snapshot with the journal after it replayed up to ``at``."""
    point = replay(target, entry, segments, at, key)
    for problem in point.problems:
        log.error("journal: %s", problem)
    if point.gap is not None:
        if at is not None and at > point.gap.at:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(point.gap.at))
            raise GapInJournal(
                target.description,
                f"the journal has a gap at {stamp} ({point.gap.reason}) and no snapshot taken after it "
                "was complete by the time asked for",
            )
        log.warning("journal: replay of %s stops at a gap (%s)", entry.id, point.gap.reason)
    return point


def restore_lost(
    store: SharedStore,
    where: Target | Path,
    names: Iterable[str],
    *,
    force: bool = False,
    lease_ttl: float = state.RESTORE_LEASE_TTL,
    key: bytes | None = None,
) -> dict[str, str]:
    """Put back documents Redis lost in part, each from the newest snapshot that verifies and
    holds it (a snapshot taken since the loss may not): those that lost their meta by the
    restore rule, and with ``force`` those whose data is gone under their meta (the rule, which
    goes by version, would keep them). Returns name -> snapshot id of those put back."""
    wanted = set(names)
    done: dict[str, str] = {}
    for entry in list_snapshots(where, store.namespace):
        if not wanted:
            break
        if entry.error is not None:
            continue
        started = time.monotonic()
        try:
            header, versions = _versions_of(entry.path, key)  # verified: not read again to plan
        except SnapshotError:
            continue
        held = sorted(wanted & set(versions))
        if held:
            report = _restore(
                store, entry.path, header, key, versions, started, held, False, force, None, lease_ttl
            )
            done.update(dict.fromkeys(report.restored, entry.id))
            wanted -= set(held)
    return done


def _publish(store: SharedStore, target: Target, verified: dict[str, str]) -> None:
    try:
        publish_catalogue(store, target, verified)
    except SharedStateError as exc:  # the catalogue is a convenience; the restore stands
        log.warning("could not publish the snapshot catalogue: %s", exc)


def auto_restore(
    store: SharedStore,
    where: Target | Path,
    lease_ttl: float = state.RESTORE_LEASE_TTL,
    *,
    missing: Iterable[str] = (),
    key: bytes | None = None,
) -> RestoreReport | None:
    """At start-up, periodically, and when documents are ``missing``: fill the namespace in.

    Does nothing while the marker is present, no restore was interrupted and nothing is known
    missing. Otherwise (Redis lost data, or a restore was interrupted) restores the newest valid
    snapshot (the interrupted restore's first) by the restore rule, so documents written since
    the loss are kept and a false alarm changes nothing, and logs it loudly. With no snapshot
    the namespace is new: it is marked and left as it is.
    """
    bulk = store.bulk()
    if state.restore_lease(bulk).held_by_anyone():
        return None  # a restore is running right now
    missing = sorted(missing)
    intent = state.restore_intent(bulk)
    if intent is None and not missing and state.get_marker(bulk) is not None:
        return None
    only = intent.get("only") if intent else None
    prefer = intent.get("snapshot") if intent else None
    if missing:
        log.critical(
            "AUTO-RESTORE: %d document(s) of namespace %r are missing from Redis (%s): filling in",
            len(missing), bulk.namespace, ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""),
        )  # fmt: skip
        only = None

    def skipped(snapshot: str, reason: str) -> None:
        log.error("AUTO-RESTORE: skipping snapshot %s: %s", snapshot, reason)

    try:
        report = restore_newest(
            store,
            where,
            only=only,
            prefer=prefer,
            on_skip=skipped,
            lease_ttl=lease_ttl,
            key=key,
            publish=True,
        )  # never forced: an interrupted roll-back is only filled in
    except SnapshotError as exc:
        log.critical(
            "AUTO-RESTORE FAILED for namespace %r: %s. The namespace starts EMPTY; the bad files stay "
            "in %s for inspection.",
            bulk.namespace,
            exc.reason,
            as_target(where).description,
        )
        state.set_marker(bulk)
        state.clear_restore_intent(bulk)
        return None
    if report is None:
        state.set_marker(bulk)  # nothing to restore: a new namespace
        state.clear_restore_intent(bulk)
        return None
    log.critical(
        "AUTO-RESTORE of namespace %r from snapshot %s: %d document(s) filled in, %d kept (Redis had "
        "them at the snapshot's version or newer), %d left deleted, %d newer snapshot(s) skipped",
        bulk.namespace,
        report.description,
        len(report.restored),
        len(report.kept),
        len(report.gone),
        len(report.skipped),
    )
    return report
