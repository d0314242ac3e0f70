"""A running watch never steps silently over changes the feed no longer holds.

Redis losing the feed while a watch runs (flushed, evicted, restarted empty) or trimming
past a watcher that fell behind raises FeedTrimmed at the next read, as resuming from the
same position would, instead of carrying on with what came after: the API's streams, the
journal and ``sharedstate watch`` all rely on that to say there was a gap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sharedstate import AsyncSharedStore, FeedTrimmed, SharedStore, StoreUnavailable
from sharedstate.redis_server import RedisProcess


def _blocked_in_xread(raw: Any, deadline: float = 10.0) -> None:
    """Wait until some client of ``raw``'s server is blocked in XREAD."""
    until = time.monotonic() + deadline
    while not any(
        client.get("cmd") == "xread" and "b" in client.get("flags", "") for client in raw.client_list()
    ):
        assert time.monotonic() < until, "the watch never blocked in XREAD"
        time.sleep(0.01)


def _watching(make_store: Any) -> tuple[Any, Any, Any]:
    """A store, a sync writer on its namespace, and a watch of the store that read one change."""
    store = make_store()
    writer = make_store(namespace=store.namespace, sync=True)
    store.put("a", 1)
    changes = store.watch(timeout=10)
    store.put("a", 2)
    assert next(changes).name == "a"
    return store, writer, changes


def test_a_watch_reading_after_redis_lost_the_feed_raises_feed_trimmed(make_store: Any, raw: Any) -> None:
    store, writer, changes = _watching(make_store)
    position = store._core.last_feed_id
    raw.flushall()  # Redis lost everything; writes go on
    writer.put("b", 1)
    with pytest.raises(FeedTrimmed) as info:
        next(changes)
    assert info.value.after == position


def test_a_watch_blocked_when_redis_lost_the_feed_raises_feed_trimmed(make_store: Any, raw: Any) -> None:
    if make_store.backend == "fake":
        pytest.skip("needs a server that lists its blocked clients")
    _, writer, changes = _watching(make_store)

    def lose_then_write() -> None:
        _blocked_in_xread(raw)
        raw.flushall()  # the blocked XREAD is not woken by it: the next write wakes it
        writer.put("b", 1)

    thread = threading.Thread(target=lose_then_write)
    thread.start()
    try:
        with pytest.raises(FeedTrimmed, match="no longer holds"):
            next(changes)
    finally:
        thread.join(10)


def test_a_watch_that_fell_behind_the_trimming_raises_feed_trimmed(make_store: Any) -> None:
    store = make_store(feed_maxlen=10)
    changes = store.watch(timeout=5)
    store.put("a", 0)
    assert next(changes).fields == 0
    for i in range(1, 60):  # the watch reads none of these while they come and go
        store.put("a", i)
    with pytest.raises(FeedTrimmed):
        next(changes)


def test_a_watch_keeping_up_with_a_trimmed_feed_sees_every_change(make_store: Any) -> None:
    store = make_store(feed_maxlen=20)
    changes = store.watch(timeout=5)
    for i in range(150):  # each write trims the oldest entry; the watch is never that far back
        version = store.put("a", i)
        change = next(changes)
        assert (change.fields, change.version) == (i, version)


def _restart_empty_while_blocked(server: RedisProcess, namespace: str, iterate: Any) -> Any:
    """Run ``iterate`` (the watch's next step) in a thread; once it blocks in XREAD, restart
    Redis without its data and write from another client. What ``iterate`` returned or raised."""
    outcome: list[Any] = []

    def step() -> None:
        try:
            outcome.append(iterate())
        except BaseException as exc:  # handed to the caller's assertions
            outcome.append(exc)

    reader = threading.Thread(target=step)
    reader.start()
    with server.client() as admin:
        _blocked_in_xread(admin)
    server.restart(keep_data=False)
    with SharedStore(server.client(), namespace, "other") as other:
        other.put("b", 1)
        other.redis.close()
    reader.join(30)
    assert not reader.is_alive()
    return outcome[0]


def test_a_sync_watch_across_redis_restarting_empty_raises_feed_trimmed(tmp_path: Path) -> None:
    with RedisProcess(tmp_path / "redis") as server, SharedStore(server.client(), "ns", "bot") as store:
        store.put("a", 1)
        changes = store.watch(timeout=20)
        store.put("a", 2)
        assert next(changes).name == "a"
        outcome = _restart_empty_while_blocked(server, "ns", lambda: next(changes))
        if isinstance(outcome, StoreUnavailable):  # Redis was away longer than the client retries
            with pytest.raises(FeedTrimmed):
                next(store.watch(timeout=5, after=changes.position))
        else:
            assert isinstance(outcome, FeedTrimmed), outcome
        store.redis.close()


def test_an_async_watch_across_redis_restarting_empty_raises_feed_trimmed(tmp_path: Path) -> None:
    with RedisProcess(tmp_path / "redis") as server:
        loop = asyncio.new_event_loop()
        store = AsyncSharedStore(server.async_client(), "ns", "bot")
        try:
            loop.run_until_complete(store.put("a", 1))
            changes = store.watch(timeout=20)
            loop.run_until_complete(store.put("a", 2))
            assert loop.run_until_complete(changes.__anext__()).name == "a"
            outcome = _restart_empty_while_blocked(
                server, "ns", lambda: loop.run_until_complete(changes.__anext__())
            )
            if isinstance(outcome, StoreUnavailable):
                resumed = store.watch(timeout=5, after=changes.position)
                with pytest.raises(FeedTrimmed):
                    loop.run_until_complete(resumed.__anext__())
            else:
                assert isinstance(outcome, FeedTrimmed), outcome
        finally:
            loop.run_until_complete(store.close())
            loop.run_until_complete(store.redis.aclose())
            loop.close()
