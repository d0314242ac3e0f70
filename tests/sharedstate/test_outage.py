"""Redis down, frozen, and back: stale reads, fast StoreUnavailable, reconnection (real Redis)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sharedstate import AsyncSharedStore, SharedStore, StoreUnavailable
from sharedstate.redis_server import RedisProcess
from tests.sharedstate.facade import LoopThread, SyncFacade


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest, own_redis: RedisProcess) -> Iterator[Callable[..., Any]]:
    """``connect(**options)``: a from_url store (sync, or async behind the facade) on own_redis."""
    loop = LoopThread() if request.param == "async" else None
    made: list[Any] = []

    def make(**options: Any) -> Any:
        if loop is None:
            store: Any = SharedStore.from_url(own_redis.url, "ns", "bot", **options)
        else:
            store = SyncFacade(AsyncSharedStore.from_url(own_redis.url, "ns", "bot", **options), loop)
        made.append(store)
        return store

    yield make
    own_redis.resume()
    for store in made:
        store.close()
    if loop is not None:
        loop.stop()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.monotonic()
    try:
        result: Any = fn()
    except Exception as exc:
        result = exc
    return time.monotonic() - start, result


def test_redis_down_serves_known_documents_stale_and_refuses_the_rest(
    connect: Callable[..., Any], own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    store = connect(timeout=2.0)
    store.put("config", {"a": 1, "s": {1, 2}})
    store.merge("written", {"x": 1})  # only written, never read whole: no full copy known
    read_version = store.get("config").version
    store.put("gone", 1)
    store.delete("gone")
    own_redis.kill()

    with caplog.at_level(logging.WARNING, logger="sharedstate"):
        doc = store.get("config")
    assert doc.stale is True
    assert (doc.data, doc.version) == ({"a": 1, "s": {1, 2}}, read_version)
    assert any("last known copy" in r.getMessage() and "config" in r.getMessage() for r in caplog.records)
    doc.data["a"] = 99  # mutating a stale copy must not change the next one
    assert store.get("config").data == {"a": 1, "s": {1, 2}}
    assert store.load("config") == {"a": 1, "s": {1, 2}}
    assert store.get_field("config", "a") == 1
    assert store.load("gone", "default") == "default"

    for call in (
        lambda: store.get("never-seen"),
        lambda: store.get("written"),
        lambda: store.put("config", {"a": 2}),
        lambda: store.merge("config", {"b": 1}),
        lambda: store.delete("config"),
        lambda: store.names(),
        lambda: store.history("config"),
        lambda: store.update("config", lambda d: d),
        lambda: list(store.watch(timeout=1)),
    ):
        elapsed, result = timed(call)
        assert isinstance(result, StoreUnavailable), result
        assert elapsed < 2.0
        assert "redis://" not in str(result)
    elapsed, result = timed(lambda: store.put("config", {"a": 2}))
    assert "may or may not have been applied" in str(result)

    own_redis.restart(keep_data=False)
    # the first call after Redis is back succeeds: the client reconnects by itself
    assert store.put("config", {"a": 3}) >= 1
    assert store.get("config").stale is False


def test_frozen_redis_fails_fast_within_the_configured_timeout(
    connect: Callable[..., Any], own_redis: RedisProcess
) -> None:
    store = connect(timeout=2.0)
    store.put("config", {"a": 1})
    store.get("config")
    own_redis.pause()
    elapsed, result = timed(lambda: store.put("config", {"a": 2}))
    assert isinstance(result, StoreUnavailable)
    assert elapsed < 2.5
    elapsed, result = timed(lambda: store.get("other"))
    assert isinstance(result, StoreUnavailable)
    assert elapsed < 2.5
    elapsed, doc = timed(lambda: store.get("config"))
    assert doc.stale is True and elapsed < 2.5
    own_redis.resume()
    assert store.get("config").stale is False


def test_frozen_redis_fails_within_10_seconds_by_default(own_redis: RedisProcess) -> None:
    store = SharedStore.from_url(own_redis.url, "ns")
    try:
        store.put("x", 1)
        own_redis.pause()
        elapsed, result = timed(lambda: store.get("y"))
        assert isinstance(result, StoreUnavailable)
        assert elapsed < 10.0
    finally:
        own_redis.resume()
        store.close()


def test_stale_reads_can_be_turned_off(connect: Callable[..., Any], own_redis: RedisProcess) -> None:
    store = connect(timeout=2.0, stale_reads=False)
    store.put("config", {"a": 1})
    store.get("config")
    own_redis.kill()
    with pytest.raises(StoreUnavailable):
        store.get("config")


def test_writes_update_the_known_copy_when_they_follow_it(
    connect: Callable[..., Any], own_redis: RedisProcess
) -> None:
    store = connect(timeout=2.0)
    other = connect(timeout=2.0)
    store.put("doc", {"a": 1})
    store.merge("doc", {"b": 2})
    store.set_field("doc", "c", 3)
    last = store.delete_field("doc", "a")
    assert store.load("moved") is None  # known: absent
    other.put("moved", {"by": "other"})
    store.set_field("moved", "mine", 1)  # the copy (absent) is older than what this wrote over
    own_redis.kill()
    doc = store.get("doc")
    assert (doc.stale, doc.data, doc.version) == (True, {"b": 2, "c": 3}, last)
    # never a copy claiming a version whose data it lacks
    assert store.load("moved", "absent") == "absent"


def test_redis_restarted_empty_is_not_served_stale(
    connect: Callable[..., Any], own_redis: RedisProcess
) -> None:
    store = connect(timeout=2.0)
    store.put("config", {"a": 1})
    own_redis.restart(keep_data=False)
    assert store.load("config") is None  # Redis answers: its answer wins over the copy


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_plain_client_with_redis_py_defaults_is_bounded_too(own_redis: RedisProcess, flavour: str) -> None:
    """redis-py 8 defaults (5 s per try, 10 retries) would take a minute against a frozen Redis."""
    import redis
    import redis.asyncio

    if flavour == "sync":
        client: Any = redis.Redis(port=own_redis.port)
        store: Any = SharedStore(client, "ns", timeout=2.0)
    else:
        loop = LoopThread()
        client = redis.asyncio.Redis(port=own_redis.port)
        store = SyncFacade(AsyncSharedStore(client, "ns", timeout=2.0), loop)
    try:
        store.put("x", 1)
        assert client.connection_pool.connection_kwargs.get("socket_timeout") == 5  # the caller's, untouched
        own_redis.pause()
        elapsed, result = timed(lambda: store.get("y"))
        assert isinstance(result, StoreUnavailable) and elapsed < 2.5
    finally:
        own_redis.resume()
        store.close()
        if flavour == "sync":
            client.close()
        else:
            loop.run(client.aclose())
            loop.stop()


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_errors_and_logs_never_name_the_servers_address(
    flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On a PaaS the address is an internal name; errors reach API clients and shared logs."""
    from sharedstate.redis_server import free_port

    port = free_port()  # nothing listens there: connection refused, whose message names host:port
    url = f"redis://:hunter2@localhost:{port}/0"
    loop = LoopThread() if flavour == "async" else None
    store: Any = (
        SharedStore.from_url(url, "ns", "bot", timeout=1.0)
        if loop is None
        else SyncFacade(AsyncSharedStore.from_url(url, "ns", "bot", timeout=1.0), loop)
    )
    try:
        with caplog.at_level(logging.DEBUG, logger="sharedstate"):
            errors = []
            for call in (lambda: store.get("a"), lambda: store.put("a", 1), lambda: store.names()):
                with pytest.raises(StoreUnavailable) as info:
                    call()
                errors.append(str(info.value))
        assert all("<redis>" in message for message in errors), errors  # what failed is still said
        text = "\n".join(errors + [record.getMessage() for record in caplog.records])
        assert str(port) not in text and "localhost" not in text and "hunter2" not in text
    finally:
        store.close()
        if loop is not None:
            loop.stop()
