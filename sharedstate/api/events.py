"""One change-feed reader per API process, fanned out to every live stream (``/v1/events``).

A stream costs a bounded queue, not a Redis connection: however many are open, the API holds
one blocking read of the feed. The reader keeps the last ``RECENT`` changes, so a stream that
resumes from a position it still holds (``Last-Event-ID`` after a reconnect) is served from
memory; one resuming from further back reads the feed once, a few at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from sharedstate import AsyncSharedStore, Change, FeedTrimmed, SharedStateError
from sharedstate.durability import state

log = logging.getLogger("sharedstate.api")

RECENT = 1000  # changes kept for resuming streams
QUEUE = 1000  # changes a stream may be behind before it is ended (it resumes with Last-Event-ID)
CATCH_UPS = 4  # streams reading the feed from further back at once (each holds a connection)


def _key(position: str) -> tuple[int, int]:
    ms, _, seq = position.partition("-")
    return int(ms), int(seq or 0)


class TooManyStreams(Exception):
    """The token already has the streams it may open."""


@dataclass(frozen=True, slots=True)
class Ended:
    """The stream must end: ``error`` and ``detail`` go to the client as an ``error`` event."""

    error: str
    detail: str


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Read the feed up to ``until`` first: the reader fans out only what comes after it."""

    until: str


@dataclass(frozen=True, slots=True)
class Stopping:
    """The server is stopping: the stream ends without an error (its client resumes with
    Last-Event-ID from another process, or from this one once it is back)."""


@dataclass(eq=False)
class Subscription:
    """One stream's place: the changes it wants, queued for it, after ``position``."""

    names: frozenset[str] | None
    token: str
    position: str
    queue: asyncio.Queue[Change | Ended | CatchUp | Stopping] = field(
        default_factory=lambda: asyncio.Queue(QUEUE + 2)
    )

    def wants(self, change: Change) -> bool:
        return self.names is None or change.name in self.names

    def offer(self, item: Change | Ended) -> bool:
        """Queue ``item``; False when the stream fell too far behind (it is then ended)."""
        if isinstance(item, Change) and not self.wants(item):
            return True
        if self.queue.qsize() >= QUEUE and not isinstance(item, Ended):
            self.queue.put_nowait(Ended("too_slow", "the stream fell behind; reconnect with Last-Event-ID"))
            return False
        self.queue.put_nowait(item)
        return True


class ChangeHub:
    """The process's feed reader and its subscriptions."""

    def __init__(self, store: AsyncSharedStore, per_token: int) -> None:
        self.store = store
        self.per_token = per_token
        self._subscriptions: set[Subscription] = set()
        self._per_token: Counter[str] = Counter()
        self._recent: deque[Change] = deque(maxlen=RECENT)
        self._position = "0-0"  # the reader's: every change up to here was fanned out
        self._covered_from = "0-0"  # every change after this one, up to the reader's, is in _recent
        self._starting: asyncio.Future[str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._catch_ups = asyncio.Semaphore(CATCH_UPS)
        self._closed = False

    @property
    def streams(self) -> int:
        """Open streams."""
        return len(self._subscriptions)

    async def subscribe(self, names: Iterable[str] | None, token: str, after: str | None) -> Subscription:
        """A subscription to changes after ``after`` (None: from now); TooManyStreams past the limit."""
        if self._per_token[token] >= self.per_token:
            raise TooManyStreams(
                f"this token has {self._per_token[token]} open streams, the most it may have"
            )
        self._per_token[token] += 1
        try:
            position = await self._started()
        except BaseException:
            self._release(token)
            raise
        wanted = frozenset(names) if names is not None else None
        subscription = Subscription(wanted, token, after or position)
        self._subscriptions.add(subscription)
        if after is not None and _key(after) < _key(position):
            if _key(after) >= _key(self._covered_from):
                for change in self._recent:  # resumed from memory, in this loop turn: nothing slips by
                    if _key(change.id) > _key(after):
                        subscription.offer(change)
            else:
                subscription.queue.put_nowait(CatchUp(position))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a stream (it ended or its client went away)."""
        if subscription in self._subscriptions:
            self._subscriptions.discard(subscription)
            self._release(subscription.token)

    def _release(self, token: str) -> None:
        self._per_token[token] -= 1
        if self._per_token[token] <= 0:
            del self._per_token[token]

    async def changes(self, subscription: Subscription, heartbeat: float) -> AsyncIterator[Change | None]:
        """The subscription's changes in feed order, and None after each ``heartbeat`` idle seconds.
        StreamEnded when the stream must end (FeedTrimmed when a catch-up read finds a gap)."""
        while True:
            try:
                item = await asyncio.wait_for(subscription.queue.get(), heartbeat)
            except TimeoutError:
                yield None
                continue
            if isinstance(item, CatchUp):
                async for change in self._catch_up(subscription, item.until):
                    yield change
                continue
            if isinstance(item, Ended):
                raise StreamEnded(item)
            if isinstance(item, Stopping):
                return
            if _key(item.id) > _key(subscription.position):
                subscription.position = item.id
                yield item

    async def _catch_up(self, subscription: Subscription, until: str) -> AsyncIterator[Change]:
        """Read the feed from the subscription's position up to where the reader started fanning
        out to it (later changes are in its queue)."""
        async with self._catch_ups:
            # every name, filtered here: the watch's idle timeout then counts only a quiet feed
            async for change in self.store.watch(None, timeout=0.2, after=subscription.position):
                if _key(change.id) > _key(until):
                    break
                subscription.position = change.id
                if subscription.wants(change):
                    yield change

    async def _started(self) -> str:
        """The reader's position, starting the reader at the feed's end if it is not running."""
        if self._reader is None:
            if self._starting is None:
                self._starting = asyncio.ensure_future(state.feed_position_of(self.store))
            try:
                position = await asyncio.shield(self._starting)
            except SharedStateError:
                self._starting = None  # the next stream tries again
                raise
            if self._reader is None:
                self._position = self._covered_from = position
                self._reader = asyncio.ensure_future(self._read())
        return self._position

    async def _read(self) -> None:
        delay = 0.5
        while not self._closed:
            try:
                async for change in self.store.watch(None, timeout=1.0, after=self._position):
                    self._position = change.id
                    if len(self._recent) == RECENT:
                        self._covered_from = self._recent[0].id
                    self._recent.append(change)
                    for subscription in list(self._subscriptions):
                        if not subscription.offer(change):
                            self.unsubscribe(subscription)
                    delay = 0.5
            except FeedTrimmed as exc:
                # Redis lost the feed (or trimmed past us): no stream can say what it missed
                log.warning("the change feed was lost or trimmed past the API's reader; streams restart")
                self._broadcast(Ended("feed_trimmed", str(exc)))
                self._recent.clear()
                self._position = self._covered_from = await self._tail()
            except SharedStateError as exc:
                log.warning(
                    "reading the change feed failed (%s); retrying in %.1f s", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                log.exception("the change feed reader failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _tail(self) -> str:
        while True:
            try:
                return await state.feed_position_of(self.store)
            except SharedStateError:
                await asyncio.sleep(1.0)

    def _broadcast(self, item: Ended) -> None:
        for subscription in list(self._subscriptions):
            subscription.offer(item)
            self.unsubscribe(subscription)

    def end_streams(self) -> None:
        """End every open stream now, without an error event: the server is stopping, and its
        graceful shutdown waits for open responses (a stream never ends by itself)."""
        for subscription in list(self._subscriptions):
            with contextlib.suppress(asyncio.QueueFull):  # a full queue holds its "too_slow" end
                subscription.queue.put_nowait(Stopping())

    async def close(self) -> None:
        """Stop the reader."""
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            # a cancel that lands as a read times out can be lost (asyncio.timeout in 3.11): the
            # reader also stops at its next idle second
            await asyncio.wait({self._reader}, timeout=5)


class StreamEnded(Exception):
    """Raised by ``ChangeHub.changes`` when the stream must end."""

    def __init__(self, ended: Ended) -> None:
        super().__init__(ended.detail)
        self.ended = ended
