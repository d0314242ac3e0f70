"""Auto-pipelining of AsyncSharedStore: the calls of one event-loop turn share one round trip,
and each caller still gets exactly its own answer or error (real Redis)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from sharedstate import AsyncSharedStore, DocumentNotFound, StoreUnavailable, VersionConflict, _autopipe
from sharedstate.redis_server import RedisProcess


class Counting:
    """Counts round trips: the number of commands each one carried."""

    trips: list[int] = []


@pytest.fixture(autouse=True)
def _count_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = _autopipe.AutoPipeline._exchange

    async def counted(self: _autopipe.AutoPipeline, pool: Any, batch: list[Any]) -> None:
        Counting.trips.append(len(batch))
        await exchange(self, pool, batch)

    monkeypatch.setattr(_autopipe.AutoPipeline, "_exchange", counted)


def run(server: RedisProcess, test: Callable[[AsyncSharedStore], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        Counting.trips = []
        store = AsyncSharedStore(
            redis.asyncio.Redis(port=server.port), "pipe", "bot", timeout=None, **options
        )
        try:
            await test(store)
        finally:
            await store.redis.aclose()

    asyncio.run(main())


def test_the_calls_of_one_turn_share_one_round_trip(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def test(store: AsyncSharedStore) -> None:
        await asyncio.gather(*(store.put(f"d{i}", {"i": i}) for i in range(50)))
        await store.get("d0")  # Redis knows the read script from now on
        Counting.trips = []
        docs = await asyncio.gather(*(store.get(f"d{i}") for i in range(50)))
        assert [doc.data for doc in docs] == [{"i": i} for i in range(50)]
        assert Counting.trips == [50]
        assert (await store.get("d7")).data == {"i": 7}  # a call alone goes alone
        assert Counting.trips == [50, 1]

    run(redis_server, test)


def test_calls_of_one_turn_run_in_the_order_issued(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def test(store: AsyncSharedStore) -> None:
        v1 = await store.put("doc", {"n": 0})
        results = await asyncio.gather(
            store.put("doc", {"n": 1}, expected_version=v1),
            store.get("doc"),
            store.put("doc", {"n": 2}, expected_version=v1),  # stale by then
            return_exceptions=True,
        )
        assert isinstance(results[0], int) and results[0] > v1
        assert results[1].version == results[0]  # type: ignore[union-attr]
        assert results[1].data == {"n": 1}  # type: ignore[union-attr]
        assert isinstance(results[2], VersionConflict)
        assert Counting.trips == [1, 3]

    run(redis_server, test)


def test_each_caller_gets_its_own_error(redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    async def test(store: AsyncSharedStore) -> None:
        await store.put("good", {"a": 1})
        real_redis.set("ss:{pipe}:m:bad", "not a hash")  # read.lua's HMGET fails on it
        good, bad, missing = await asyncio.gather(
            store.get("good"), store.get("bad"), store.get("missing"), return_exceptions=True
        )
        assert good.data == {"a": 1}  # type: ignore[union-attr]
        assert "WRONGTYPE" in str(bad)
        assert isinstance(missing, DocumentNotFound)

    run(redis_server, test)


def test_scripts_redis_forgot_are_sent_again(redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    async def test(store: AsyncSharedStore) -> None:
        await store.put("doc", {"a": 1})
        real_redis.script_flush()
        Counting.trips = []
        results = await asyncio.gather(store.get("doc"), store.set_field("doc", "b", 2), store.get("doc"))
        assert results[0].data == {"a": 1} and results[2].data == {"a": 1, "b": 2}  # type: ignore[union-attr]
        assert Counting.trips == [3, 3]  # refused together, sent again together

    run(redis_server, test)


def test_more_calls_than_one_pipeline_holds(
    redis_server: RedisProcess, real_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_autopipe, "MAX_BATCH", 7)

    async def test(store: AsyncSharedStore) -> None:
        versions = await asyncio.gather(*(store.put(f"d{i}", i) for i in range(30)))
        assert all(isinstance(version, int) and version > 0 for version in versions)
        assert [(await store.get(f"d{i}")).version for i in range(30)] == versions
        assert Counting.trips[:5] == [7, 7, 7, 7, 2]
        assert await store.names() == sorted(f"d{i}" for i in range(30))

    run(redis_server, test)


def test_a_cancelled_caller_cancels_nobody_else(
    redis_server: RedisProcess, real_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async def test(store: AsyncSharedStore) -> None:
        await store.put("doc", {"a": 1})
        real_redis.set("ss:{pipe}:m:bad", "not a hash")
        leaving = asyncio.ensure_future(store.get("bad"))  # fails, and nobody is left to see it
        staying = asyncio.ensure_future(store.get("doc"))
        written = asyncio.ensure_future(store.set_field("doc", "b", 2))
        await asyncio.sleep(0)  # all three issued in this turn
        leaving.cancel()
        written.cancel()  # issued already: it is sent, as a command on the wire would be
        assert (await staying).data == {"a": 1}
        await asyncio.sleep(0.05)
        assert (await store.get("doc")).data == {"a": 1, "b": 2}

    with caplog.at_level(logging.ERROR):
        run(redis_server, test)
    assert "never retrieved" not in caplog.text


def test_a_blocking_watch_read_is_never_batched(redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    async def test(store: AsyncSharedStore) -> None:
        batched: list[str] = []
        execute = store._pipeline.execute

        async def recording(command: tuple[Any, ...]) -> Any:
            batched.append(str(command[0]))
            return await execute(command)

        store._pipeline.execute = recording  # type: ignore[method-assign]
        await store.put("doc", {"a": 1})
        changes = store.watch(names=["other"], timeout=3)
        watching = asyncio.ensure_future(changes.__anext__())  # blocks on XREAD until a change
        for _ in range(20):  # reads in the same turns as the watch's: none waits behind it
            assert (await store.get("doc")).data == {"a": 1}
        assert not watching.done()
        await store.put("other", 1)
        assert (await asyncio.wait_for(watching, 5)).name == "other"
        assert "XREAD" not in batched and "EVALSHA" in batched

    run(redis_server, test)


def test_a_lost_round_trip_fails_every_caller_and_stale_reads_answer(tmp_path: Path) -> None:
    with RedisProcess(tmp_path / "redis") as server:

        async def main() -> None:
            store = AsyncSharedStore.from_url(server.url, "pipe", "bot", timeout=2)
            await asyncio.gather(store.put("a", 1), store.put("b", 2))
            server.kill()
            a, b, written = await asyncio.gather(
                store.get("a"), store.get("b"), store.put("c", 3), return_exceptions=True
            )
            assert (a.data, a.stale, b.data, b.stale) == (1, True, 2, True)  # type: ignore[union-attr]
            assert isinstance(written, StoreUnavailable)
            await store.redis.aclose()

        asyncio.run(main())


def test_a_pause_longer_than_a_socket_timeout_fails_no_call_and_sends_none_twice(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def main() -> None:
        store = AsyncSharedStore.from_url(redis_server.url, "pipe", "bot", timeout=4)  # 1 s socket reads
        await store.put("doc", {"n": 0})
        real_redis.config_resetstat()
        pause = asyncio.ensure_future(
            asyncio.to_thread(redis_server.client().execute_command, "DEBUG", "SLEEP", 2)
        )
        await asyncio.sleep(0.2)  # Redis is frozen now, for longer than one socket timeout
        results = await asyncio.gather(*(store.set_field("doc", f"f{i}", i) for i in range(20)))
        await pause
        assert len(set(results)) == 20  # every call answered, each with its own version
        calls = real_redis.info("commandstats")["cmdstat_evalsha"]["calls"]
        assert calls == 20  # none sent twice
        assert len(await store.history("doc", limit=50)) == 21
        await store.close()

    asyncio.run(main())


def test_a_broken_connection_sends_the_unanswered_calls_again_each_applied_once(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def main() -> None:
        store = AsyncSharedStore.from_url(redis_server.url, "pipe", "bot", timeout=4)
        await store.put("doc", {"n": 0})
        real_redis.client_kill_filter(_type="normal", skipme=True)  # the pooled connection dies
        results = await asyncio.gather(*(store.set_field("doc", f"f{i}", i) for i in range(20)))
        assert len(set(results)) == 20
        doc = await store.get("doc")
        assert doc.data == {"n": 0, **{f"f{i}": i for i in range(20)}}
        assert len(await store.history("doc", limit=50)) == 21  # each applied once
        await store.close()

    asyncio.run(main())


def test_a_large_call_goes_alone(redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    async def test(store: AsyncSharedStore) -> None:
        await store.put("doc", {"n": 0})
        Counting.trips = []
        big, *small = await asyncio.gather(
            store.put("big", {"pad": "x" * (_autopipe.ALONE_BYTES + 1)}),
            *(store.set_field("doc", f"f{i}", i) for i in range(10)),
        )
        assert sorted(Counting.trips) == [1, 10] and big > 0 and len(set(small)) == 10

    run(redis_server, test)
