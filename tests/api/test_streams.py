"""Live streams under real uvicorn: one feed reader for all of them, heartbeats, resuming, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess
from tests.api.conftest import ADMIN, READ, TOKENS
from tests.deployments import Server, start_api, wait_serving

AUTH = {"Authorization": f"Bearer {READ}"}


@pytest.fixture
def served(redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path) -> Iterator[Server]:
    server = start_api(
        redis_server, tmp_path, SHAREDSTATE_API_TOKENS=TOKENS, SHAREDSTATE_API_HEARTBEAT="0.5",
        SHAREDSTATE_API_MAX_STREAMS="300",
    )  # fmt: skip
    wait_serving(server)
    yield server
    server.process.terminate()
    server.process.wait(15)


@pytest.fixture
def store(real_redis: redis.Redis) -> SharedStore:
    return SharedStore(real_redis, "served", "beside")


_readers: dict[int, tuple[AsyncIterator[str], list[str]]] = {}


async def _read_until(response: httpx.Response, wanted: str, limit: float = 20) -> str:
    """The stream's text so far, read until it holds ``wanted`` (each call goes on reading)."""
    chunks, seen = _readers.setdefault(id(response), (response.aiter_text(), []))
    async with asyncio.timeout(limit):
        while wanted not in "".join(seen):
            try:
                seen.append(await anext(chunks))
            except StopAsyncIteration:
                raise AssertionError(f"the stream ended without {wanted!r}") from None
    text = "".join(seen)
    seen.clear()
    return text


def _api_connections(real_redis: redis.Redis) -> int:
    return sum(1 for client in real_redis.client_list() if client.get("name", "").startswith("api"))


def test_many_streams_share_one_reader_and_others_still_answer(
    served: Server, store: SharedStore, real_redis: redis.Redis
) -> None:
    async def run() -> None:
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=30, limits=limits) as client:
            streams = [client.stream("GET", "/v1/events") for _ in range(250)]  # > the pool's 100
            responses = [await stream.__aenter__() for stream in streams]
            assert all(r.status_code == 200 for r in responses)
            await asyncio.gather(*(_read_until(r, ": connected") for r in responses))
            assert (await client.get("/v1/docs")).status_code == 200
            assert 1 <= _api_connections(real_redis) < 20  # the feed reader's and a few for requests
            version = await asyncio.to_thread(store.put, "config", {"a": 1})
            texts = await asyncio.gather(*(_read_until(r, f'"version":{version}') for r in responses))
            assert all('"name":"config"' in text for text in texts)
            for response in responses[:5]:  # heartbeats every 0.5 s here
                assert ": keep-alive" in await _read_until(response, ": keep-alive")
            for stream in streams:
                await stream.__aexit__(None, None, None)

    asyncio.run(run())


def test_a_stream_resumes_from_last_event_id(served: Server, store: SharedStore) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(base_url=served.url, headers=AUTH, timeout=30) as client:
            async with client.stream("GET", "/v1/events", params={"names": "a"}) as response:
                await _read_until(response, ": connected")
                await asyncio.to_thread(store.put, "a", 1)
                text = await _read_until(response, "event: change")
            first = text.split("id: ", 1)[1].split("\n", 1)[0]
            missed = [await asyncio.to_thread(store.put, "a", n) for n in (2, 3)]
            await asyncio.to_thread(store.put, "b", 0)  # not asked for
            headers = {**AUTH, "Last-Event-ID": first}
            async with client.stream("GET", "/v1/events", params={"names": "a"}, headers=headers) as response:
                text = await _read_until(response, f'"version":{missed[1]}')
            assert text.index(f'"version":{missed[0]}') < text.index(f'"version":{missed[1]}')
            assert first not in text.split("event: change", 1)[1] and '"name":"b"' not in text

    asyncio.run(run())


def test_streams_past_the_limit_get_429_and_bad_names_422(redis_server: RedisProcess, tmp_path: Path) -> None:
    server = start_api(redis_server, tmp_path, SHAREDSTATE_API_TOKENS=TOKENS, SHAREDSTATE_API_MAX_STREAMS="2")
    wait_serving(server)

    async def run() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as client:
            bad = await client.get("/v1/events", params={"names": "ok,bad name"})
            assert bad.status_code == 422 and bad.json()["error"] == "invalid_name"
            streams = [client.stream("GET", "/v1/events") for _ in range(2)]
            for stream in streams:
                assert (await stream.__aenter__()).status_code == 200
            refused = await client.get("/v1/events")
            assert refused.status_code == 429 and refused.json()["error"] == "too_many_streams"
            admin = {"Authorization": f"Bearer {ADMIN}"}
            async with client.stream("GET", "/v1/events", headers=admin) as other:
                assert other.status_code == 200  # another token has its own count
            await streams[0].__aexit__(None, None, None)

            async def reopened() -> int:
                for _ in range(100):
                    async with client.stream("GET", "/v1/events") as response:
                        if response.status_code == 200:
                            return 200
                    await asyncio.sleep(0.1)
                return 429

            assert await reopened() == 200  # a closed stream frees its place
            await streams[1].__aexit__(None, None, None)

    try:
        asyncio.run(run())
    finally:
        server.process.terminate()
        server.process.wait(15)
