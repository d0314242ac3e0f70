"""The continuous journal: segments, replay, the journaler against a real Redis, on a
directory and on a real bucket, and point-in-time restores."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sharedstate import SharedStore
from sharedstate.durability.journal import (
    Doc,
    Entry,
    Gap,
    SegmentWriter,
    apply,
    parse_segment_name,
    read_segment,
    segment_name,
    segments_of,
)
from sharedstate.durability.journaling import Journaler
from sharedstate.durability.restore import restore_newest
from sharedstate.durability.snapshots import take_snapshot
from sharedstate.durability.target import JOURNAL, DirectoryTarget, Target
from sharedstate.errors import SnapshotError


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def entry(name: str, version: int, op: str, fields: Any, removed: tuple[str, ...] = ()) -> Entry:
    return Entry(f"{version}-0", name, version, op, fields, removed, "w", float(version))


# -- pure ------------------------------------------------------------------------------------


def test_replay_applies_each_op_as_the_write_scripts_do() -> None:
    docs: dict[str, Doc | None] = {}
    assert apply(docs, entry("a", 1, "put", {"x": 1, "y": 2}))
    assert apply(docs, entry("a", 2, "put", {"y": 3}, removed=("x",)))  # changed fields + removed
    assert docs["a"] is not None and docs["a"].data == {"y": 3}
    assert apply(docs, entry("a", 3, "merge", {"z": {1, 2}}))
    assert apply(docs, entry("a", 4, "set_field", {"w": 2**80}))
    assert apply(docs, entry("a", 5, "delete_field", {}, removed=("y",)))
    assert docs["a"] is not None and docs["a"].data == {"z": {1, 2}, "w": 2**80}
    assert not apply(docs, entry("a", 5, "merge", {"late": 1}))  # already at that version
    assert apply(docs, entry("a", 6, "put", [1, 2]))  # a list replaces the object whole
    assert apply(docs, entry("a", 7, "put", {"back": True}))  # an object over a list: whole
    assert docs["a"] is not None and docs["a"].data == {"back": True}
    assert apply(docs, entry("a", 8, "delete", None))
    assert docs["a"] is None
    assert apply(docs, entry("b", 9, "merge", {"k": 1}))  # merge creates
    restore = Entry("10-0", "b", 10, "restore", {"only": 1}, (), "restore:x", 10.0, whole=True)
    assert apply(docs, restore)
    assert docs["b"] is not None and docs["b"].data == {"only": 1}


def test_a_segment_reads_back_up_to_its_last_good_check(tmp_path: Path) -> None:
    writer = SegmentWriter("bot", 3, created_at=1712345678.5, key=b"k")
    writer.add(entry("a", 1, "put", {"s": {1, 2}, "big": 2**70}))
    first, _ = writer.flush()
    writer.add(entry("a", 2, "merge", {"t": 1}))
    writer.add(Gap(5.0, "2-0", "trimmed up to 9-0"))
    whole, written_before = writer.flush(close=True)
    assert whole.startswith(first) and written_before == 0
    path = tmp_path / writer.name
    path.write_bytes(whole)
    segment = read_segment(path, b"k")
    assert segment.closed and segment.torn is None and segment.last == "2-0"
    assert [type(item).__name__ for item in segment.items] == ["Entry", "Entry", "Gap"]
    first_entry = segment.items[0]
    assert isinstance(first_entry, Entry) and first_entry.fields == {"s": {1, 2}, "big": 2**70}
    path.write_bytes(whole[:-10])  # a crash in the middle of the second flush
    torn = read_segment(path)
    assert [item.version for item in torn.items if isinstance(item, Entry)] == [1] and torn.torn
    with pytest.raises(SnapshotError):
        read_segment(path.with_name("none"))
    assert read_segment(path, b"other key").items == []  # signed with another key: nothing trusted
    raw = gzip.decompress(whole).replace(b'"t":1', b'"t":2')
    path.write_bytes(gzip.compress(raw))
    altered = read_segment(path)
    assert len(altered.items) == 1 and "checksum" in (altered.torn or "")


def test_segment_names_sort_in_journal_order() -> None:
    names = [segment_name("bot", seq, 1712345678.0 + seq) for seq in (9, 10, 100)]
    parsed = [parse_segment_name(name) for name in names]
    assert all(p is not None for p in parsed) and sorted(names) == names
    assert parse_segment_name(".tmp-" + names[0]) is None and parse_segment_name("x.jsonl.gz") is None


# -- the journaler ---------------------------------------------------------------------------


class Running:
    """A journaler in a thread, as the worker runs it."""

    def __init__(self, store: SharedStore, target: Target) -> None:
        self.gaps: list[Gap] = []
        self.asked: list[str] = []  # snapshots asked for
        self.journaler = Journaler(store, target, on_gap=self.gaps.append, on_snapshot=self.asked.append)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.journaler.run, args=(self.stopping,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.journaler.ready.wait(20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(20)
        assert not self.thread.is_alive()

    def caught_up(self, client: redis.Redis, namespace: str = "bot") -> None:
        newest = client.xrevrange(f"ss:{{{namespace}}}:feed", count=1)
        assert newest
        last = newest[0][0].decode()
        wait_for(lambda: self.journaler.durable_id == last)


@pytest.fixture
def journal_store(real_redis: redis.Redis) -> Iterator[SharedStore]:
    with SharedStore(real_redis, "bot", "bot", payload_limit=64) as store:
        yield store


def everything(store: SharedStore) -> dict[str, Any]:
    return {name: store.get(name).data for name in store.names()}


def test_every_change_since_the_snapshot_comes_back_after_a_wipe(
    journal_store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    store = journal_store
    store.put("config", {"greeting": "hi", "admins": {1, 2}})
    take_snapshot(store, target)
    with Running(store, target) as running:
        store.put("config", {"greeting": "hello", "admins": {1, 2, 3}})
        store.merge("users", {"42": {"name": "Ada"}})
        store.set_field("users", "7", {"name": "Bob"})
        store.delete_field("users", "42")
        store.put("big", {"blob": "x" * 500})  # over the payload limit: journaled from the document
        store.put("list", [1, 2, 3])
        store.put("gone", {"a": 1})
        store.delete("gone")
        for i in range(200):
            store.set_field("counter", "n", i)
        expected = everything(store)
        running.caught_up(real_redis)
    real_redis.flushall()
    report = restore_newest(store, target)
    assert report is not None and report.journal_entries > 0 and "journal" in report.description
    assert everything(store) == expected
    assert store.names() == sorted(expected)


def test_the_journal_resumes_after_its_last_entry(
    journal_store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    store = journal_store
    take_snapshot(store, target)
    with Running(store, target) as running:
        store.put("a", {"n": 1})
        running.caught_up(real_redis)
    store.put("a", {"n": 2})  # while no journaler runs
    with Running(store, target) as running:
        assert running.journaler.position != "0-0"
        running.caught_up(real_redis)
        assert running.gaps == []
    items = [
        item
        for name in segments_of(target, "bot")
        for item in read_segment(target.source(JOURNAL, name.name)).items
        if isinstance(item, Entry)
    ]
    assert [item.fields for item in items if item.name == "a"] == [{"n": 1}, {"n": 2}]  # once each
    assert len(segments_of(target, "bot")) == 2  # a restarted journaler opens a new segment


def test_a_feed_trimmed_past_the_journal_is_a_gap(
    journal_store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    store = journal_store
    with Running(store, target) as running:
        store.put("a", {"n": 1})
        running.caught_up(real_redis)
    store.put("a", {"n": 2})
    store.put("a", {"n": 3})
    real_redis.xtrim(
        "ss:{bot}:feed", maxlen=1, approximate=False
    )  # as the byte budget would while the worker is away
    with Running(store, target) as running:
        wait_for(lambda: len(running.gaps) == 1)
        running.caught_up(real_redis)
    gaps = [
        item
        for name in segments_of(target, "bot")
        for item in read_segment(target.source(JOURNAL, name.name)).items
        if isinstance(item, Gap)
    ]
    assert len(gaps) == 1 and "trimmed" in gaps[0].reason


def test_restore_at_a_time_rolls_back_to_it(
    journal_store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    store = journal_store
    store.put("a", {"n": 0})
    store.put("b", {"n": 0})
    take_snapshot(store, target)
    with Running(store, target) as running:
        store.put("a", {"n": 1})
        store.set_field("b", "m", 1)
        running.caught_up(real_redis)
        at = time.time()
        time.sleep(0.05)
        store.put("a", {"n": 2})
        store.delete("b")
        store.put("c", {"new": True})
        running.caught_up(real_redis)
    dry = restore_newest(store, target, at=at, force=True, dry_run=True)
    assert dry is not None and dry.dry_run and store.get("a").data == {"n": 2}  # nothing written
    only = restore_newest(store, target, at=at, force=True, only=["a"])
    assert only is not None and store.get("a").data == {"n": 1} and "b" not in store.names()
    report = restore_newest(store, target, at=at, force=True)
    assert report is not None and "journal to" in report.description
    assert everything(store) == {"a": {"n": 1}, "b": {"n": 0, "m": 1}}  # c did not exist yet
    with pytest.raises(SnapshotError, match="complete by"):
        restore_newest(store, target, at=at - 3600, force=True)


def test_a_time_past_a_gap_without_a_later_snapshot_is_refused(
    journal_store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    from sharedstate.durability.points import GapInJournal

    store = journal_store
    store.put("a", {"n": 0})
    take_snapshot(store, target)
    with Running(store, target) as running:
        store.put("a", {"n": 1})
        running.caught_up(real_redis)
    store.put("a", {"n": 2})
    real_redis.xtrim("ss:{bot}:feed", maxlen=1, approximate=False)
    with Running(store, target) as running:
        wait_for(lambda: len(running.gaps) == 1)
        store.put("a", {"n": 3})
        running.caught_up(real_redis)
    with pytest.raises(GapInJournal, match="gap"):
        restore_newest(store, target, at=time.time(), force=True)
    report = restore_newest(store, target)  # the newest point stops at the gap: fills in only
    assert report is not None and store.get("a").data == {"n": 3}


def test_segments_roll_by_age_and_size_and_replay_in_order(
    journal_store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store = journal_store
    target = DirectoryTarget(tmp_path / "backups")
    take_snapshot(store, target)
    running = Running(store, target)
    running.journaler.segment_seconds = 0.3
    running.journaler.segment_bytes = 2_000
    with running:
        deadline = time.monotonic() + 1.5
        i = 0
        while time.monotonic() < deadline:
            i += 1
            store.set_field("counter", f"k{i % 7}", i)
            time.sleep(0.005)
        expected = everything(store)
        running.caught_up(real_redis)
    names = segments_of(target, "bot")
    assert len(names) >= 4
    segments = [read_segment(target.source(JOURNAL, name.name)) for name in names]
    assert all(segment.closed and segment.torn is None for segment in segments)
    ids = [item.id for segment in segments for item in segment.items if isinstance(item, Entry)]
    assert len(ids) == len(set(ids)) == i  # every change once, in order
    real_redis.flushall()
    restore_newest(store, target)
    assert everything(store) == expected


def test_segments_of_incompressible_changes_roll_by_stored_bytes(
    journal_store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    import base64
    import os

    from sharedstate.durability.journaling import SEGMENT_STORED

    store = journal_store
    take_snapshot(store, target)
    running = Running(store, target)
    running.journaler.segment_bytes = 1 << 30  # only the stored size rolls them here
    with running:
        for i in range(100):
            store.put(f"blob{i % 10}", {"noise": base64.b64encode(os.urandom(6_000)).decode()})
            time.sleep(0.01)
        expected = everything(store)
        running.caught_up(real_redis)
    items = [item for item in target.list(JOURNAL) if parse_segment_name(item.name) is not None]
    sizes = [item.size for item in sorted(items, key=lambda item: item.name)]
    # a bucket re-uploads the open segment at each flush: each closed when its stored bytes
    # reach the cap, so past it by one flush's changes at most (here ~0.35 s: < 256 KiB)
    assert len(sizes) >= 2 and all(size >= SEGMENT_STORED for size in sizes[:-1]), sizes
    assert all(size < 2 * SEGMENT_STORED for size in sizes), sizes
    real_redis.flushall()
    restore_newest(store, target)
    assert everything(store) == expected


def test_retention_keeps_the_segments_the_oldest_snapshot_needs() -> None:
    from sharedstate.durability.format import Header
    from sharedstate.durability.points import MARGIN, unneeded_segments
    from sharedstate.durability.snapshots import SnapshotEntry

    def snapshot(at: float) -> SnapshotEntry:
        return SnapshotEntry(Path(f"bot-{at}.jsonl.gz"), 1, Header("bot", at, 0))

    segments = [p for seq in range(1, 7) if (p := parse_segment_name(segment_name("bot", seq, 1000.0 * seq)))]
    kept = [snapshot(3500.0 + MARGIN), snapshot(5500.0 + MARGIN)]
    assert [s.seq for s in unneeded_segments(kept, segments)] == [1, 2]  # 3 was open when the oldest began
    assert unneeded_segments([], segments) == []  # no snapshot: the journal is all there is
    assert [s.seq for s in unneeded_segments([snapshot(99_999.0)], segments)] == [
        1,
        2,
        3,
        4,
        5,
    ]  # never the newest


def test_a_left_out_change_of_a_large_document_asks_for_a_snapshot_instead_of_reading_it(
    journal_store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store = journal_store  # payload limit 64 bytes: these changes reach the feed without values
    target = DirectoryTarget(tmp_path / "backups")
    take_snapshot(store, target)
    running = Running(store, target)
    running.journaler.read_back_max = 1_000
    with running:
        store.put("medium", {"blob": "x" * 500})  # read back whole
        store.put("large", {"blob": "y" * 5_000})  # too large: left to a snapshot
        running.caught_up(real_redis)
        assert len(running.asked) == 1 and "large" in running.asked[0]
    entries = [
        item
        for name in segments_of(target, "bot")
        for item in read_segment(target.source(JOURNAL, name.name)).items
        if isinstance(item, Entry)
    ]
    assert [(e.name, e.whole, e.unread) for e in entries] == [("medium", True, False), ("large", False, True)]
    take_snapshot(store, target)  # as the worker does when asked
    real_redis.flushall()
    restore_newest(store, target)
    assert store.get("large").data == {"blob": "y" * 5_000} and store.get("medium").data == {
        "blob": "x" * 500
    }
