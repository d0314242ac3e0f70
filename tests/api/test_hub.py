"""The API's change hub: fan-out order, resuming from memory and from the feed, slow streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis

from sharedstate import AsyncSharedStore, Change
from sharedstate.api import events
from sharedstate.api.events import ChangeHub, StreamEnded
from sharedstate.redis_server import RedisProcess


async def _take(hub: ChangeHub, subscription: events.Subscription, count: int) -> list[Change]:
    got: list[Change] = []
    async with asyncio.timeout(30):
        async for change in hub.changes(subscription, 5.0):
            if change is not None:
                got.append(change)
                if len(got) == count:
                    return got
    return got


@contextlib.asynccontextmanager
async def _hub(server: RedisProcess) -> AsyncIterator[tuple[AsyncSharedStore, ChangeHub]]:
    store = AsyncSharedStore.from_url(server.url, "hub")
    hub = ChangeHub(store, 10)
    try:
        yield store, hub
    finally:
        await hub.close()
        await store.close()


def test_resume_from_memory_and_from_further_back(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def run() -> None:
        async with _hub(redis_server) as (store, hub):
            live = await hub.subscribe(None, "t", None)
            first = await store.put("a", {"n": 0})
            seen = await _take(hub, live, 1)
            assert seen[0].version == first
            start = seen[0].id
            reading = asyncio.ensure_future(_take(hub, live, events.RECENT + 50))
            for n in range(events.RECENT + 50):  # more than the hub keeps
                await store.set_field("a", "n", n)
            everything = await reading
            recent = await hub.subscribe(None, "t", everything[-10].id)  # served from memory
            assert [c.id for c in await _take(hub, recent, 9)] == [c.id for c in everything[-9:]]
            old = await hub.subscribe(["a"], "t", start)  # older than memory: read from the feed
            got = await _take(hub, old, events.RECENT + 50)
            assert [c.id for c in got] == [c.id for c in everything]
            after = await store.set_field("a", "n", -1)
            assert (await _take(hub, old, 1))[0].version == after  # then live, nothing twice

    asyncio.run(run())


def test_a_stream_that_never_reads_is_ended_not_buffered(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def run() -> None:
        async with _hub(redis_server) as (store, hub):
            stuck = await hub.subscribe(None, "t", None)
            reading = await hub.subscribe(None, "t", None)
            taking = asyncio.ensure_future(_take(hub, reading, events.QUEUE + 10))
            for n in range(events.QUEUE + 10):
                await store.set_field("a", "n", n)
            assert len(await taking) == events.QUEUE + 10
            assert stuck.queue.qsize() <= events.QUEUE + 1 and hub.streams == 1
            try:
                await _take(hub, stuck, events.QUEUE + 10)
            except StreamEnded as exc:
                assert exc.ended.error == "too_slow"
            else:
                raise AssertionError("the stuck stream was not ended")

    asyncio.run(run())
