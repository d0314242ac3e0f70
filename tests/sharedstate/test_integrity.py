"""The integrity check on a real server: each kind of loss is found with its code, and writes
racing the check are never reported as problems (they would trigger a restore and a loud log)."""

from __future__ import annotations

import threading

import redis

from sharedstate import SharedStore
from sharedstate.integrity import check, relist


def _codes(store: SharedStore) -> list[tuple[str | None, str]]:
    return sorted((problem.name, problem.code) for problem in check(store))


def test_each_loss_is_found_with_its_code(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "integrity", "test", cache=False)
    for name in ("ok", "no-meta", "no-listing", "no-data"):
        store.put(name, {"n": 1})
    assert check(store) == []
    real_redis.delete(store.keys.meta("no-meta"))
    real_redis.srem(store.keys.names, "no-listing")
    real_redis.delete(store.keys.data("no-data"))
    assert _codes(store) == [
        ("no-data", "data_lost"),
        ("no-listing", "unlisted"),
        ("no-meta", "missing"),
        ("no-meta", "missing"),  # listed without meta, and data without meta
    ]
    assert relist(store, ["no-listing"]) == 1
    assert ("no-listing", "unlisted") not in _codes(store)


def test_documents_written_and_deleted_during_the_check_are_not_problems(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "integrity", "test", cache=False)
    store.put_all({f"steady{i}": {"i": i} for i in range(300)})
    stopping = threading.Event()
    made = [0]

    def churn() -> None:
        with SharedStore(real_redis, "integrity", "churn", cache=False) as writer:
            while not stopping.is_set():
                name = f"churn{made[0] % 40}"
                writer.put(name, {"n": made[0]})
                if made[0] % 2:
                    writer.delete(name)
                made[0] += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        found = [problem for _ in range(40) for problem in check(store)]
    finally:
        stopping.set()
        thread.join()
    assert made[0] > 100  # the writer really raced the checks
    assert found == []
