"""The public methods the services are built on: get_many, get_if_changed, replace, put_all,
keys and from_settings, on every backend and both clients."""

from __future__ import annotations

from typing import Any

import pytest

from sharedstate import AsyncSharedStore, DocumentNotFound, InvalidDocument, SharedStore, Written
from sharedstate.redis_server import RedisProcess
from sharedstate.settings import Settings


def test_get_many_reads_each_as_now_and_none_for_absent(store: Any) -> None:
    store.put("a", {"x": 1})
    store.put("b", [1, 2])
    docs = store.get_many(["b", "missing", "a"])
    assert [doc and (doc.name, doc.data) for doc in docs] == [("b", [1, 2]), None, ("a", {"x": 1})]
    assert store.get_many([]) == []
    with pytest.raises(InvalidDocument):
        store.get_many(["ok", "bad name"])


def test_get_if_changed(store: Any) -> None:
    version = store.put("a", {"x": 1})
    assert store.get_if_changed("a", version) is None  # still at that version: no data
    newer = store.set_field("a", "x", 2)
    doc = store.get_if_changed("a", version)
    assert (doc.version, doc.data) == (newer, {"x": 2})
    assert store.get_if_changed("a", -1).version == newer
    store.delete("a")
    with pytest.raises(DocumentNotFound):
        store.get_if_changed("a", newer)


def test_replace_says_what_it_replaced(store: Any) -> None:
    first = store.replace("a", {"x": 1})
    assert isinstance(first, Written) and first.previous == 0 and first.version >= 1
    second = store.replace("a", {"x": 2}, expected_version=first.version)
    assert second.previous == first.version and second.version > first.version
    assert store.get("a").version == second.version


def test_put_all_is_all_or_nothing(store: Any) -> None:
    store.put("kept", {"v": "before"})
    with pytest.raises(InvalidDocument) as caught:
        store.put_all({"kept": {"v": "after"}, "bad": {"when": object()}, "bad name": 1})
    assert "bad" in str(caught.value) and "bad name" in str(caught.value)  # every problem named
    assert store.load("kept") == {"v": "before"} and store.names() == ["kept"]  # nothing written
    versions = store.put_all({"kept": {"v": "after"}, "new": [1]})
    assert set(versions) == {"kept", "new"}
    assert {name: store.get(name).version for name in versions} == versions
    assert store.load("kept") == {"v": "after"}


def test_keys_are_the_namespace_s(store: Any) -> None:
    keys = store.keys
    assert keys.namespace == store.namespace
    assert keys.data("a").startswith(f"ss:{{{store.namespace}}}:")
    assert len({keys.workers, keys.schedule, keys.catalogue, keys.integrity, keys.runs("x")}) == 5


@pytest.mark.parametrize("client", [SharedStore, AsyncSharedStore])
def test_from_settings(
    client: type[SharedStore] | type[AsyncSharedStore], redis_server: RedisProcess, real_redis: Any
) -> None:
    settings = Settings.load(redis_url=redis_server.url, namespace="configured", max_document_bytes=1000)
    store = client.from_settings(settings, client_name="worker")
    assert store.namespace == "configured"
    if isinstance(store, SharedStore):
        with store:
            store.put("a", {"x": 1})
            assert store.get("a").updated_by == "worker"
            with pytest.raises(InvalidDocument):
                store.put("big", {"x": "y" * 2000})  # the settings' limit
    else:
        import asyncio

        async def use() -> None:
            async with store:
                await store.put("a", {"x": 1})
                assert (await store.get("a")).updated_by == "worker"

        asyncio.run(use())
