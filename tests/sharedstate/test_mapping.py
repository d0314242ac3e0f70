"""store.mapping(name): dict-like views whose item writes are single field writes."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import fakeredis
import pytest

from sharedstate import AsyncSharedStore, InvalidDocument, SharedStore
from sharedstate.redis_server import RedisProcess


@pytest.fixture(params=["fake", "real"])
def sync_store(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return SharedStore(fakeredis.FakeRedis(), "m", "bot")
    server: RedisProcess = request.getfixturevalue("redis_server")
    request.getfixturevalue("real_redis")
    return SharedStore(server.client(), "m", "bot")


def test_mapping_is_a_mutable_mapping_of_single_field_writes(sync_store: SharedStore) -> None:
    users = sync_store.mapping("user_data")
    assert isinstance(users, MutableMapping)
    assert len(users) == 0 and list(users) == [] and "42" not in users
    users["42"] = {"name": "Ada", "tags": {"a"}}
    first = sync_store.get("user_data").version
    users["7"] = {"name": "Bob"}
    assert sync_store.get("user_data").version > first
    assert users["42"] == {"name": "Ada", "tags": {"a"}}
    assert len(users) == 2 and sorted(users) == ["42", "7"] and "7" in users
    assert users.get("nope") is None and users.get("nope", 1) == 1
    assert dict(users) == {"42": {"name": "Ada", "tags": {"a"}}, "7": {"name": "Bob"}}
    del users["7"]
    with pytest.raises(KeyError):
        del users["7"]
    with pytest.raises(KeyError):
        users["7"]
    assert [c.op for c in sync_store.history("user_data")] == ["delete_field", "set_field", "set_field"]
    assert users.pop("42")["name"] == "Ada"
    assert users.to_dict() == {}


def test_nested_mutation_does_not_write_back(sync_store: SharedStore) -> None:
    users = sync_store.mapping("user_data")
    users["42"] = {"name": "Ada"}
    users["42"]["name"] = "changed locally"
    assert users["42"] == {"name": "Ada"}
    assert "does **not** write it back" in (type(users).__doc__ or "")


def test_mapping_refuses_bad_values_and_plain_value_documents(sync_store: SharedStore) -> None:
    users = sync_store.mapping("user_data")
    with pytest.raises(InvalidDocument, match=r"\$\.x"):
        users["x"] = object()
    assert len(users) == 0
    sync_store.put("plain", [1, 2])
    plain = sync_store.mapping("plain")
    for call in (lambda: len(plain), lambda: list(plain), lambda: plain["a"]):
        with pytest.raises(InvalidDocument, match="not an object"):
            call()
    with pytest.raises(InvalidDocument):
        sync_store.mapping("bad name")


@pytest.mark.parametrize("backend", ["fake", "real"])
def test_async_mapping(backend: str, request: pytest.FixtureRequest) -> None:
    async def scenario() -> None:
        if backend == "fake":
            client: Any = fakeredis.FakeAsyncRedis()
        else:
            server: RedisProcess = request.getfixturevalue("redis_server")
            request.getfixturevalue("real_redis")
            client = server.async_client()
        store = AsyncSharedStore(client, "m", "bot")
        users = store.mapping("user_data")
        assert await users.len() == 0
        assert await users.set("42", {"name": "Ada"}) == (await store.get("user_data")).version
        await users.update({"7": {"name": "Bob"}, "8": {"name": "Cy"}})
        assert await users.get("42") == {"name": "Ada"}
        assert await users.get("nope", "d") == "d"
        with pytest.raises(KeyError):
            await users.getitem("nope")
        assert await users.contains("7") and not await users.contains("nope")
        assert sorted(await users.keys()) == ["42", "7", "8"]
        assert sorted([key async for key in users]) == ["42", "7", "8"]
        assert dict(await users.items()) == await users.to_dict()
        assert len(await users.values()) == 3
        await users.delete("8")
        with pytest.raises(KeyError):
            await users.delete("8")
        assert await users.pop("7") == {"name": "Bob"}
        assert await users.pop("7", None) is None
        assert await users.len() == 1
        await client.aclose()

    asyncio.run(scenario())


def test_items_and_values_read_the_document_once(
    sync_store: SharedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = sync_store.mapping("many")
    sync_store.put("many", {str(i): {"n": i} for i in range(2000)})
    calls: list[Any] = []
    run = sync_store._run
    monkeypatch.setattr(sync_store, "_run", lambda call: calls.append(call) or run(call))
    assert sorted(int(k) for k, _ in users.items()) == list(range(2000))
    assert sorted(v["n"] for v in users.values()) == list(range(2000))
    assert len(calls) == 2  # one read each, not one per key
