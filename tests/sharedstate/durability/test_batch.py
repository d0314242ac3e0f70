"""The batched snapshot reads and restore writes do exactly what the per-document scripts do.

``batch.restore`` (restore.lua) must leave Redis as ``write.lua`` with op ``restore`` would,
document by document: same data, meta, version rule, feed entry, history, names, tombstones
and history TTL. Compared key by key on a real redis-server, with times and feed ids masked.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from sharedstate import SharedStore
from sharedstate._core import Core
from sharedstate.codec import encode_document, encode_parsed
from sharedstate.durability import batch, state
from sharedstate.durability.format import Record
from sharedstate.errors import InvalidDocument

WIDE = {f"f{i}": i for i in range(1500)}  # more than one HSET chunk in the script
RECORDS = [
    Record("deleted", 1, 0.0, "x", {"back": True}),
    Record("empty", 1, 0.0, "x", {}),
    Record("existing", 1, 0.0, "x", {"a": 1}),
    Record("fresh", 1, 0.0, "x", {"s": {1, 2}, "f": frozenset({"x"}), "big": 2**80, "n": None}),
    Record("huge", 1, 0.0, "x", {"pad": "y" * 500}),  # over the payload limit below
    Record("value", 1, 0.0, "x", "just a string"),
    Record("wide", 1, 0.0, "x", WIDE),
]
OPTIONS: dict[str, Any] = {"history_limit": 2, "payload_limit": 200, "stale_reads": False}


def _prepare(store: SharedStore) -> None:
    store.put("existing", {"a": 0, "b": 2, "c": 3})
    store.set_field("existing", "b", 5)
    store.put("deleted", {"x": 1})
    store.put("deleted", {"x": 2})
    store.delete("deleted")
    store.put("value", [1])
    state.raise_floor(store, 2)


def _snapshot_of_redis(client: redis.Redis, store: SharedStore, names: list[str]) -> dict[str, Any]:
    keys = store.keys
    out: dict[str, Any] = {
        "names": sorted(client.smembers(keys.names)),
        "tombstones": client.hgetall(keys.tombstones),
        "floor": client.get(keys.floor),
    }
    for name in names:
        meta = client.hgetall(keys.meta(name))
        meta.pop(b"t", None)
        ttl = client.ttl(keys.history(name))
        out[name] = {
            "data": client.hgetall(keys.data(name)),
            "meta": meta,
            "history": [
                (c.version, c.op, c.writer, c.omitted, c.fields, c.removed) for c in store.history(name, 100)
            ],
            "history_expires": ttl > 0,
        }
    feed = []
    for _id, fields in client.xrange(keys.feed):
        fields.pop(b"t")
        feed.append(fields)
    out["feed"] = feed
    return out


def test_batch_restore_leaves_redis_as_the_write_script_would(real_redis: redis.Redis) -> None:
    one = SharedStore(real_redis, "one", "bot", **OPTIONS)
    two = SharedStore(real_redis, "two", "bot", **OPTIONS)
    for store in (one, two):
        _prepare(store)
    one._run_many([one._core.put(r.name, r.data, None, op="restore", writer="w") for r in RECORDS], "restore")
    written = two._run_many([batch.restore(two._core, RECORDS, "w")], "restore")[0]
    names = [record.name for record in RECORDS]
    expected = _snapshot_of_redis(real_redis, one, names)
    assert _snapshot_of_redis(real_redis, two, names) == expected
    # the rules the comparison covers, spelled out
    assert expected["deleted"]["meta"][b"v"] == b"4"  # above its tombstone (3), not just the floor (2)
    assert expected["existing"]["meta"][b"v"] == b"3"  # above its version (2)
    assert expected["fresh"]["meta"][b"v"] == b"3"  # above the floor (2)
    assert expected["existing"]["data"] == {b"a": encode_document(1, "x").blob}
    assert not expected["deleted"]["history_expires"]
    assert len(expected["wide"]["data"]) == 1500
    assert [len(expected[name]["history"]) for name in ("existing", "deleted")] == [2, 2]
    assert expected["tombstones"] == {}
    assert [w.previous for w in written] == [0, 0, 2, 0, 0, 1, 0]
    assert two.get("fresh").data == RECORDS[3].data
    assert [change.omitted for change in two.history("huge")] == [True]
    assert two.history("fresh")[0].fields == RECORDS[3].data


def test_a_restore_writes_documents_over_a_lowered_size_limit(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot", max_document_bytes=100)
    big = Record("big", 1, 0.0, "x", {"pad": "y" * 500})  # accepted once, under a larger limit
    store._run_many([batch.restore(store._core, [big], "w")], "restore")
    assert store.get("big").data == big.data
    with pytest.raises(InvalidDocument, match="over the limit"):
        store.put("big", big.data)  # ordinary writes still keep to the limit


def test_batch_restore_of_nothing_writes_nothing(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    assert store._run_many([batch.restore(store._core, [], "w")], "restore") == [[]]
    assert real_redis.keys("*") == []


def test_batches_are_bounded() -> None:
    core = Core("bot", "bot")
    with pytest.raises(ValueError, match="at most"):
        batch.restore(core, [RECORDS[0]] * (batch.MAX_DOCUMENTS + 1), "w")
    with pytest.raises(ValueError, match="at most"):
        batch.dump(core, ["a"] * (batch.MAX_DOCUMENTS + 1))


def test_dump_reads_documents_and_reports_the_gone(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    for record in RECORDS:
        store.put(record.name, record.data)
    store.delete("empty")
    names = [record.name for record in RECORDS]
    dumped = store._run_many([batch.dump(store._core, names)], "read")[0]
    assert dumped[1] is None
    for record, got in zip(RECORDS, dumped, strict=True):
        if got is None:
            continue
        doc = store.get(record.name)
        assert (got.name, got.data, got.version, got.updated_at, got.updated_by) == (
            doc.name,
            doc.data,
            doc.version,
            doc.updated_at,
            doc.updated_by,
        )
        assert type(got.data) is type(record.data)


def test_dump_names_a_field_holding_foreign_bytes(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    store.put("config", {"a": 1, "b": 2})
    real_redis.hset(store.keys.data("config"), "b", b"\xc1")  # never valid msgpack
    with pytest.raises(InvalidDocument, match="'config' field 'b'"):
        store._run_many([batch.dump(store._core, ["config"])], "read")


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1, "b": [1, 2.5, None, True], "c": {"d": "é"}},
        "text",
        [1, {"x": {2, 3}}],
        {"big": -(2**70), "sets": {frozenset({1}), 2}},
        {},
        7,
    ],
)
def test_encode_parsed_gives_the_bytes_encode_document_gives(data: Any) -> None:
    assert encode_parsed(data, "doc") == encode_document(data, "doc")


def test_encode_parsed_explains_what_msgpack_refuses() -> None:
    deep: Any = []
    for _ in range(5000):  # deeper than msgpack packs (data within its limit is the store's own)
        deep = [deep]
    with pytest.raises(InvalidDocument, match="nesting deeper"):
        encode_parsed({"a": deep}, "doc")
    with pytest.raises(InvalidDocument, match="UTF-8"):
        encode_parsed({"a": "\ud800"}, "doc")
