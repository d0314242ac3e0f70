"""The client cache: hot reads make no round trip, and Redis's invalidations keep them current."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import redis

from sharedstate import AsyncSharedStore, DocumentNotFound, SharedStore
from sharedstate._fresh import ClientCache, Entry
from sharedstate.errors import NotAnObject
from sharedstate.redis_server import RedisProcess

pytestmark = pytest.mark.timeout(60)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def commands(raw: redis.Redis) -> int:
    """Commands Redis has processed so far (INFO itself counts one)."""
    return int(raw.info("stats")["total_commands_processed"])


@pytest.fixture(params=["redis", "valkey"])
def server(request: pytest.FixtureRequest) -> RedisProcess:
    fixture = "redis_server" if request.param == "redis" else "valkey_server"
    process: RedisProcess = request.getfixturevalue(fixture)
    return process


@pytest.fixture
def raw(server: RedisProcess) -> Iterator[redis.Redis]:
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def stores(server: RedisProcess, raw: redis.Redis) -> Iterator[Callable[..., SharedStore]]:
    made: list[SharedStore] = []

    def make(namespace: str = "cache", **options: Any) -> SharedStore:
        store = SharedStore.from_url(server.url, namespace, "tester", **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def warm(store: SharedStore, name: str, data: Any) -> None:
    """Write ``name`` and wait until the store holds a current copy of it."""
    store.put(name, data)
    wait_for(lambda: cached(store, name), what="a current copy")


def cached(store: SharedStore, name: str) -> bool:
    """True once the store holds a current copy of ``name`` (reading it if need be)."""
    store.get(name)
    return store._core.fresh is not None and store._core.fresh.lookup(name) is not None


def test_a_hot_read_is_answered_from_memory_without_a_round_trip(stores: Any, raw: redis.Redis) -> None:
    store = stores()
    warm(store, "config", {"greeting": "hi", "admins": [1, 2, 3], "big": 10**25, "tags": {"a", "b"}})
    before = commands(raw)
    for _ in range(1000):
        doc = store.get("config")
        assert store.get_field("config", "big") == 10**25
        assert store.load("config")["tags"] == {"a", "b"}
    assert commands(raw) - before <= 5  # INFO itself and the channel's pings, not 3,000 reads
    assert doc.data == {"greeting": "hi", "admins": [1, 2, 3], "big": 10**25, "tags": {"a", "b"}}


def test_every_read_returns_its_own_copy(stores: Any) -> None:
    store = stores()
    warm(store, "config", {"admins": [1, 2], "limits": {"max": 10}})
    doc = store.get("config")
    doc.data["admins"].append(99)
    doc.data["limits"]["max"] = 0
    store.get_field("config", "admins").append(7)
    assert store.get("config").data == {"admins": [1, 2], "limits": {"max": 10}}
    warm(store, "plain", [1, {"two": 2}])  # a document that is not an object: one value
    store.get("plain").data[1]["two"] = 0
    assert store.get("plain").data == [1, {"two": 2}]
    with pytest.raises(NotAnObject):
        store.get_field("plain", "x")


def test_a_write_by_another_client_reaches_the_cache_as_an_invalidation(
    stores: Any, raw: redis.Redis
) -> None:
    store = stores()
    warm(store, "config", {"n": 1})
    # Writes this process makes void its copies at once; these come from other connections, so
    # only Redis's invalidation can tell the store.
    version = store.get("config").version + 1
    raw.hset(store.keys.meta("config"), "v", version)
    wait_for(lambda: store.get("config").version == version, what="the new version")
    raw.hset(store.keys.data("config"), "n", b"\x03")
    wait_for(lambda: store.get("config").data == {"n": 3}, what="the new data")


def test_a_read_after_this_process_wrote_sees_the_write_at_once(stores: Any) -> None:
    a, b = stores(), stores()
    a.put("doc", {"n": 0})
    wait_for(lambda: cached(a, "doc") and cached(b, "doc"), what="current copies")
    for n in range(1, 200):
        a.set_field("doc", "n", n)
        assert a.get("doc").data == {"n": n}
        assert b.get("doc").data == {"n": n}  # another store of this process: no invalidation delay
    a.delete("doc")
    with pytest.raises(DocumentNotFound):
        b.get("doc")


def test_absence_is_cached_too_and_a_creation_invalidates_it(stores: Any, raw: redis.Redis) -> None:
    store = stores()
    wait_for(lambda: store.load("missing") is None and store._core.fresh.lookup("missing"), what="absence")
    before = commands(raw)
    for _ in range(100):
        assert store.load("missing", "default") == "default"
    assert commands(raw) - before <= 5
    raw.hset(store.keys.meta("missing"), mapping={"v": 5, "t": 0, "w": "x", "k": "o", "s": 3})
    raw.hset(store.keys.data("missing"), "now", b"\xa4here")
    wait_for(lambda: store.load("missing") == {"now": "here"}, what="the created document")


def test_a_broken_channel_empties_the_cache_and_reads_go_to_redis_until_it_is_back(
    stores: Any, raw: redis.Redis
) -> None:
    store = stores()
    warm(store, "doc", {"n": 1})
    killed = raw.client_kill_filter(_type="pubsub")
    assert killed >= 1
    wait_for(lambda: store._core.fresh.lookup("doc") is None, what="the cache to empty")
    wait_for(lambda: cached(store, "doc"), what="the channel to come back")
    before = commands(raw)
    for _ in range(100):
        store.get("doc")
    assert commands(raw) - before <= 5


def test_flushall_empties_the_cache(stores: Any, raw: redis.Redis) -> None:
    store = stores()
    warm(store, "doc", {"n": 1})
    raw.flushall()
    wait_for(lambda: len(store._core.fresh) == 0, what="the cache to empty")
    with pytest.raises(DocumentNotFound):
        store.get("doc")


def test_the_cache_is_bounded_by_count_and_bytes(stores: Any) -> None:
    by_count = stores(cache_documents=3)
    for i in range(10):
        by_count.put(f"d{i}", {"i": i})
    wait_for(lambda: cached(by_count, "d0"), what="the channel")
    for i in range(10):
        by_count.get(f"d{i}")
    assert len(by_count._core.fresh) <= 3
    by_bytes = stores(cache_bytes=64 * 1024)
    by_bytes.put("big", {"x": "y" * 20_000})  # over an eighth of the budget: never kept
    by_bytes.put("small", {"x": "y"})
    wait_for(lambda: cached(by_bytes, "small"), what="the channel")
    for _ in range(3):
        assert by_bytes.get("big").data == {"x": "y" * 20_000}
    assert by_bytes._core.fresh.lookup("big") is None


def test_without_the_cache_every_read_is_a_round_trip(stores: Any, raw: redis.Redis) -> None:
    store = stores(cache=False)
    store.put("doc", {"n": 1})
    before = commands(raw)
    for _ in range(50):
        store.get("doc")
    assert commands(raw) - before >= 50


def test_the_mapping_reads_from_the_cache(stores: Any, raw: redis.Redis) -> None:
    store = stores()
    users = store.mapping("users")
    users["1"] = {"name": "ann"}
    users["2"] = {"name": "bob"}
    wait_for(lambda: cached(store, "users"), what="a current copy")
    before = commands(raw)
    for _ in range(100):
        assert users["1"] == {"name": "ann"}
        assert sorted(users) == ["1", "2"]
        assert len(users) == 2
        assert "3" not in users
    assert commands(raw) - before <= 5


def test_the_async_client_answers_hot_reads_from_memory(server: RedisProcess, raw: redis.Redis) -> None:
    async def main() -> None:
        store = AsyncSharedStore.from_url(server.url, "cache", "tester")
        try:
            await store.put("doc", {"n": 1})
            deadline = time.monotonic() + 10
            while store._core.fresh.lookup("doc") is None:  # type: ignore[union-attr]
                assert time.monotonic() < deadline
                await store.get("doc")
                await asyncio.sleep(0.005)
            before = commands(raw)
            docs = await asyncio.gather(*(store.get("doc") for _ in range(500)))
            assert commands(raw) - before <= 5
            assert {doc.version for doc in docs} == {docs[0].version}
            version = (await store.info("doc")).version + 1
            raw.hset(store.keys.meta("doc"), "v", version)  # another connection's write
            while (await store.get("doc")).version != version:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
        finally:
            await store.close()

    asyncio.run(main())


# -- the rule that keeps a racing read from leaving an old copy (pure) ----------------------


def _entry(version: int) -> Entry:
    return Entry(version, 0.0, "w", "o", {"n": b"\x01"}, 2)


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    cache = ClientCache("pure", 10, 1 << 20)
    cache.up()
    ticket = cache.ticket()
    cache.invalidate(["doc"])  # arrived while the read was on its way
    cache.admit("doc", ticket, _entry(1))
    assert cache.lookup("doc") is None
    ticket = cache.ticket()
    cache.admit("doc", ticket, _entry(2))
    assert cache.lookup("doc") == _entry(2)


def test_a_read_sent_before_the_channel_was_up_or_across_a_break_is_not_kept() -> None:
    cache = ClientCache("pure", 10, 1 << 20)
    assert cache.ticket() is None
    cache.up()
    ticket = cache.ticket()
    cache.down()
    cache.up()
    cache.admit("doc", ticket, _entry(1))
    assert cache.lookup("doc") is None


def test_a_silent_channel_serves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ClientCache("pure", 10, 1 << 20)
    cache.up()
    cache.admit("doc", cache.ticket(), _entry(1))
    assert cache.lookup("doc") is not None
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 10)
    assert cache.lookup("doc") is None


def test_a_forked_child_starts_with_an_empty_cache_and_a_channel_of_its_own(
    stores: Any, raw: redis.Redis
) -> None:
    """RQ runs each job in a forked work horse: the parent's copies are not the child's to trust."""
    import os

    store = stores()
    warm(store, "doc", {"n": 1})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by its exit status
        code = 1
        try:
            if store.cached_version("doc") is None:
                raw.hset(store.keys.data("doc"), "n", b"\x07")
                wait_for(lambda: cached(store, "doc") and store.get("doc").data == {"n": 7}, what="child")
                raw.hset(store.keys.data("doc"), "n", b"\x08")
                wait_for(lambda: store.get("doc").data == {"n": 8}, what="child invalidation")
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    wait_for(lambda: store.get("doc").data == {"n": 8}, what="the parent's invalidation")


def test_a_write_acknowledged_to_this_process_through_any_connection_is_read_at_once(
    stores: Any, raw: redis.Redis
) -> None:
    """Redis sends a write's invalidation before its reply; a read while the invalidation is
    still in the channel's socket (or being applied) goes to Redis, so the thread scheduling
    adds no window. (Without that rule ~25% of these reads were stale, by up to 12 ms.) What is
    left is the kernel's: under load it can deliver the reply on one socket a few microseconds
    before the invalidation on the other (seen 1 in 5,000); such a read is current at once
    after."""
    store = stores()
    warm(store, "doc", {"n": 0})
    key = store.keys.data("doc")
    late = 0
    for n in range(1, 2000):
        raw.hset(key, "n", msgpack.packb(n))
        if store.get("doc").data != {"n": n}:
            late += 1
            wait_for(lambda n=n: store.get("doc").data == {"n": n}, what=f"write {n}")
    assert late <= 20, f"{late} of 1999 reads right after an acknowledged write were stale"


def test_with_redis_frozen_the_cache_stops_answering_and_reads_are_stale(own_redis: RedisProcess) -> None:
    """A frozen Redis answers no ping: within SILENCE the copies stop counting as current, and
    reads are what they are without a cache, the last known copy marked stale."""
    from sharedstate._fresh import SILENCE

    store = SharedStore.from_url(own_redis.url, "frozen", "tester", timeout=1.0)
    try:
        warm(store, "doc", {"n": 1})
        own_redis.pause()
        frozen = time.monotonic()
        try:
            wait_for(lambda: store.cached_version("doc") is None, SILENCE + 2, "the cache to stop")
            assert time.monotonic() - frozen < SILENCE + 1
            doc = store.get("doc")
            assert doc.stale and doc.data == {"n": 1}
        finally:
            own_redis.resume()
        wait_for(lambda: not store.get("doc").stale and cached(store, "doc"), 15, "the channel back")
    finally:
        store.close()
