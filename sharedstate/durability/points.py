"""Restorable points: a snapshot plus the journal after it, up to a time.

``plan_point`` decides, from the target's listing alone, which snapshots may serve a time and
which journal segments each needs (pure). ``replay`` then reads those segments and applies
their entries after the snapshot's feed position, up to the time, to the documents they
touch: the result is an overlay on the snapshot (document -> its state then, or None where
it was deleted). An entry is applied only above the version the snapshot holds, so the
changes a snapshot already caught (it reads documents after noting its feed position) are
not applied twice.

A gap in the journal ends every point that starts before it: what happened there is known
only from a snapshot taken after it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sharedstate.durability.format import Record, read_snapshot
from sharedstate.durability.journal import (
    Doc,
    Entry,
    Gap,
    SegmentName,
    apply,
    id_key,
    read_segment,
)
from sharedstate.durability.snapshots import SnapshotEntry
from sharedstate.durability.target import JOURNAL, Target
from sharedstate.errors import SnapshotError

MARGIN = 60.0  # seconds: segments opened this long before a snapshot may still hold changes after it


@dataclass(frozen=True, slots=True)
class PointPlan:
    """Which snapshots may serve time ``at`` (newest first) and the segments each needs."""

    at: float | None
    candidates: tuple[tuple[SnapshotEntry, tuple[SegmentName, ...]], ...]
    skipped: tuple[tuple[str, str], ...]  # newer snapshots passed over: (id, why)


def plan_point(snapshots: list[SnapshotEntry], segments: list[SegmentName], at: float | None) -> PointPlan:
    """Pure: the snapshots that may serve ``at`` (None: now), newest first, each with the journal
    segments to replay after it. A snapshot serves ``at`` if it was complete by then, is not
    dated in the future and its header reads."""
    ordered = sorted(segments)
    candidates = []
    skipped = []
    for entry in snapshots:  # newest first
        if entry.header is None or entry.error is not None:
            skipped.append((entry.id, entry.error or "unreadable"))
            continue
        if at is not None and entry.header.complete_at > at:
            continue  # taken after the time asked for: not a candidate, not a failure
        start = entry.header.created_at - MARGIN
        first = 0
        for index, segment in enumerate(ordered):
            if segment.created_at <= start:
                first = index
        needed = tuple(
            segment for segment in ordered[first:] if at is None or segment.created_at <= at + MARGIN
        )
        candidates.append((entry, needed))
    return PointPlan(at, tuple(candidates), tuple(skipped))


def describe(snapshot_id: str, entries: int, until: float | None) -> str:
    """``<snapshot id>``, or ``<snapshot id> + journal to <time>`` once journal entries were applied."""
    if not entries or until is None:
        return snapshot_id
    return f"{snapshot_id} + journal to {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(until))}"


@dataclass(slots=True)
class Point:
    """A snapshot and what the journal changed after it, up to ``until``."""

    snapshot: SnapshotEntry
    overlay: dict[str, Doc | None] = field(default_factory=dict)
    entries: int = 0  # journal entries applied
    until: float = 0.0  # time of the last change included (0: none)
    gap: Gap | None = None  # the gap the journal stops at, if any
    problems: list[str] = field(default_factory=list)  # segments that could not be read in full

    @property
    def description(self) -> str:
        """The snapshot's id, and how far the journal took it."""
        return describe(self.snapshot.id, self.entries, self.until)

    def records(self, records: Iterable[Record]) -> Iterator[Record]:
        """The snapshot's ``records`` with the overlay applied (the journal's documents last)."""
        for record in records:
            if record.name not in self.overlay:
                yield record
        for name in sorted(self.overlay):
            doc = self.overlay[name]
            if doc is not None:
                yield Record(name, doc.version, doc.updated_at, doc.updated_by, doc.data)

    def versions(self, base: dict[str, int]) -> dict[str, int]:
        """Each document's version at this point, from the snapshot's ``base``."""
        out = dict(base)
        for name, doc in self.overlay.items():
            if doc is None:
                out.pop(name, None)
            else:
                out[name] = doc.version
        return out


class GapInJournal(SnapshotError):
    """The time asked for lies past a gap in the journal that no later snapshot covers."""


def replay(
    target: Target,
    snapshot: SnapshotEntry,
    segments: Iterable[SegmentName],
    at: float | None,
    key: bytes | None = None,
) -> Point:
    """Read ``segments`` and apply their entries after ``snapshot`` up to ``at`` (None: all).

    The snapshot is read once, for the documents the journal touches. A segment that cannot be
    read in full ends the point where it stops trusting it (named in ``problems``)."""
    assert snapshot.header is not None
    after = id_key(snapshot.header.feed_position)
    point = Point(snapshot)
    entries: list[Entry] = []
    stopped = False
    for name in segments:
        try:
            segment = read_segment(target.source(JOURNAL, name.name), key)
        except SnapshotError as exc:
            point.problems.append(f"{name.name}: {exc.reason}")
            break
        for item in segment.items:
            if isinstance(item, Gap):
                if entries or item.at > snapshot.header.created_at:
                    point.gap = item
                    stopped = True
                    break
                continue  # a gap before the snapshot: the snapshot knows what came after it
            if id_key(item.id) <= after:
                continue
            if at is not None and item.time > at:
                stopped = True
                break
            entries.append(item)
        if stopped:
            break
        if segment.torn is not None:
            # the open segment of a worker that crashed: what it never flushed was never
            # durable, and the journal resumed after its last trusted entry in the next one
            point.problems.append(f"{name.name}: {segment.torn}")
    if not entries:
        return point
    touched = {entry.name for entry in entries}
    docs: dict[str, Doc | None] = {}
    _, records = read_snapshot(snapshot.path, key=key)
    for record in records:
        if record.name in touched:
            docs[record.name] = Doc(record.version, record.data, record.updated_at, record.updated_by)
    changed: set[str] = set()
    for entry in entries:
        if apply(docs, entry):
            changed.add(entry.name)
            point.entries += 1
            point.until = max(point.until, entry.time)
    point.overlay = {name: docs[name] for name in changed}
    return point


@dataclass(frozen=True, slots=True)
class Window:
    """The times a point-in-time restore can reach: from the oldest snapshot (complete) to the
    newest change the journal holds (or the newest snapshot)."""

    start: float | None
    end: float | None
    segments: int


def window(
    target: Target, snapshots: list[SnapshotEntry], segments: list[SegmentName], key: bytes | None = None
) -> Window:
    """The restorable window; reads only the newest segments."""
    good = [
        entry.header.complete_at for entry in snapshots if entry.header is not None and entry.error is None
    ]
    if not good:
        return Window(None, None, len(segments))
    end = max(good)
    for name in sorted(segments, reverse=True)[:3]:
        try:
            items = read_segment(target.source(JOURNAL, name.name), key).items
        except SnapshotError:
            continue
        times = [item.time for item in items if isinstance(item, Entry)]
        if times:
            end = max(end, max(times))
            break
    return Window(min(good), end, len(segments))


def unneeded_segments(snapshots: list[SnapshotEntry], segments: list[SegmentName]) -> list[SegmentName]:
    """Pure: the segments no kept snapshot needs for a point-in-time restore (those entirely
    before the oldest snapshot, less a margin). With no readable snapshot, none: the journal is
    all there is."""
    times = [entry.header.created_at for entry in snapshots if entry.header is not None and not entry.future]
    if not times:
        return []
    start = min(times) - MARGIN
    ordered = sorted(segments)
    first = 0
    for index, segment in enumerate(ordered):
        if segment.created_at <= start:
            first = index
    return ordered[: min(first, max(len(ordered) - 1, 0))]
