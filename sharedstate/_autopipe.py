"""Auto-pipelining for the asyncio client: the commands issued in one event-loop turn share
one round trip.

A hundred tasks each awaiting a ``get`` would otherwise make a hundred round trips, each
with redis-py's full per-command cost. Here the first command of a loop turn schedules a
send for the next turn, every command issued before then joins it, and they go to Redis as
one pipeline (not a transaction: each command stays atomic on its own, in the order issued).
A command is sent even if its caller is cancelled after issuing it, as a command already
written to the socket would be.

**Each command gets its own outcome.** The answers are read one by one from the connection
and handed to their callers as they arrive, so one slow command never holds up or fails the
answers before it. A command whose answer does not come within the time budget fails on its
own (for a write: outcome unknown) and is never sent again; only commands that were never
answered because the connection broke are sent again, on a new connection (re-sending is
safe: the write script remembers each write's id and applies it once). Redis sends the answers
of one pipeline together, so a large command (a big write, which takes long) goes in a round
trip of its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio
import redis.exceptions

MAX_BATCH = 1000  # commands per pipeline; more in one loop turn go in several
ALONE_BYTES = 256 * 1024  # a command larger than this gets a round trip of its own
RESENDS = 2  # times unanswered commands are sent again after a broken connection
RESEND_PAUSE = 0.05  # seconds before sending again (doubled each time)

_Entry = tuple[tuple[Any, ...], "asyncio.Future[Any]"]


class _Broken(Exception):
    """The connection broke with ``remaining`` commands unanswered."""

    def __init__(self, cause: BaseException, remaining: list[_Entry]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.remaining = remaining


class AutoPipeline:
    """``await pipeline.execute(command)``: the raw answer, sent with the others of its turn.

    ``budget``: seconds a command's answer may take (None: as long as it takes).
    """

    def __init__(self, client: redis.asyncio.Redis, budget: float | None = None) -> None:
        self._client = client
        self._budget = budget
        self._pending: list[_Entry] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def execute(self, command: tuple[Any, ...]) -> Any:
        """Send ``command`` with the others issued in this loop turn; its raw answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        future.add_done_callback(_retrieve)
        if _weight(command) > ALONE_BYTES:  # a big write takes long: it goes alone, delaying no other
            self._start([(command, future)])
            return await future
        if not self._pending:
            loop.call_soon(self._send)
        self._pending.append((command, future))
        if len(self._pending) >= MAX_BATCH:
            self._send()
        return await future  # each caller has a future of its own: cancelling one cancels no other

    def _send(self) -> None:
        batch, self._pending = self._pending, []
        if batch:  # else sent already, being full
            self._start(batch)

    def _start(self, batch: list[_Entry]) -> None:
        task = asyncio.ensure_future(self._round_trip(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sending.discard)

    async def _round_trip(self, batch: list[_Entry]) -> None:
        pool = getattr(self._client, "connection_pool", None)
        if pool is None or not hasattr(pool, "get_connection"):  # a cluster client: its own pipeline
            await self._via_pipeline(batch)
            return
        pause = RESEND_PAUSE
        remaining = batch
        try:
            for attempt in range(RESENDS + 1):
                try:
                    await self._exchange(pool, remaining)
                    return
                except _Broken as broken:
                    remaining = broken.remaining
                    if attempt == RESENDS or isinstance(broken.cause, redis.exceptions.TimeoutError):
                        _fail(remaining, broken.cause)
                        return
                await asyncio.sleep(pause)
                pause *= 2
        except BaseException:  # cancelled: the loop is closing
            for _, future in remaining:
                future.cancel()
            raise

    async def _exchange(self, pool: Any, batch: list[_Entry]) -> None:
        """Send ``batch`` on one connection and hand each answer to its caller as it arrives;
        _Broken with the unanswered rest if the connection fails or an answer is too late."""
        try:
            connection = await pool.get_connection()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            raise _Broken(exc, batch) from exc
        healthy = False
        try:
            try:
                await connection.send_packed_command(connection.pack_commands([c for c, _ in batch]))
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                raise _Broken(exc, batch) from exc
            answered = 0
            try:
                async with asyncio.timeout(self._budget):  # one timer for the batch, not one per answer
                    for command, future in batch:
                        error: redis.exceptions.ResponseError | None = None
                        try:
                            raw = await connection.read_response(timeout=_FOREVER)
                        except redis.exceptions.ResponseError as exc:  # this command's own error reply
                            raw, error = None, exc
                        answered += 1
                        if future.done():
                            continue
                        if error is not None:
                            future.set_exception(error)
                            continue
                        try:
                            future.set_result(self._parsed(command, raw))
                        except Exception as exc:  # a response callback refused the answer
                            future.set_exception(exc)
            except TimeoutError as exc:
                late = redis.exceptions.TimeoutError(f"no answer within {self._budget} s")
                raise _Broken(late, batch[answered:]) from exc
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                raise _Broken(exc, batch[answered:]) from exc
            healthy = True
        finally:
            if not healthy:
                await connection.disconnect(nowait=True)  # out of step with its answers by now
            await pool.release(connection)

    def _parsed(self, command: tuple[Any, ...], raw: Any) -> Any:
        """What ``execute_command`` would answer: the raw reply through redis-py's callback."""
        name = command[0].decode() if isinstance(command[0], bytes) else str(command[0])
        callback = self._client.response_callbacks.get(name.upper())
        return callback(raw) if callback is not None else raw

    async def _via_pipeline(self, batch: list[_Entry]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for command, _ in batch:
                pipe.execute_command(*command)
            answers = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the round trip failed
            _fail(batch, exc)
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


def _weight(command: tuple[Any, ...]) -> int:
    return sum(len(part) for part in command if isinstance(part, bytes | str))


_FOREVER = float("inf")  # read_response's "no socket timeout": the budget above bounds the wait


def _fail(entries: list[_Entry], exc: BaseException) -> None:
    for _, future in entries:
        if not future.done():
            future.set_exception(exc)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an error as seen: when its caller went away, asyncio would log it as never retrieved."""
    if not future.cancelled():
        future.exception()
