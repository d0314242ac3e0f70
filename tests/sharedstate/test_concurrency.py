"""Several processes on one document: no lost updates, no torn reads (real Redis)."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import redis

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess

PROCESSES = 4
INCREMENTS = 150


def _increment(url: str, worker: int, count: int) -> int:
    store = SharedStore.from_url(url, "race", f"worker-{worker}")
    try:
        for _ in range(count):
            store.update("counter", lambda data: {**data, "n": data.get("n", 0) + 1, f"w{worker}": 1})
        return count
    finally:
        store.close()


def test_processes_doing_update_lose_no_increment(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        done = pool.starmap(_increment, [(redis_server.url, i, INCREMENTS) for i in range(PROCESSES)])
    assert sum(done) == PROCESSES * INCREMENTS
    store = SharedStore(real_redis, "race")
    doc = store.get("counter")
    assert doc.data["n"] == PROCESSES * INCREMENTS
    history = store.history("counter", limit=PROCESSES * INCREMENTS)
    assert [change.version for change in history] == sorted({c.version for c in history}, reverse=True)
    assert {key for key in doc.data if key.startswith("w")} == {f"w{i}" for i in range(PROCESSES)}


def test_readers_never_see_half_a_write(redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    writer = SharedStore(redis_server.client(), "torn", "writer")
    reader = SharedStore(redis_server.client(), "torn", "reader")
    written = {writer.put("pair", {"a": 0, "b": 0, "c": 0}): 0}  # version -> value written with it
    stop = threading.Event()
    problems: list[Any] = []
    seen: list[Any] = []

    def read() -> None:
        last = 0
        while not stop.is_set():
            doc = reader.get("pair")
            values = {doc.data.get("a"), doc.data.get("b"), doc.data.get("c")}
            if len(values) != 1 or doc.version < last:
                problems.append(doc)
            seen.append(doc)
            last = doc.version

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for i in range(1, 400):
            if i % 2:
                written[writer.put("pair", {"a": i, "b": i, "c": i})] = i
            else:
                written[writer.merge("pair", {"a": i, "b": i, "c": i})] = i
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert seen and all(
        written[doc.version] == doc.data["a"] for doc in seen
    )  # data and version of one instant
    writer.redis.close()
    reader.redis.close()
