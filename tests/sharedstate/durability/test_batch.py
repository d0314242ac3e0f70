"""The batched snapshot reads and restore writes do exactly what the per-document scripts do.

A forced ``batch.restore_calls`` (restore.lua) must leave Redis as ``write.lua`` with op
``restore`` would, document by document: same data, meta, feed entry, history, names,
tombstones and history TTL, versions above the ones before. Compared key by key on a real
redis-server, with times, versions and feed ids masked. A fill-in restore follows the rule.
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


def _versions(client: redis.Redis, store: SharedStore, names: list[str]) -> dict[str, int]:
    return {name: int(client.hget(store.keys.meta(name), "v") or 0) for name in names}


def _snapshot_of_redis(client: redis.Redis, store: SharedStore, names: list[str]) -> dict[str, Any]:
    """Everything restore.lua and write.lua write, with times, versions and feed ids masked."""
    keys = store.keys
    out: dict[str, Any] = {
        "names": sorted(client.smembers(keys.names)),
        "tombstones": sorted(client.hgetall(keys.tombstones)),
        "floor": client.get(keys.floor),
    }
    for name in names:
        meta = client.hgetall(keys.meta(name))
        meta.pop(b"t", None)
        meta.pop(b"v", None)
        ttl = client.ttl(keys.history(name))
        out[name] = {
            "data": client.hgetall(keys.data(name)),
            "meta": meta,
            "history": [(c.op, c.writer, c.omitted, c.fields, c.removed) for c in store.history(name, 100)],
            "history_expires": ttl > 0,
        }
    feed = []
    for _id, fields in client.xrange(keys.feed):
        fields.pop(b"t")
        fields.pop(b"v")
        feed.append(fields)
    out["feed"] = feed
    return out


def _restore(
    store: SharedStore,
    records: list[Record],
    *,
    fill: bool,
    deletes: tuple[str, ...] = (),
    fields: int = 50_000,
) -> list[batch.Restored]:
    lease = state.restore_lease(store)
    assert lease.acquire()
    target = batch.Target(fill, lease.value, "w")
    try:
        calls = [
            call for _, call in batch.restore_calls(store._core, records, target, deletes, fields=fields)
        ]
        return [result for results in store._run_many(calls, "restore") for result in results]
    finally:
        lease.release()


def test_forced_batch_restore_leaves_redis_as_the_write_script_would(real_redis: redis.Redis) -> None:
    one = SharedStore(real_redis, "one", "bot", **OPTIONS)
    two = SharedStore(real_redis, "two", "bot", **OPTIONS)
    for store in (one, two):
        _prepare(store)
    names = [record.name for record in RECORDS]
    before = _versions(real_redis, two, names)
    tomb = int(real_redis.hget(two.keys.tombstones, "deleted"))
    one._run_many([one._core.put(r.name, r.data, None, op="restore", writer="w") for r in RECORDS], "restore")
    results = _restore(two, RECORDS, fill=False)
    expected = _snapshot_of_redis(real_redis, one, names)
    assert _snapshot_of_redis(real_redis, two, names) == expected
    # the rules the comparison covers, spelled out
    after = _versions(real_redis, two, names)
    assert all(after[name] > before[name] for name in names)
    assert after["deleted"] > tomb  # above its delete
    assert expected["existing"]["data"] == {b"a": encode_document(1, "x").blob}
    assert not expected["deleted"]["history_expires"]
    assert len(expected["wide"]["data"]) == 1500
    assert [len(expected[name]["history"]) for name in ("existing", "deleted")] == [2, 2]
    assert expected["tombstones"] == []
    assert [r.status for r in results] == ["w"] * len(RECORDS)
    assert [r.written.previous for r in results if r.written] == [
        0,
        0,
        before["existing"],
        0,
        0,
        before["value"],
        0,
    ]
    assert two.get("fresh").data == RECORDS[3].data
    assert [change.omitted for change in two.history("huge")] == [True]
    assert two.history("fresh")[0].fields == RECORDS[3].data


def test_a_fill_in_restore_writes_only_what_is_missing_or_older(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    newer = store.put("newer", {"live": 1})
    older = store.put("older", {"old": 1})
    store.put("deleted", {"x": 1})
    store.delete("deleted")
    records = [
        Record("deleted", 5, 0.0, "x", {"back": True}),  # deleted after this backup: stays deleted
        Record("missing", 5, 0.0, "x", {"m": 1}),
        Record("newer", newer - 1, 0.0, "x", {"live": 0}),
        Record("older", older + 1, 0.0, "x", {"old": 2}),
        Record("same", 1, 0.0, "x", {"s": 1}),
    ]
    real_redis.hset(store.keys.meta("same"), mapping={"v": 1, "k": "o", "s": 0})  # at the backup's version
    real_redis.srem(store.keys.names, "newer")  # a names entry lost on its own
    results = {r.name: r.status for r in _restore(store, records, fill=True)}
    assert results == {"deleted": "g", "missing": "w", "newer": "k", "older": "w", "same": "k"}
    assert store.load("newer") == {"live": 1} and store.get("newer").version == newer
    assert store.load("older") == {"old": 2} and store.get("older").version > older + 1
    assert store.load("missing") == {"m": 1} and store.load("deleted") is None
    assert store.names() == ["missing", "newer", "older", "same"]


def test_a_forced_restore_deletes_what_it_is_given(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    version = store.put("extra", {"a": 1})
    results = _restore(store, [], fill=False, deletes=("extra", "never"))
    assert [(r.name, r.status) for r in results] == [("extra", "x"), ("never", "n")]
    assert store.load("extra") is None and store.names() == []
    assert int(real_redis.hget(store.keys.tombstones, "extra")) > version
    assert store.history("extra")[0].op == "delete"


def test_a_restore_that_lost_its_lease_writes_nothing(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    target = batch.Target(True, "1:not-the-holder", "w")
    [(_, call)] = list(batch.restore_calls(store._core, [RECORDS[1]], target))
    with pytest.raises(batch.LeaseLost, match="lost its lock"):
        store._run_many([call], "restore")
    assert real_redis.keys("*") == []


def test_a_wide_document_is_staged_in_bounded_calls(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    store.put("wide", {"old": 1})
    lease = state.restore_lease(store)
    assert lease.acquire()
    target = batch.Target(False, lease.value, "w")
    calls = list(batch.restore_calls(store._core, [RECORDS[6], RECORDS[1]], target, fields=100))
    staging = [call for names, call in calls if not names]
    assert len(staging) == 2 + 1500 // 100  # clear, 15 chunks of 100 fields, expire
    assert all(len(call.command) <= 2 + 2 * 100 for call in staging)
    results = store._run_many([call for _, call in calls], "restore")
    assert [[r.status for r in rs] for rs in results if rs] == [["w"], ["w"]]
    assert store.load("wide") == WIDE and store.load("empty") == {}
    assert not real_redis.exists(store.keys.stage("wide"))
    assert store.history("wide")[0].omitted  # its fields were never in one call


def test_a_restore_writes_documents_over_a_lowered_size_limit(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot", max_document_bytes=100)
    big = Record("big", 1, 0.0, "x", {"pad": "y" * 500})  # accepted once, under a larger limit
    _restore(store, [big], fill=True)
    assert store.get("big").data == big.data
    with pytest.raises(InvalidDocument, match="over the limit"):
        store.put("big", big.data)  # ordinary writes still keep to the limit


def test_batch_restore_of_nothing_writes_nothing(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    assert list(batch.restore_calls(store._core, [], batch.Target(True, "", "w"))) == []
    assert real_redis.keys("*") == []


def test_batches_are_bounded() -> None:
    core = Core("bot", "bot")
    with pytest.raises(ValueError, match="at most"):
        batch.versions(core, ["a"] * (batch.MAX_DOCUMENTS + 1))
    with pytest.raises(ValueError, match="at most"):
        batch.dump(core, ["a"] * (batch.MAX_DOCUMENTS + 1))
    calls = batch.restore_calls(core, [RECORDS[0]] * 1500, batch.Target(True, "", "w"))
    assert all(len(names) <= batch.DOCUMENTS for names, _ in calls)


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
    store.put("other", {"fine": True})
    real_redis.hset(store.keys.data("config"), "b", b"\xc1")  # never valid msgpack
    [bad, good] = store._run_many([batch.dump(store._core, ["config", "other"])], "read")[0]
    assert isinstance(bad, batch.Unreadable) and bad.name == "config" and "field 'b'" in bad.reason
    assert isinstance(good, Record) and good.data == {"fine": True}  # one bad document spoils no other


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
