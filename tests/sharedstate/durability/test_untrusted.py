"""Snapshot files are untrusted input; one bad document never stops a backup."""

from __future__ import annotations

import gzip
import json
import os
import resource
import time
from pathlib import Path

import pytest
import redis

from sharedstate import InvalidDocument, SharedStore
from sharedstate.durability.format import verify
from sharedstate.durability.restore import restore_newest, restore_snapshot
from sharedstate.durability.snapshots import apply_retention, list_snapshots, take_snapshot
from sharedstate.errors import SnapshotError


@pytest.fixture
def store(real_redis: redis.Redis) -> SharedStore:
    return SharedStore(real_redis, "bot", "bot")


def _dated(path: Path, created_at: float, directory: Path) -> Path:
    """A copy of snapshot ``path`` whose header says ``created_at`` (checksums recomputed)."""
    import hashlib

    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    header = json.loads(lines[0])
    header["created_at"] = created_at
    head = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    trailer = json.loads(lines[-1])
    trailer["header_sha256"] = hashlib.sha256(head).hexdigest()
    stamp = time.strftime("%Y%m%dT%H%M%S000Z", time.gmtime(created_at))
    out = directory / f"bot-{stamp}-abcdef.jsonl.gz"
    tail = json.dumps(trailer, separators=(",", ":")).encode() + b"\n"
    out.write_bytes(gzip.compress(head + b"".join(lines[1:-1]) + tail))
    return out


def _edited(path: Path, old: bytes, new: bytes, directory: Path) -> Path:
    """A copy of ``path`` with ``old`` replaced by ``new`` in its records, checksums recomputed."""
    import hashlib

    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    records = [line.replace(old, new) for line in lines[1:-1]]
    assert records != lines[1:-1]
    trailer = json.loads(lines[-1])
    trailer["records_sha256"] = hashlib.sha256(b"".join(records)).hexdigest()
    out = directory / f"edited-{path.name}"
    tail = json.dumps(trailer, separators=(",", ":")).encode() + b"\n"
    out.write_bytes(gzip.compress(lines[0] + b"".join(records) + tail))
    return out


def test_a_future_dated_snapshot_is_reported_never_preferred_and_retention_removes_it(
    store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store.put("doc", "old")
    old = take_snapshot(store, tmp_path).path
    future = _dated(old, time.time() + 7 * 86400, tmp_path)  # a worker whose clock was ahead
    store.put("doc", "new")
    newest = take_snapshot(store, tmp_path).path
    entries = list_snapshots(tmp_path, "bot")
    assert [entry.path for entry in entries] == [newest, old, future]  # dated in the future: last
    assert "dated in the future" in (entries[-1].error or "")
    real_redis.flushall()
    report = restore_newest(store, tmp_path)
    assert report is not None and report.snapshot == newest.name and store.load("doc") == "new"
    removed = apply_retention(tmp_path, "bot", {"last": 2}, newest)
    assert removed == [future]


def test_a_gzip_bomb_is_refused_without_decompressing_it(store: SharedStore, tmp_path: Path) -> None:
    store.put("doc", 1)
    good = take_snapshot(store, tmp_path).path
    lines = gzip.decompress(good.read_bytes()).splitlines(keepends=True)
    # a real header, then 256 MB of one line: decompresses from about 256 KB
    bomb = tmp_path / "bot-20990101T000000000Z-bomb00.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(lines[0])
        chunk = b"x" * (1 << 24)
        for _ in range(16):
            out.write(chunk)
    assert bomb.stat().st_size < 2 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SnapshotError, match="longer than its header allows"):
        verify(bomb)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 64, f"verify grew by {grown_mb:.0f} MB"
    headless = tmp_path / "bot-20990101T000000000Z-bomb01.jsonl.gz"
    with gzip.open(headless, "wb", compresslevel=9) as out:
        for _ in range(16):
            out.write(chunk)  # no newline at all: not even a header
    with pytest.raises(SnapshotError):
        verify(headless)


def test_symlinks_and_other_files_in_the_snapshots_directory_are_refused(
    store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store.put("doc", "real")
    real = take_snapshot(store, tmp_path / "elsewhere").path
    snapdir = tmp_path / "snapshots"
    snapdir.mkdir()
    link = snapdir / "bot-20990101T000000000Z-link00.jsonl.gz"
    link.symlink_to(real)
    os.mkfifo(snapdir / "bot-20990101T000000000Z-fifo00.jsonl.gz")
    entries = {entry.path.name: entry for entry in list_snapshots(snapdir, "bot")}
    assert "symbolic link" in (entries[link.name].error or "")
    assert "not a regular file" in (entries["bot-20990101T000000000Z-fifo00.jsonl.gz"].error or "")
    with pytest.raises(SnapshotError, match="symbolic link"):
        verify(link)
    real_redis.flushall()
    with pytest.raises(SnapshotError, match="no snapshot"):
        restore_newest(store, snapdir)  # never read through the link
    assert store.names() == []


def test_a_snapshot_key_makes_an_edited_file_with_recomputed_checksums_fail(
    store: SharedStore, tmp_path: Path
) -> None:
    key = b"k" * 32
    store.put("admins", [1])
    signed = take_snapshot(store, tmp_path, key=key).path
    verify(signed, key)
    with pytest.raises(SnapshotError, match="does not match"):
        verify(signed, b"another key")
    edited = _edited(signed, b"[1]", b"[1,666]", tmp_path)  # a new admin, checksums recomputed
    verify(edited)  # its checksums are consistent: without a key it looks fine
    with pytest.raises(SnapshotError, match="does not match"):
        verify(edited, key)
    unsigned = take_snapshot(store, tmp_path / "plain").path
    with pytest.raises(SnapshotError, match="not signed"):
        restore_snapshot(store, unsigned, key=key)


def test_an_undecodable_document_is_skipped_and_named_by_snapshot_and_restore(
    store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store.put("good", {"a": 1})
    store.put("poison", {"a": 1})
    real_redis.hset(store.keys.data("poison"), "a", b"\xc1")  # never valid msgpack
    result = take_snapshot(store, tmp_path)
    assert [name for name, _ in result.skipped] == ["poison"]
    assert result.header.skipped == ("poison",) and result.header.documents == 1
    real_redis.delete(store.keys.data("good"), store.keys.meta("good"))
    report = restore_snapshot(store, result.path)
    assert report.restored == ["good"] and store.load("good") == {"a": 1}


class _Liar(dict):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 3


def test_put_refuses_a_mapping_it_cannot_encode_faithfully(store: SharedStore) -> None:
    version = store.put("doc", {"keep": 1})
    for bad in (_Liar(a=1), {"nested": _Liar(a=1)}):
        with pytest.raises(InvalidDocument, match="disagree"):
            store.put("doc", bad)
    assert (store.load("doc"), store.get("doc").version) == ({"keep": 1}, version)


def test_a_document_lost_with_all_its_keys_is_carried_over_a_deleted_one_is_not(
    store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    from sharedstate.durability.format import read_snapshot

    store.put_all({"kept": 1, "lost": {"a": 1}, "deleted": 3})
    take_snapshot(store, tmp_path)
    keys = store.keys
    real_redis.delete(keys.data("lost"), keys.meta("lost"), keys.history("lost"))
    real_redis.srem(keys.names, "lost")  # gone with every key, and no delete recorded
    store.delete("deleted")
    store.put("kept", 2)
    result = take_snapshot(store, tmp_path)
    _, records = read_snapshot(result.path)
    assert {record.name: record.data for record in records} == {"kept": 2, "lost": {"a": 1}}
    report = restore_snapshot(store, result.path)  # the fill-in brings it back
    assert report.restored == ["lost"] and store.load("lost") == {"a": 1} and store.load("deleted") is None
