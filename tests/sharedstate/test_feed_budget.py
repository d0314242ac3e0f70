"""A write costs Redis memory in proportion to what it changed; feed and history stay in budget."""

from __future__ import annotations

import secrets
from typing import Any

import redis

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess


def test_a_put_records_only_the_fields_it_changed(store: Any) -> None:
    store.put("doc", {"a": 1, "b": {"x": [1, 2]}, "c": "same"})
    store.put("doc", {"a": 2, "b": {"x": [1, 2]}, "c": "same", "d": None})
    store.put("doc", {"a": 2, "c": "same"})
    store.put("doc", {"a": 2, "c": "same"})
    newest, removal, change, first = store.history("doc")
    assert (first.fields, first.removed) == ({"a": 1, "b": {"x": [1, 2]}, "c": "same"}, ())
    assert (change.fields, change.removed) == ({"a": 2, "d": None}, ())
    assert (removal.fields, removal.removed) == ({}, ("b", "d"))
    assert (newest.op, newest.fields, newest.removed) == ("put", {}, ())
    assert store.get("doc").data == {"a": 2, "c": "same"}
    # a plain value, and an object over a plain value, are recorded whole
    store.put("doc", [1, 2])
    store.put("doc", {"a": 2})
    assert [(c.fields, c.removed) for c in store.history("doc", limit=2)] == [({"a": 2}, ()), ([1, 2], ())]


def test_types_that_compare_equal_in_python_are_still_changes(store: Any) -> None:
    store.put("doc", {"n": 1, "s": {1, 2}})
    store.put("doc", {"n": 1.0, "s": [1, 2]})
    assert store.history("doc")[0].fields == {"n": 1.0, "s": [1, 2]}
    assert store.get("doc").data == {"n": 1.0, "s": [1, 2]}


def test_feed_and_history_stay_within_the_byte_budget(make_store: Any) -> None:
    store = make_store(history_budget=50_000, payload_limit=10_000)
    for i in range(40):
        store.put(f"doc{i % 4}", {"blob": secrets.token_hex(2_000), "i": i})  # ~4 KB per change
    feed = list(store.watch(after="0-0", timeout=0.1))
    assert 5 <= len(feed) < 14  # ~11 changes of 4 KB fit in 50 KB
    assert [c.fields["i"] for c in feed] == list(range(40 - len(feed), 40))  # the newest are kept
    kept = {c.id for c in feed}
    histories = [store.history(f"doc{d}", limit=50) for d in range(4)]
    assert {c.id for h in histories for c in h} == kept  # history records left with their entries
    assert all(c.fields is not None for h in histories for c in h)


def test_a_merge_can_remove_fields_in_the_same_step(store: Any) -> None:
    store.put("doc", {"a": 1, "b": 2})
    core = store._core
    store._run(core.patch("doc", {"c": 3}, ["a", "zz"], None))
    assert store.get("doc").data == {"b": 2, "c": 3}
    change = store.history("doc")[0]
    assert (change.op, change.fields, change.removed) == ("merge", {"c": 3}, ("a",))


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def test_one_field_changes_of_a_large_document_cost_little_memory(own_redis: RedisProcess) -> None:
    client = own_redis.client()
    store = SharedStore(client, "mem", "bot")
    document = {f"k{i}": secrets.token_hex(40) for i in range(900)}  # ~75 KB of JSON
    store.put("big", document)
    before = _used(client)
    for i in range(1000):
        document[f"k{i % 900}"] = secrets.token_hex(40)
        store.put("big", document)
    grown = _used(client) - before
    print(f"\n[1,000 puts of a 75 KB document, one field each] Redis grew by {grown / 1e6:.2f} MB")
    assert grown < 8_000_000
    store.close()
    client.close()


def test_feed_and_history_of_many_large_documents_stay_within_the_default_budget(
    own_redis: RedisProcess,
) -> None:
    client = own_redis.client()
    store = SharedStore(client, "many", "bot")
    for _round in range(2):
        for start in range(0, 3000, 100):
            store.put_all({f"d{i}": {"blob": secrets.token_hex(20_000)} for i in range(start, start + 100)})
    feed = int(client.memory_usage(store.keys.feed) or 0)
    histories = sum(int(client.memory_usage(store.keys.history(f"d{i}")) or 0) for i in range(3000))
    counted = int(client.get(store.keys.feed_bytes) or 0)
    print(
        f"\n[3,000 x 40 KB written twice] feed {feed / 2**20:.1f} MiB, histories {histories / 2**20:.1f} MiB"
    )
    assert counted <= 64 * 2**20
    assert feed + histories <= 64 * 2**20  # what Redis itself says they take
    assert len(store.names()) == 3000
    store.close()
    client.close()
