"""DocumentReads: GETs batched into one pipeline per loop turn, never older than an acknowledged write."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import redis

from sharedstate import AsyncSharedStore, Document, DocumentNotFound, InvalidDocument, StoreUnavailable
from sharedstate._core import Call
from sharedstate.api.reads import DocumentReads, render_document
from sharedstate.redis_server import RedisProcess, free_port

T = TypeVar("T")


class CountingStore(AsyncSharedStore):
    """Records how the reads reach Redis: one entry per round trip, with its number of commands."""

    trips: list[int]

    def count_round_trips(self) -> None:
        pipeline = self._pipeline
        exchange = pipeline._exchange

        async def counted(pool: Any, batch: list[Any]) -> None:
            self.trips.append(len(batch))
            await exchange(pool, batch)

        pipeline._exchange = counted  # type: ignore[method-assign]


def run(url: str, body: Callable[[CountingStore], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        store = CountingStore.from_url(url, "ns", "api", timeout=2.0)
        store.trips = []
        store.count_round_trips()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def version_of(body: tuple[int, bytes]) -> int:
    version, rendered = body
    assert json.loads(rendered)["version"] == version
    return version


def test_concurrent_reads_go_to_redis_in_one_pipeline_and_same_names_share_a_read(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def body(store: CountingStore) -> tuple[list[tuple[int, bytes]], list[int]]:
        for i in range(10):
            await store.put(f"doc{i}", {"i": i})
        await store.get("doc0")  # the read script is loaded (a first use costs a NOSCRIPT re-send)
        store.trips.clear()
        reads = DocumentReads(store)
        results = await asyncio.gather(*(reads.get(f"doc{i % 10}") for i in range(30)))
        return results, store.trips

    results, trips = run(redis_server.url, body)
    assert [json.loads(b)["data"] for _, b in results] == [{"i": i % 10} for i in range(30)]
    assert trips == [10]  # one round trip, one read per document


def test_a_read_is_never_older_than_a_write_acknowledged_before_it(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def body(store: CountingStore) -> int:
        reads = DocumentReads(store)
        await store.put("hot", {"n": 0})
        stop = asyncio.Event()
        stale = 0

        async def reader() -> None:  # keeps batches in flight while the writer checks
            while not stop.is_set():
                version_of(await reads.get("hot"))

        readers = [asyncio.create_task(reader()) for _ in range(8)]
        try:
            for n in range(1, 150):
                written = await store.put("hot", {"n": n})
                stale += version_of(await reads.get("hot")) < written
        finally:
            stop.set()
            await asyncio.gather(*readers)
        return stale

    assert run(redis_server.url, body) == 0


def test_a_read_answered_before_a_write_is_not_shared_with_a_read_asked_after_it(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    class HeldStore(CountingStore):
        """Once ``holding``, holds the next answer back after Redis gave it: a read still in flight."""

        answered = asyncio.Event()
        held = asyncio.Event()
        holding = False

        async def _run(self, call: Call[T]) -> T:
            answer = await super()._run(call)
            if self.holding:
                self.holding = False
                self.answered.set()
                await self.held.wait()
            return answer

    async def main() -> tuple[int, int, int]:
        store = HeldStore.from_url(redis_server.url, "ns", "api", timeout=2.0)
        store.trips = []
        try:
            await store.put("hot", {"n": 0})
            reads = DocumentReads(store)
            store.holding = True
            early = asyncio.ensure_future(reads.get("hot"))
            await store.answered.wait()
            written = await store.put("hot", {"n": 1})
            late = asyncio.ensure_future(reads.get("hot"))
            await asyncio.sleep(0)
            store.held.set()
            return version_of(await early), written, version_of(await late)
        finally:
            await store.close()

    early, written, late = asyncio.run(main())
    assert early < written == late


def test_an_unchanged_document_is_rendered_once(redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    rendered: list[int] = []

    def render(doc: Document) -> bytes:
        rendered.append(doc.version)
        return render_document(doc)

    async def body(store: CountingStore) -> None:
        reads = DocumentReads(store, render)
        first = await store.put("a", {"x": 1})
        assert (await reads.get("a"))[0] == first
        assert (await reads.get("a"))[0] == first
        second = await store.put("a", {"x": 2})
        version, payload = await reads.get("a")
        assert version == second and json.loads(payload)["data"] == {"x": 2}
        await store.delete("a")
        with pytest.raises(DocumentNotFound):
            await reads.get("a")
        assert rendered == [first, second]

    run(redis_server.url, body)


def test_a_document_that_does_not_decode_fails_only_its_own_reads(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def body(store: CountingStore) -> list[Any]:
        await store.put("good", {"x": 1})
        await store.put("bad", {"x": 1})
        real_redis.hset("ss:{ns}:d:bad", "x", b"\xc1 not msgpack")
        reads = DocumentReads(store)
        reading = (reads.get("good"), reads.get("bad"), reads.get("bad"))
        return await asyncio.gather(*reading, return_exceptions=True)

    good, bad, bad_again = run(redis_server.url, body)
    assert isinstance(good, tuple) and json.loads(good[1])["data"] == {"x": 1}
    assert isinstance(bad, InvalidDocument) and "x" in str(bad)
    assert isinstance(bad_again, InvalidDocument)


def test_redis_down_fails_every_waiting_read_with_store_unavailable() -> None:
    async def body(store: CountingStore) -> list[Any]:
        reads = DocumentReads(store)
        return await asyncio.gather(*(reads.get(f"doc{i % 3}") for i in range(6)), return_exceptions=True)

    results = run(f"redis://127.0.0.1:{free_port()}/0", body)
    assert all(isinstance(result, StoreUnavailable) for result in results), results


def test_a_caller_that_goes_away_does_not_cancel_the_read_others_wait_for(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def body(store: CountingStore) -> list[Any]:
        written = await store.put("a", {"x": 1})
        reads = DocumentReads(store)
        leaving = asyncio.ensure_future(reads.get("a"))
        staying = [asyncio.ensure_future(reads.get("a")) for _ in range(3)]
        await asyncio.sleep(0)  # both have joined the batch, which is not sent yet
        leaving.cancel()
        return [written, *await asyncio.gather(*staying, leaving, return_exceptions=True)]

    written, *staying, leaving = run(redis_server.url, body)
    assert [version_of(result) for result in staying] == [written] * 3
    assert isinstance(leaving, asyncio.CancelledError)


def test_a_body_kept_for_the_version_the_client_cache_holds_is_served_without_redis(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def body(store: CountingStore) -> None:
        reads = DocumentReads(store)
        written = await store.put("hot", {"n": 1})
        deadline = asyncio.get_running_loop().time() + 10
        while store.cached_version("hot") != written:  # the cache's channel comes up on first reads
            assert asyncio.get_running_loop().time() < deadline
            await reads.get("hot")
            await asyncio.sleep(0.005)
        await reads.get("hot")  # the body for that version is kept
        store.trips.clear()
        for _ in range(200):
            assert version_of(await reads.get("hot")) == written
        assert store.trips == []  # no round trip at all
        # another connection's write: Redis's invalidation makes the next GETs ask again
        real_redis.hset("ss:{ns}:m:hot", "v", written + 1)
        while version_of(await reads.get("hot")) != written + 1:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.005)
        assert store.trips != []

    run(redis_server.url, body)
