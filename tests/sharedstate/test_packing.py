"""hiredis packing for the store's own asyncio pools: the same bytes redis-py sends, its errors,
and only on pools the store made."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.connection import Connection, SSLConnection

from sharedstate import AsyncSharedStore, SharedStore
from sharedstate._packing import with_hiredis_packing
from sharedstate.redis_server import RedisProcess

COMMANDS: list[tuple[Any, ...]] = [
    ("EVALSHA", "0" * 40, 2, "ss:{ns}:d:a", b"ss:{ns}:m:a", "doc", "é", 1.5, 0.1, -3, 2**70),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"bot"),
    ("SET", "k", bytearray(b"v")),
    ("SET", "k", memoryview(b"a view")),
    ("SET", "big", b"x" * 100_000),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_same_bytes_as_redis_py(command: tuple[Any, ...]) -> None:
    plain, packing = Connection(), with_hiredis_packing(Connection)()
    assert b"".join(packing.pack_command(*command)) == b"".join(plain.pack_command(*command))


def test_what_hiredis_refuses_gets_redis_pys_error() -> None:
    packing = with_hiredis_packing(Connection)()
    for bad in (True, None, object()):
        with pytest.raises(redis.exceptions.DataError):
            packing.pack_command("SET", "k", bad)


def test_another_encoding_is_redis_pys_to_apply() -> None:
    plain, packing = Connection(encoding="latin-1"), with_hiredis_packing(Connection)(encoding="latin-1")
    assert packing.pack_command("SET", "k", "é") == plain.pack_command("SET", "k", "é")
    assert b"\xe9" in b"".join(packing.pack_command("SET", "k", "é"))


def test_only_asyncio_connection_classes_change() -> None:
    assert with_hiredis_packing(redis.connection.Connection) is redis.connection.Connection
    made = with_hiredis_packing(SSLConnection)
    assert issubclass(made, SSLConnection) and with_hiredis_packing(made) is made
    assert with_hiredis_packing(SSLConnection) is made  # one class per original


def test_which_pools_pack_with_hiredis(redis_server: RedisProcess) -> None:
    async def main() -> None:
        own = AsyncSharedStore.from_url(redis_server.url, "pack", "bot")
        given = redis_server.async_client()  # timeouts within the store's budget: kept as given
        kept = AsyncSharedStore(given, "pack", "bot")
        cloned = AsyncSharedStore(redis.asyncio.Redis(port=redis_server.port), "pack", "bot")  # no timeouts
        assert own.redis.connection_pool.connection_class.__name__ == "HiredisConnection"
        assert kept.redis is given and given.connection_pool.connection_class is Connection
        assert cloned.redis.connection_pool.connection_class.__name__ == "HiredisConnection"
        for store in (own, kept, cloned):
            await store.redis.aclose()
        await given.aclose()

    asyncio.run(main())
    assert SharedStore.from_url(redis_server.url, "pack").redis.connection_pool.connection_class is (
        redis.connection.Connection
    )


def test_a_store_works_through_it(redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    async def main() -> None:
        store = AsyncSharedStore.from_url(redis_server.url, "pack", "bot")
        changes = store.watch(timeout=5)
        await asyncio.gather(store.put("a", {"x": {1, 2}, "s": "é" * 1000}), store.set_field("b", "n", 2**70))
        assert (await store.get("a")).data == {"x": {1, 2}, "s": "é" * 1000}
        assert (await store.get("b")).data == {"n": 2**70}
        assert await store.names() == ["a", "b"]
        assert sorted([(await changes.__anext__()).name, (await changes.__anext__()).name]) == ["a", "b"]
        await store.redis.aclose()

    asyncio.run(main())
