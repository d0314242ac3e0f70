"""The journaler: follows the change feed and appends every change to journal segments on the
backup target, each change there within a second of its acknowledgement.

One journaler per namespace (a lease in Redis); the worker runs it in a thread. It resumes
after the last entry the target holds, so its position survives restarts. When the feed no
longer holds what comes after that position (trimmed past it while the worker was away, or
Redis lost it) the journal records a gap and ``on_gap`` is called: the worker then takes a
snapshot at once, the only way to know the state again.

A directory target gets each flush appended and fsynced; a bucket gets the open segment
uploaded whole at each flush, so segments are rolled small (by bytes and by age).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sharedstate.durability import state
from sharedstate.durability.journal import Entry, Gap, SegmentWriter, read_segment, segments_of
from sharedstate.durability.target import JOURNAL, Target, out_of_space
from sharedstate.errors import (
    DocumentNotFound,
    FeedTrimmed,
    SharedStateError,
    SnapshotError,
    StoreUnavailable,
)
from sharedstate.models import Change
from sharedstate.store import SharedStore

log = logging.getLogger("sharedstate.journal")

FLUSH_EVERY = 0.25  # seconds a change waits in memory at most before it is sent to the target
SEGMENT_BYTES = 1 << 20  # uncompressed bytes after which a segment is closed and a new one opened
SEGMENT_SECONDS = 300.0  # age after which a segment is closed
SEGMENT_STORED = 256 << 10  # stored (compressed) bytes after which a segment is closed: a bucket
# re-uploads the open segment at every flush, so this bounds each upload whatever the changes hold
BATCH_WINDOW = 0.1  # seconds of changes taken in one stretch before a pause
PAUSE = 0.1  # seconds between stretches while changes keep coming: they are then read in bulk
PUBLISH_EVERY = 1.0  # seconds between updates of the journal's state in Redis
RETRY_EVERY = 1.0  # seconds between attempts while Redis or the target is away
READ_BACK_MAX = 4 << 20  # bytes: a document whose change the feed left out is read back up to this size
QUEUE_MAX = 64 << 20  # bytes of changes kept for a target that refuses writes, before a gap


class Journaler:
    """``Journaler(store, target).run(stopping)``: journal until ``stopping`` is set."""

    def __init__(
        self,
        store: SharedStore,
        target: Target,
        *,
        key: bytes | None = None,
        on_gap: Callable[[Gap], None] | None = None,
        on_snapshot: Callable[[str], None] | None = None,
        read_back_max: int = READ_BACK_MAX,
        flush_every: float = FLUSH_EVERY,
        segment_bytes: int = SEGMENT_BYTES,
        segment_seconds: float = SEGMENT_SECONDS,
    ) -> None:
        self.store = store.bulk()
        self.target = target
        self.key = key
        self.on_gap = on_gap
        self.on_snapshot = on_snapshot
        self.read_back_max = read_back_max
        self.flush_every = flush_every
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.position = "0-0"
        self.segment: SegmentWriter | None = None
        self.next_seq = 1
        self.entries = 0
        self.gaps = 0
        self.last_gap: dict[str, Any] | None = None
        self.flushed_at = 0.0
        self.durable_id = ""  # the feed id of the last entry the target holds
        self._due = 0.0  # when the oldest unflushed change must be on the target
        self._published = 0.0
        self.ready = threading.Event()  # set once resumed (position known)

    # -- position ----------------------------------------------------------------------------

    def resume(self) -> None:
        """Continue after the last entry the target holds (a new segment, numbered after it)."""
        names = segments_of(self.target, self.store.namespace)
        self.next_seq = names[-1].seq + 1 if names else 1
        for parsed in reversed(names[-20:]):  # the newest segments may hold no entry yet
            try:
                last = read_segment(self.target.source(JOURNAL, parsed.name), self.key).last
            except SnapshotError as exc:
                log.error("journal: cannot read %s to resume: %s", parsed.name, exc.reason)
                continue
            if last:
                self.position = self.durable_id = last
                return
        self.position = "0-0"  # no journal yet: everything the feed still holds

    # -- writing -----------------------------------------------------------------------------

    def _open(self) -> SegmentWriter:
        if self.segment is None or self.segment.closed:
            self.segment = SegmentWriter(self.store.namespace, self.next_seq, key=self.key)
            self.next_seq += 1
        return self.segment

    def add(self, item: Entry | Gap) -> None:
        """Queue one item; it reaches the target at the next flush (within ``flush_every``)."""
        segment = self._open()
        if not segment.pending:
            self._due = time.monotonic() + self.flush_every
        segment.add(item)
        if isinstance(item, Entry):
            self.entries += 1

    def take(self, change: Change) -> None:
        """Journal one feed change (read back whole when the feed left its payload out)."""
        self.position = change.id
        if not change.omitted:
            self.add(Entry.of(change))
            return
        try:
            if self.store.info(change.name).size > self.read_back_max:
                # reading it whole would hold Redis (and this thread) for seconds: the values are
                # left to the snapshot this asks for
                self.add(Entry.of(change, unread=True))
                if self.on_snapshot is not None:
                    self.on_snapshot(f"{change.name!r} changed and is too large for the journal")
                return
            doc = self.store.get(change.name)
        except DocumentNotFound:
            return  # deleted since: its delete follows in the feed
        self.add(Entry.of(change, data=doc.data, version=doc.version))

    def due(self) -> bool:
        """Whether queued changes must be flushed now."""
        return self.segment is not None and self.segment.pending and time.monotonic() >= self._due

    def flush(self, close: bool = False) -> None:
        """Send what is queued (and with ``close`` seal the segment); rolls segments by size and
        age. SnapshotError if the target refuses: the data stays queued for the next try."""
        segment = self.segment
        if segment is None:
            return
        old = time.time() - segment.created_at >= self.segment_seconds
        big = segment.raw_bytes >= self.segment_bytes or len(segment.data) >= SEGMENT_STORED
        close = close or big or (old and segment.pending)
        if segment.pending or (close and not segment.closed):
            segment.flush(close=close)
        if segment.written < len(segment.data):
            self.target.write(JOURNAL, segment.name, bytes(segment.data), segment.written)
            segment.stored(len(segment.data))
            self.flushed_at = time.time()
            self.durable_id = segment.last or self.durable_id

    def publish(self, force: bool = False) -> None:
        """The journal's state in Redis (for health and the API), about once a second."""
        now = time.monotonic()
        if not force and now - self._published < PUBLISH_EVERY:
            return
        self._published = now
        record = {
            "position": self.durable_id,
            "segment": self.segment.name if self.segment is not None else None,
            "flushed_at": self.flushed_at or None,
            "entries": self.entries,
            "gaps": self.gaps,
            "last_gap": self.last_gap,
            "target": self.target.description,
            "updated_at": time.time(),
        }
        try:
            state.set_journal_state(self.store, record)
        except SharedStateError as exc:
            log.debug("journal: could not publish its state: %s", exc)

    def gap(self, exc: FeedTrimmed) -> None:
        """The feed no longer holds what follows the position: record it, start over."""
        reason = "the feed is empty (Redis lost it)" if not exc.oldest else f"trimmed up to {exc.oldest}"
        gap = Gap(time.time(), self.position, reason)
        log.critical("journal GAP in namespace %r after %s: %s; a snapshot is taken at once",
                     self.store.namespace, self.position, reason)  # fmt: skip
        self._record(gap)
        self.position = "0-0"

    def _record(self, gap: Gap) -> None:
        """Journal a gap, count it, publish it, and ask for the snapshot that covers it."""
        self.add(gap)
        self.gaps += 1
        self.last_gap = {"at": gap.at, "after": gap.after, "reason": gap.reason}
        if self.on_gap is not None:
            self.on_gap(gap)

    def refused(self, exc: SnapshotError) -> None:
        """The target refused a write. It stays queued and is sent again, unless the target is
        full or the queue has grown past ``QUEUE_MAX``: then the queued changes are dropped and
        a gap recorded (the snapshot taken for it covers them), so the journal never holds the
        space a snapshot needs, nor unbounded memory."""
        segment = self.segment
        queued = len(segment.data) - segment.written if segment is not None else 0
        if not out_of_space(exc) and queued < QUEUE_MAX:
            log.error("journal: the target refused a write (%s); keeping it queued", exc)
            return
        if segment is not None and not segment.last and not segment.written:
            log.debug("journal: the target is still full (%s)", exc)  # only the gap is queued: keep it
            return
        log.critical("journal: the target refused a write (%s); dropping %d queued byte(s)", exc, queued)
        self.segment = None  # what the target holds of it ends at its last check: readable
        self._record(Gap(time.time(), self.durable_id, f"the target refused writes ({exc.reason})"))

    # -- running -----------------------------------------------------------------------------

    def follow(self, stopping: threading.Event) -> None:
        """One stretch of following the feed: until idle for ``flush_every``, stopped, or (changes
        still coming) ``BATCH_WINDOW`` has passed, after which it pauses so that the next stretch
        reads what accumulated in bulk instead of waking Redis and itself for every change."""
        started = time.monotonic()
        busy = False
        for change in self.store.watch(after=self.position, timeout=self.flush_every):
            self.take(change)
            if self.due():
                self.flush()
            if stopping.is_set():
                break
            if time.monotonic() - started >= BATCH_WINDOW:
                busy = True
                break
        self.flush()
        if busy:
            stopping.wait(PAUSE)

    def run(self, stopping: threading.Event) -> None:
        """Journal until ``stopping`` is set, holding the namespace's journal lease."""
        lease = state.journal_lease(self.store)
        renew_every = state.JOURNAL_LEASE_TTL / 3
        while not stopping.is_set():
            try:
                if lease.acquire() is None:
                    stopping.wait(renew_every)
                    continue
                self.resume()
            except (StoreUnavailable, SnapshotError) as exc:
                log.warning("journal: cannot start yet (%s); trying again", exc)
                with contextlib.suppress(SharedStateError):
                    lease.release()  # so the next attempt (or another worker) can take it at once
                stopping.wait(RETRY_EVERY)
                continue
            log.info("journal of namespace %r to %s, after %s", self.store.namespace,
                     self.target.description, self.position)  # fmt: skip
            self.ready.set()
            renewed = time.monotonic()
            try:
                while not stopping.is_set():
                    try:
                        self.follow(stopping)
                    except FeedTrimmed as exc:
                        self.gap(exc)
                        self._flush_quietly()
                    except StoreUnavailable as exc:
                        log.debug("journal: Redis away (%s)", exc)
                        self._flush_quietly()
                        stopping.wait(RETRY_EVERY)
                    except SnapshotError as exc:
                        self.refused(exc)
                        stopping.wait(RETRY_EVERY)
                    self.publish()
                    if time.monotonic() - renewed >= renew_every:
                        if not lease.renew():
                            log.warning("journal: lost its lease (Redis lost it, or another worker took it)")
                            break
                        renewed = time.monotonic()
            except StoreUnavailable:
                continue  # renewing failed: Redis away; acquire again once it is back
            finally:
                self._flush_quietly(close=True)
                self.segment = None
        self.publish(force=True)
        with contextlib.suppress(SharedStateError):
            lease.release()

    def _flush_quietly(self, close: bool = False) -> None:
        try:
            self.flush(close=close)
        except SnapshotError as exc:
            self.refused(exc)
