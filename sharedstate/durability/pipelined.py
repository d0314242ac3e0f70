"""Batches sent ahead of their answers, on one connection, from one thread.

A snapshot or restore makes one script call per batch of documents. Waiting for each answer
before preparing the next batch leaves Redis idle while Python works; preparing it in a second
thread makes the two fight over the GIL on every socket read and write. Here the next call is
sent before the previous answer is read, so Redis runs one batch while this thread prepares
(or handles) the next, and the answers come back in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from sharedstate._core import Call
from sharedstate.errors import translate_errors
from sharedstate.store import SharedStore

T = TypeVar("T")

DEPTH = 2  # calls sent beyond the one whose answer is awaited (2: snapshots measured ~15% faster than 1)


def pipelined(store: SharedStore, calls: Iterable[Call[T]], action: str, depth: int = DEPTH) -> Iterator[T]:
    """The parsed answers to ``calls``, in order, with ``depth`` calls sent ahead.

    Script calls go as EVAL with the script's source, so a Redis that lost its script cache
    needs no second try. Any error (Redis down, a refused call, an error raised by ``calls``
    itself or by the consumer) drops the connection, whose answers are out of step by then.
    Clients without a redis-py connection pool (cluster clients) get one call at a time.
    """
    pool = _pool_of(store.redis)
    if pool is None:
        for call in calls:
            yield store._run_many([call], action)[0]
        return
    with translate_errors(action):
        connection = pool.get_connection()
    sent: deque[Call[T]] = deque()
    done = False
    try:
        for call in calls:
            command = call.eval_command() if call.script is not None else call.command
            with translate_errors(action, call.writes):
                connection.send_packed_command(connection.pack_command(*command), check_health=False)
            sent.append(call)
            if len(sent) > depth:
                yield _answer(connection, sent.popleft(), action)
        while sent:
            yield _answer(connection, sent.popleft(), action)
        done = True
    finally:
        if not done:
            connection.disconnect()
        pool.release(connection)


def _pool_of(client: Any) -> Any:
    pool = getattr(client, "connection_pool", None)
    if pool is None or not hasattr(pool, "get_connection") or not hasattr(pool, "release"):
        return None
    return pool


def _answer(connection: Any, call: Call[T], action: str) -> T:
    with translate_errors(action, call.writes):
        raw = connection.read_response()
    return call.parse(raw)
