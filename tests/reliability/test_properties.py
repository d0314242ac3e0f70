"""Property tests: the codec round-trips every JSON value and refuses everything else; the
snapshot reader rejects any bytes cleanly and never restores from them."""

from __future__ import annotations

import datetime
import decimal
import gzip
import math
import tempfile
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharedstate import InvalidDocument, SharedStore
from sharedstate.codec import decode_flat, decode_value, encode_document, encode_parsed, encode_value
from sharedstate.durability.format import Record, SnapshotWriter, read_snapshot, verify
from sharedstate.durability.restore import restore_snapshot
from sharedstate.errors import SnapshotError
from sharedstate.jsonio import dumps_tagged, loads_tagged

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # any size
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
hashable = scalars.filter(lambda v: not (isinstance(v, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in v)))
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
        | st.sets(hashable, max_size=5)
        | st.frozensets(hashable, max_size=5)
    ),
    max_leaves=30,
)


def shape(value: Any) -> Any:
    """Type-exact picture of a value (1, 1.0 and True differ; -0.0 is not 0.0)."""
    if isinstance(value, dict):
        return ("dict", {k: shape(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("list", [shape(v) for v in value])
    if isinstance(value, set | frozenset):
        return (type(value).__name__, sorted(repr(shape(v)) for v in value))
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def _encodable(value: Any) -> bool:
    try:
        encode_value(value)
        return True
    except InvalidDocument:
        return False  # lone surrogates: UTF-8 cannot hold them, refused as promised


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_codec_round_trips_every_json_value(value: Any) -> None:
    if _encodable(value):
        assert shape(decode_value(encode_value(value))) == shape(value)
        assert shape(loads_tagged(dumps_tagged(value))) == shape(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6) | json_values)
def test_the_snapshot_fast_paths_agree_with_the_checked_ones(data: Any) -> None:
    try:
        encoded = encode_document(data, "doc")
    except InvalidDocument:
        return  # lone surrogates
    parsed = encode_parsed(loads_tagged(dumps_tagged(data)), "doc")
    assert (parsed.kind, parsed.size) == (encoded.kind, encoded.size)
    assert shape(decode_value(parsed.blob)) == shape(decode_value(encoded.blob)) == shape(data)
    # the bytes may differ only in the order of a set's items
    assert [(key, shape(decode_value(raw))) for key, raw in parsed.fields] == [
        (key, shape(decode_value(raw))) for key, raw in encoded.fields
    ]
    flat = [part.encode() if isinstance(part, str) else part for pair in encoded.fields for part in pair]
    assert shape(decode_flat(encoded.kind, flat, "doc")) == shape(data)


unholdable = st.sampled_from(
    [datetime.datetime(2026, 1, 1), datetime.date(2026, 1, 1), b"bytes", decimal.Decimal(1), 1 + 2j, object(),
     float("nan"), float("inf"), -math.inf, {1: "int key"}, {("a",): 1}, {"s": {(1, 2)}}, bytearray(b"x")]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(json_values, unholdable, st.integers(0, 3))
def test_codec_refuses_what_json_cannot_hold(value: Any, bad: Any, depth: int) -> None:
    for _ in range(depth):
        bad = {"k": [bad]}
    try:
        encode_value([value, bad])
    except InvalidDocument as exc:
        assert "$[1]" in str(exc)
    else:
        raise AssertionError(f"{bad!r} was accepted")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.booleans())
def test_any_bytes_are_rejected_cleanly_and_never_restored(data: bytes, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ns-20260101T000000000Z-abcdef.jsonl.gz"
        path.write_bytes(gzip.compress(data) if compress else data)
        store = SharedStore(fakeredis.FakeRedis(), "ns")
        try:
            verify(path)
        except SnapshotError:
            pass
        else:
            raise AssertionError("random bytes verified")
        with pytest.raises(SnapshotError):
            restore_snapshot(store, path)
        assert store.redis.keys("*") == []


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_damage_to_a_snapshot_is_detected_or_harmless(data: st.DataObject) -> None:
    records = [Record(f"doc{i}", i + 1, 1.0, "w", {"i": i, "s": {i}}) for i in range(5)]
    with tempfile.TemporaryDirectory() as directory:
        with SnapshotWriter(Path(directory), "ns", 1.0) as writer:
            for record in records:
                writer.add(record)
            path = writer.commit(finished_at=1.0)  # the same bytes every time: hypothesis draws by length
        raw = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            position = data.draw(st.integers(0, len(raw) - 1))
            raw[position] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(raw)))
        path.write_bytes(bytes(raw[:cut]))
        try:
            _, read = read_snapshot(path)
            assert list(read) == records  # it verified: then it must be exactly the original
        except SnapshotError:
            pass
