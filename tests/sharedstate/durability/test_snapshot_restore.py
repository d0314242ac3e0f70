"""Snapshot, lose Redis, restore: data, types and versions come back safely (real Redis)."""

from __future__ import annotations

import errno
import gzip
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sharedstate import SharedStore, VersionConflict
from sharedstate.durability import restore as restore_module
from sharedstate.durability import state
from sharedstate.durability.format import verify
from sharedstate.durability.restore import auto_restore, plan_restore, restore_newest, restore_snapshot
from sharedstate.durability.snapshots import (
    NamespaceNotReady,
    apply_retention,
    clean_temp_files,
    list_snapshots,
    publish_catalogue,
    read_catalogue,
    take_snapshot,
)
from sharedstate.errors import InvalidDocument, SnapshotError
from tests.sharedstate.durability.conftest import SAMPLE, fill
from tests.tmpfs import tmpfs


def everything(store: SharedStore) -> dict[str, Any]:
    return {name: store.get(name).data for name in store.names()}


def test_snapshot_flushall_restore_gives_identical_data_and_types(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path
) -> None:
    fill(store)
    before = everything(store)
    result = take_snapshot(store, snapdir)
    assert result.header.documents == len(SAMPLE)
    real_redis.flushall()
    assert store.names() == []
    report = restore_newest(store, snapdir)
    assert report is not None and sorted(report.restored) == sorted(SAMPLE)
    after = everything(store)
    assert after == before == SAMPLE
    assert type(after["config"]["admins"]) is set
    assert type(after["user_data"]["42"]["tags"]) is frozenset
    assert type(after["config"]["big"]) is int and after["config"]["limits"]["ratio"] == 0.5
    assert after["buildings"][5] == {"$set": "not a tag"}
    assert store.history("config")[0].op == "restore"
    assert state.get_marker(store) is not None


def test_a_writer_holding_a_pre_loss_version_gets_a_conflict(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path
) -> None:
    first = store.put("config", {"n": 0})
    take_snapshot(store, snapdir)
    for i in range(1, 6):  # written after the snapshot, then lost
        held = store.put("config", {"n": i})
    real_redis.flushall()
    for stale in (first, held):  # before any restore: the document is gone, not at that version
        with pytest.raises(VersionConflict):
            store.put("config", {"n": "stale"}, expected_version=stale)
    after_loss = store.put("config", {"n": "rewritten after the loss"})  # a bot writing into the empty Redis
    assert after_loss > held
    store.put("config", {"n": "again"})
    report = restore_newest(store, snapdir)
    assert report is not None and report.kept == ["config"] and report.restored == []
    for stale in (first, held, after_loss):  # versions handed out before or just after the loss
        with pytest.raises(VersionConflict):
            store.put("config", {"n": "stale"}, expected_version=stale)
    assert store.get("config").data == {"n": "again"}  # acknowledged after the loss: never rolled back


def test_versions_keep_growing_across_several_restores(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path
) -> None:
    seen = [store.put("doc", 0)]
    for _ in range(3):
        take_snapshot(store, snapdir)
        real_redis.flushall()
        restore_newest(store, snapdir)
        seen.append(store.get("doc").version)
        seen.append(store.put("doc", len(seen)))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path, damage: str
) -> None:
    store.put("doc", "old")
    older = take_snapshot(store, snapdir).path
    store.put("doc", "new")
    newest = take_snapshot(store, snapdir).path
    raw = bytearray(newest.read_bytes())
    if damage == "truncate":
        newest.write_bytes(bytes(raw[: len(raw) // 2]))
    else:  # a byte in the middle of the records' member (its gzip header holds a file name)
        records = raw.index(b"\x1f\x8b\x08", 1)
        trailer = raw.index(b"\x1f\x8b\x08", records + 1)
        raw[(records + trailer) // 2 + 10] ^= 0x10
        newest.write_bytes(bytes(raw))
    real_redis.flushall()
    skipped: list[tuple[str, str]] = []
    report = restore_newest(store, snapdir, on_skip=lambda i, why: skipped.append((i, why)), publish=True)
    assert report is not None and report.snapshot == older.name
    assert [snapshot for snapshot, _ in skipped] == [newest.name] == [s for s, _ in report.skipped]
    assert store.get("doc").data == "old"
    catalogue = {row["id"]: row for row in read_catalogue(store)["snapshots"]}
    assert catalogue[older.name]["status"] == "ok"
    assert catalogue[newest.name]["status"] == "corrupt" and catalogue[newest.name]["error"]


def test_a_bad_file_is_never_restored_even_partly(store: SharedStore, snapdir: Path) -> None:
    fill(store, {f"doc{i:03d}": i for i in range(50)})
    path = take_snapshot(store, snapdir).path
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join([*lines[:40], lines[41].replace(b"41", b"99"), *lines[42:]])))
    fill(store, {f"doc{i:03d}": -1 for i in range(50)})
    with pytest.raises(SnapshotError):
        restore_snapshot(store, path)
    assert {store.load(f"doc{i:03d}") for i in range(50)} == {-1}


def test_a_restore_fills_in_and_only_a_forced_one_rolls_back(store: SharedStore, snapdir: Path) -> None:
    fill(store, {"a": 1, "b": 2, "gone": 3})
    path = take_snapshot(store, snapdir).path
    fill(store, {"a": 10, "b": 20, "c": 30})
    store.delete("gone")
    report = restore_snapshot(store, path)  # every document is newer in Redis, or deleted since
    assert (report.restored, sorted(report.kept), report.gone) == ([], ["a", "b"], ["gone"])
    assert everything(store) == {"a": 10, "b": 20, "c": 30}
    report = restore_snapshot(store, path, only=["a"], force=True)
    assert everything(store) == {"a": 1, "b": 20, "c": 30} and report.deleted == []
    dry = restore_snapshot(store, path, dry_run=True, force=True)
    assert (dry.changed, dry.deleted, dry.unchanged, dry.created) == (["b"], ["c"], ["a"], ["gone"])
    assert everything(store) == {"a": 1, "b": 20, "c": 30}  # a dry run writes nothing
    restore_snapshot(store, path, force=True)
    assert everything(store) == {"a": 1, "b": 2, "gone": 3}
    with pytest.raises(InvalidDocument, match="nope"):
        restore_snapshot(store, path, only=["nope"])


def test_a_snapshot_of_another_namespace_is_refused(store: SharedStore, snapdir: Path) -> None:
    store.put("a", 1)
    path = take_snapshot(store, snapdir).path
    other = SharedStore(store.redis, "other")
    with pytest.raises(SnapshotError, match="namespace"):
        restore_snapshot(other, path)


def test_plan_restore_is_pure() -> None:
    from sharedstate.durability.format import Header

    header = Header("bot", 1.0, 4)
    backup = {"missing": 5, "older": 5, "newer": 5, "same": 5, "deleted": 5, "recreated": 5}
    live = {"older": 3, "newer": 9, "same": 5, "recreated": 7, "extra": 1}
    deleted = {"deleted": 6, "recreated": 6, "missing": 4}
    plan = plan_restore(Path("s"), header, None, backup, live, deleted)
    assert (plan.write, plan.delete) == (("missing", "older"), ())
    assert (plan.kept, plan.gone, plan.absent) == (("newer", "recreated", "same"), ("deleted",), {"missing"})
    plan = plan_restore(Path("s"), header, None, backup, live, deleted, force=True)
    assert (plan.write, plan.delete, plan.full) == (tuple(sorted(backup)), ("extra",), True)
    plan = plan_restore(Path("s"), header, None, backup, live, deleted, only=["newer"], force=True)
    assert (plan.write, plan.delete, plan.full) == (("newer",), (), False)
    plan = plan_restore(Path("s"), header, None, backup, live, deleted, only=["newer"])
    assert (plan.write, plan.kept) == ((), ("newer",))


# -- automatic restore ------------------------------------------------------------------------


def test_auto_restore_after_redis_lost_everything(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert auto_restore(store, snapdir) is None  # a new namespace: just marked
    assert state.get_marker(store) is not None
    fill(store)
    take_snapshot(store, snapdir)
    assert auto_restore(store, snapdir) is None  # marker present: nothing to do
    real_redis.flushall()
    store.put("written_after_loss", {"keep": "me"})
    with caplog.at_level(logging.CRITICAL, logger="sharedstate.durability"):
        report = auto_restore(store, snapdir)
    assert report is not None
    assert any("AUTO-RESTORE" in record.getMessage() for record in caplog.records)
    assert everything(store) == {**SAMPLE, "written_after_loss": {"keep": "me"}}
    assert auto_restore(store, snapdir) is None


def test_deliberately_deleted_documents_are_not_restored(store: SharedStore, snapdir: Path) -> None:
    fill(store, {"a": 1})
    take_snapshot(store, snapdir)
    store.delete("a")
    assert auto_restore(store, snapdir) is None
    assert store.names() == []


def test_auto_restore_with_only_bad_snapshots_starts_empty_and_says_so(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(store, {"a": 1})
    path = take_snapshot(store, snapdir).path
    path.write_bytes(path.read_bytes()[:20])
    real_redis.flushall()
    with caplog.at_level(logging.CRITICAL, logger="sharedstate.durability"):
        assert auto_restore(store, snapdir) is None
    assert any("FAILED" in record.getMessage() for record in caplog.records)
    assert state.get_marker(store) is not None and path.exists()


def test_an_interrupted_restore_is_finished_with_the_same_snapshot(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(
        store, {f"d{i}": "old" for i in range(1000)}
    )  # five batches: one answered, two in flight at the kill
    old = take_snapshot(store, snapdir).path
    fill(store, {f"d{i}": "new" for i in range(1000)})
    newer = take_snapshot(store, snapdir).path
    real_redis.flushall()  # lost; the operator chose the old snapshot

    real_pipelined = restore_module.pipelined
    answered = 0

    def crash_after_first_batch(*args: Any, **kwargs: Any) -> Iterator[Any]:
        nonlocal answered
        answers = real_pipelined(*args, **kwargs)
        yield next(answers)
        answered += 1
        if answered == 2:  # the versions read, one restore call answered
            answers.close()
            raise KeyboardInterrupt  # killed half-way
        yield from answers

    monkeypatch.setattr(restore_module, "pipelined", crash_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        restore_snapshot(store, old)
    monkeypatch.undo()
    assert state.get_marker(store) is None  # never marked complete half-way
    assert 0 < len(store.names()) < 1000
    report = auto_restore(store, snapdir)
    assert report is not None and report.snapshot == old.name != newer.name
    assert {store.load(f"d{i}") for i in range(1000)} == {"old"}
    assert state.get_marker(store) is not None


# -- taking snapshots -----------------------------------------------------------------------------


def test_no_snapshot_of_a_namespace_redis_lost(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path
) -> None:
    fill(store, {"a": 1})
    take_snapshot(store, snapdir)
    real_redis.flushall()
    with pytest.raises(NamespaceNotReady, match="restore"):
        take_snapshot(store, snapdir)
    assert len(list_snapshots(snapdir)) == 1
    take_snapshot(store, snapdir, allow_unmarked=True)  # --force
    assert len(list_snapshots(snapdir)) == 2


def test_redis_lost_while_a_snapshot_reads_discards_the_snapshot(
    store: SharedStore, real_redis: redis.Redis, snapdir: Path
) -> None:
    """Documents read after the loss come back as gone: committing that snapshot would make a
    backup missing them the newest, and the automatic restore would then leave them lost."""
    documents = {f"d{i}": {"i": i} for i in range(1100)}  # several batches
    store.put_all(documents)
    take_snapshot(store, snapdir)
    lost = []

    def lose_redis(done: int, total: int) -> None:
        if not lost:
            lost.append(done)
            real_redis.flushall()

    with pytest.raises(NamespaceNotReady, match="while it was being snapshotted"):
        take_snapshot(store, snapdir, progress=lose_redis)
    assert lost and lost[0] < len(documents)
    assert [entry.header.documents for entry in list_snapshots(snapdir) if entry.header] == [1100]
    assert not [path for path in snapdir.iterdir() if path.name.startswith(".")]
    report = auto_restore(store, snapdir)
    assert report is not None and len(report.restored) == 1100
    assert store.load("d1099") == {"i": 1099}


def test_snapshots_are_listed_newest_first_by_recorded_time(store: SharedStore, snapdir: Path) -> None:
    paths = []
    for i in range(3):
        store.put("a", i)
        paths.append(take_snapshot(store, snapdir).path)
    # file names and mtimes lie; the recorded creation time decides
    paths[0].rename(snapdir / ("zzz-" + paths[0].name))
    assert [entry.header.documents for entry in list_snapshots(snapdir)] == [1, 1, 1]
    listed = [entry.path.name for entry in list_snapshots(snapdir)]
    assert listed == [paths[2].name, paths[1].name, "zzz-" + paths[0].name]
    other = SharedStore(store.redis, "other")
    other.put("x", 1)
    take_snapshot(other, snapdir)
    assert len(list_snapshots(snapdir, "bot")) == 3 and len(list_snapshots(snapdir, "other")) == 1


def test_retention_never_removes_the_last_good_snapshot(store: SharedStore, snapdir: Path) -> None:
    store.put("a", 1)
    good = take_snapshot(store, snapdir).path
    newer = [take_snapshot(store, snapdir).path for _ in range(3)]
    for path in newer:
        path.write_bytes(b"garbage")  # unreadable header: never deleted by retention either
    removed = apply_retention(snapdir, "bot", {"last": 1}, newest_good=good)
    assert removed == [] and good.exists()
    more = [take_snapshot(store, snapdir).path for _ in range(3)]
    removed = apply_retention(snapdir, "bot", {"last": 1}, newest_good=more[-1])
    assert good in removed and more[-1].exists() and all(path.exists() for path in newer)


def test_crash_leftovers_are_cleaned(snapdir: Path) -> None:
    snapdir.mkdir(parents=True)
    (snapdir / ".tmp-x.jsonl.gz").write_bytes(b"partial")
    (snapdir / ".rec-x.jsonl.gz").write_bytes(b"partial")
    assert clean_temp_files(snapdir, older_than=3600) == []
    assert sorted(p.name for p in clean_temp_files(snapdir, older_than=0)) == [
        ".rec-x.jsonl.gz",
        ".tmp-x.jsonl.gz",
    ]


def test_catalogue_is_published_for_the_api(store: SharedStore, snapdir: Path) -> None:
    assert read_catalogue(store) == {"updated_at": None, "snapshots": []}
    store.put("a", 1)
    result = take_snapshot(store, snapdir)
    rows = publish_catalogue(store, snapdir, {result.path.name: "ok"})
    assert rows == read_catalogue(store)["snapshots"]
    [row] = rows
    assert row["id"] == result.path.name and row["documents"] == 1 and row["status"] == "ok"
    assert row["size"] == result.size and row["created_at"] == result.header.created_at
    assert store.names() == ["a"]  # internal records are never documents


# -- the disk fails -------------------------------------------------------------------------------


def _old_snapshots_intact(snapdir: Path, expected: list[Path]) -> None:
    assert sorted(p for p in snapdir.iterdir()) == sorted(expected)
    for path in expected:
        verify(path)


def test_enospc_during_a_snapshot_leaves_old_snapshots_intact(
    store: SharedStore, snapdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, {f"d{i}": "x" * 1000 for i in range(2000)})
    old = take_snapshot(store, snapdir).path
    real_write = gzip.GzipFile.write
    written = 0

    def full_disk(self: gzip.GzipFile, data: Any) -> int:
        nonlocal written
        written += 1
        if written > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(gzip.GzipFile, "write", full_disk)
    with pytest.raises(SnapshotError, match="No space left on device"):
        take_snapshot(store, snapdir)
    monkeypatch.undo()
    _old_snapshots_intact(snapdir, [old])


def test_a_really_full_filesystem(store: SharedStore, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "tiny", "256k", "; the patched ENOSPC test covers this") as mount:
        snapdir = mount / "snapshots"
        store.put("small", 1)
        old = take_snapshot(store, snapdir).path
        fill(
            store, {f"d{i}": secrets.token_hex(5000) for i in range(300)}
        )  # 3 MB that gzip cannot shrink much
        with pytest.raises(SnapshotError, match="No space left on device"):
            take_snapshot(store, snapdir)
        _old_snapshots_intact(snapdir, [old])
