"""pipelined(): answers in order with calls sent ahead; any failure leaves no answer out of step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from sharedstate import SharedStore, StoreUnavailable
from sharedstate._core import Call
from sharedstate.durability import batch
from sharedstate.durability import pipelined as pipelined_module
from sharedstate.durability.format import Record
from sharedstate.durability.pipelined import pipelined
from sharedstate.errors import SharedStateError
from sharedstate.redis_server import RedisProcess


def _fill(store: SharedStore, count: int) -> list[str]:
    names = [f"d{i:04d}" for i in range(count)]
    store._run_many([store._core.put(name, {"i": i}, None) for i, name in enumerate(names)], "fill")
    return names


def _dumps(store: SharedStore, names: list[str], size: int) -> Iterator[Call[list[Record | None]]]:
    for start in range(0, len(names), size):
        yield batch.dump(store._core, names[start : start + size])


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_answers_come_back_in_order(real_redis: redis.Redis, depth: int) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    names = _fill(store, 250)
    answers = list(pipelined(store, _dumps(store, names, 7), "read", depth=depth))
    records = [record for answer in answers for record in answer]
    assert [(r.name, r.data) for r in records if r] == [(name, {"i": i}) for i, name in enumerate(names)]


def test_works_after_redis_forgot_its_scripts(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    names = _fill(store, 10)
    real_redis.script_flush()
    assert len(list(pipelined(store, _dumps(store, names, 3), "read"))) == 4


def _next_command_is_answered_right(store: SharedStore, real_redis: redis.Redis) -> None:
    # The pool hands the same connection out again: an answer left unread would answer this.
    assert store.get("d0001").data == {"i": 1}
    assert real_redis.ping() is True


def test_a_consumer_that_stops_early_leaves_no_answer_behind(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    names = _fill(store, 50)
    answers = pipelined(store, _dumps(store, names, 5), "read", depth=2)
    assert next(answers)[0] is not None  # two more calls are in flight
    answers.close()
    _next_command_is_answered_right(store, real_redis)


def test_an_error_in_the_calls_leaves_no_answer_behind(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    names = _fill(store, 50)

    def calls() -> Iterator[Call[Any]]:
        yield from _dumps(store, names[:20], 5)
        raise ValueError("the snapshot broke")

    seen = []
    with pytest.raises(ValueError, match="the snapshot broke"):
        for answer in pipelined(store, calls(), "read", depth=1):
            seen.append(answer)
    assert len(seen) == 3  # the fourth was in flight when the calls failed
    _next_command_is_answered_right(store, real_redis)


def test_a_refused_call_raises_and_leaves_no_answer_behind(real_redis: redis.Redis) -> None:
    store = SharedStore(real_redis, "bot", "bot")
    names = _fill(store, 20)
    real_redis.set(store.keys.meta("d0003"), "not a hash")  # HMGET in dump.lua fails on it

    with pytest.raises(SharedStateError, match="WRONGTYPE"):
        list(pipelined(store, _dumps(store, names, 2), "read"))
    real_redis.delete(store.keys.meta("d0003"))
    assert store.get("d0001").data == {"i": 1}


def test_redis_down_is_store_unavailable(tmp_path: Any) -> None:
    with RedisProcess(tmp_path / "redis") as server:
        store = SharedStore.from_url(server.url, "bot", "bot", timeout=2)
        names = _fill(store, 5)
    with pytest.raises(StoreUnavailable):
        list(pipelined(store, _dumps(store, names, 2), "read"))


@pytest.mark.parametrize("pool", [True, False])
def test_fakeredis_and_clients_without_a_pool_get_the_same_answers(
    monkeypatch: pytest.MonkeyPatch, pool: bool
) -> None:
    store = SharedStore(fakeredis.FakeRedis(), "bot", "bot")
    if not pool:  # as a cluster client: one call at a time through the store
        monkeypatch.setattr(pipelined_module, "_pool_of", lambda client: None)
    names = _fill(store, 12)
    answers = list(pipelined(store, _dumps(store, names, 5), "read"))
    assert [len(answer) for answer in answers] == [5, 5, 2]
    assert answers[2][1] is not None and answers[2][1].data == {"i": 11}
