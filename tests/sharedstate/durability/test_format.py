"""The snapshot file: what it holds, and that damage of any kind is detected."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from sharedstate.durability import format as snapshot_format
from sharedstate.durability.format import Record, SnapshotWriter, read_header, read_snapshot, verify
from sharedstate.errors import SnapshotError
from sharedstate.jsonio import dumps_tagged, encode_tagged, loads_tagged

RECORDS = [
    Record("a", 3, 1712000000.5, "bot", {"x": 1, "s": {1, 2}}),
    Record("b", 1, 1712000001.0, "cron", [1, "two", None]),
    Record("c:d", 7, 1712000002.25, "bot", {"$set": [1]}),
]


def write(directory: Path, records: list[Record] = RECORDS) -> Path:
    with SnapshotWriter(directory, "bot", created_at=1712345678.123) as writer:
        for record in records:
            writer.add(record)
        return writer.commit(epoch="e1", max_version=7, floor=0, feed_position="1-0")


def test_round_trip_and_header(tmp_path: Path) -> None:
    path = write(tmp_path)
    assert path.name.startswith("bot-20240405T193438123Z-") and path.name.endswith(".jsonl.gz")
    header, records = read_snapshot(path)
    assert (header.namespace, header.documents, header.epoch, header.max_version) == ("bot", 3, "e1", 7)
    assert header.created_at == 1712345678.123
    assert list(records) == RECORDS
    assert verify(path).header == header
    assert read_header(path) == header
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_human_readable_once_decompressed(tmp_path: Path) -> None:
    lines = gzip.decompress(write(tmp_path).read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["format"] == "sharedstate-snapshot"
    assert json.loads(lines[1])["name"] == "a"
    assert json.loads(lines[-1])["trailer"] is True
    assert len(lines) == 5


def test_empty_snapshot(tmp_path: Path) -> None:
    path = write(tmp_path, [])
    assert verify(path).header.documents == 0


def _rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(gzip.compress(b"".join(lines)))


def _lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


@pytest.mark.parametrize(
    "damage",
    [
        "truncate-bytes",
        "truncate-lines",
        "drop-trailer",
        "drop-record",
        "flip-byte",
        "alter-data",
        "alter-header",
        "extra-record",
        "after-trailer",
        "foreign",
        "not-gzip",
        "empty",
        "duplicate-record",
    ],
)
def test_damage_is_detected(tmp_path: Path, damage: str) -> None:
    path = write(tmp_path)
    raw = path.read_bytes()
    lines = _lines(path)
    if damage == "truncate-bytes":
        path.write_bytes(raw[: len(raw) - 7])
    elif damage == "truncate-lines":
        _rewrite(path, [*lines[:-1], lines[-1][:10]])
    elif damage == "drop-trailer":
        _rewrite(path, lines[:-1])
    elif damage == "drop-record":
        _rewrite(path, [lines[0], lines[1], lines[3], lines[4]])
    elif damage == "flip-byte":
        flipped = bytearray(raw)
        flipped[len(raw) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
    elif damage == "alter-data":
        _rewrite(path, [lines[0], lines[1].replace(b'"x":1', b'"x":2'), *lines[2:]])
    elif damage == "alter-header":
        _rewrite(path, [lines[0].replace(b'"max_version":7', b'"max_version":8'), *lines[1:]])
    elif damage == "extra-record":
        extra = Record("zz", 1, 1.0, "evil", 1).line()
        _rewrite(path, [*lines[:-1], extra, lines[-1]])
    elif damage == "after-trailer":
        _rewrite(path, [*lines, lines[1]])
    elif damage == "foreign":
        _rewrite(path, [b'{"hello": "world"}\n', *lines[1:]])
    elif damage == "not-gzip":
        path.write_bytes(b"PK\x03\x04 a zip file, not ours")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "duplicate-record":
        _rewrite(path, [lines[0], lines[1], lines[1], *lines[2:]])
    with pytest.raises(SnapshotError) as info:
        verify(path)
    assert info.value.reason
    assert str(path) in str(info.value)


def test_reading_never_yields_past_a_damaged_record(tmp_path: Path) -> None:
    path = write(tmp_path)
    lines = _lines(path)
    _rewrite(path, [lines[0], lines[1], b'{"name": "b", "ver', *lines[3:]])
    _, records = read_snapshot(path)
    seen = []
    with pytest.raises(SnapshotError):
        for record in records:
            seen.append(record.name)
    assert seen == ["a"]


@pytest.mark.parametrize("value", [b"NaN", b"-Infinity", b"1e999"])
def test_a_record_json_never_writes_is_rejected_even_with_matching_checksums(
    tmp_path: Path, value: bytes
) -> None:
    path = write(tmp_path)
    lines = _lines(path)
    lines[1] = lines[1].replace(b'"x":1', b'"x":' + value)
    trailer = json.loads(lines[-1])
    trailer["records_sha256"] = hashlib.sha256(b"".join(lines[1:-1])).hexdigest()
    _rewrite(path, [*lines[:-1], json.dumps(trailer).encode() + b"\n"])
    with pytest.raises(SnapshotError, match="record 1 is damaged"):
        verify(path)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_records_read_back_the_same_whatever_the_read_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    records = [*RECORDS[:2], Record("big", 1, 1.0, "bot", {"pad": "y" * 3000})]  # spans chunks
    path = write(tmp_path, records)
    monkeypatch.setattr(snapshot_format, "_READ_BYTES", chunk)
    _, read = read_snapshot(path)
    assert list(read) == records
    assert verify(path).header.documents == 3


def test_aborted_writer_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), SnapshotWriter(tmp_path, "bot") as writer:
        writer.add(RECORDS[0])
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_commit_is_durable_and_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    renamed: list[tuple[str, str]] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append((str(a), str(b))), real_replace(a, b)))
    path = write(tmp_path)
    assert len(synced) >= 2  # the file, then the directory
    [(source, target)] = renamed
    assert Path(source).name.startswith(".") and target == str(path)


def _exact(value: object) -> object:
    """A form of ``value`` that compares types too (1, 1.0, True and -0.0 differ); sets by content."""
    if isinstance(value, dict):
        return {key: _exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_exact(item) for item in value]
    if isinstance(value, set | frozenset):
        return (type(value).__name__, frozenset(repr(_exact(item)) for item in value))
    return (type(value).__name__, repr(value))


@pytest.mark.parametrize(
    "value",
    [
        {"$set": [1]},
        {"$dict": {"$set": [1]}},
        {"a": {1, 2}, "b": frozenset({"x", frozenset({1})})},
        [{"$x": 1}, {"$a": 1, "$b": 2}],
        {"s": {None, 1.5, "a", False}},
        {"": {"$frozenset": []}},
        2**100,
        {"big": [2**64, 2**64 - 1, -(2**63), -(2**63) - 1, -(10**40)], "s": {2**70}},
        {"id": "12345678901234567890123", "n": 1234567890123456789},  # long digits, in a string too
        {"f": [0.1, -0.0, 1e16, 5e-324, 1.7976931348623157e308]},
        {"text": 'é \u2028 \x00 "q" \\ {"$set": [1]}'},
    ],
)
def test_tagged_json_round_trips(value: object) -> None:
    assert loads_tagged(dumps_tagged(value)) == value
    assert loads_tagged(encode_tagged(value)) == value
    assert type(loads_tagged(dumps_tagged(value))) is type(value)
    assert _exact(loads_tagged(dumps_tagged(value))) == _exact(value)  # ints stay ints, -0.0 stays -0.0
