"""Auto-pipelining for the asyncio client: the commands issued in one event-loop turn share
one round trip.

A hundred tasks each awaiting a ``get`` would otherwise make a hundred round trips, each
with redis-py's full per-command cost. Here the first command of a loop turn schedules a
send for the next turn, every command issued before then joins it, and they go to Redis as
one pipeline (not a transaction: each command stays atomic on its own, in the order issued).
Each caller gets its own answer or its own error; a failed round trip fails every command
in it, as it would have failed each of them alone. A command is sent even if its caller is
cancelled after issuing it, as a command already written to the socket would be.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio

MAX_BATCH = 1000  # commands per pipeline; more in one loop turn go in several


class AutoPipeline:
    """``await pipeline.execute(command)``: the raw answer, sent with the others of its turn."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, command: tuple[Any, ...]) -> Any:
        """Send ``command`` with the others issued in this loop turn; its raw answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        future.add_done_callback(_retrieve)
        if not self._pending:
            loop.call_soon(self._send)
        self._pending.append((command, future))
        if len(self._pending) >= MAX_BATCH:
            self._send()
        return await future  # each caller has a future of its own: cancelling one cancels no other

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return  # sent already, being full
        task = asyncio.ensure_future(self._round_trip(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sending.discard)

    async def _round_trip(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                answers: list[Any] = [await self._client.execute_command(*batch[0][0])]
            else:
                pipe = self._client.pipeline(transaction=False)
                for command, _ in batch:
                    pipe.execute_command(*command)
                answers = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the round trip failed (or the one command was refused)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled: the loop is closing
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an error as seen: when its caller went away, asyncio would log it as never retrieved."""
    if not future.cancelled():
        future.exception()
