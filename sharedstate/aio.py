"""AsyncSharedStore: the asyncio client. Same operations as SharedStore, as coroutines."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry

from sharedstate._autopipe import AutoPipeline
from sharedstate._core import MISS, Call, Core, Unchanged, WatchState, before_batches
from sharedstate._packing import with_hiredis_packing
from sharedstate._tracking import Tracker
from sharedstate.connection import bounded_client, check_url, client_options, retry_settings
from sharedstate.errors import DocumentNotFound, StoreUnavailable, VersionConflict, translate_errors
from sharedstate.keys import DEFAULT_TIMEOUT, DEFAULT_UPDATE_RETRIES, Keys
from sharedstate.models import Change, Document, DocumentInfo, Written
from sharedstate.offload import LARGE_BYTES, is_large, reply_bytes
from sharedstate.options import (
    StoreOptions,
    connection_of,
    prepare_client,
    settings_options,
    split_overrides,
    watch_block,
)
from sharedstate.settings import Settings

if TYPE_CHECKING:
    from sharedstate.mapping import AsyncStoreMapping

T = TypeVar("T")
R = TypeVar("R")
HIT_TURN = 64  # reads answered from the cache between two turns of the event loop


class AsyncSharedStore:
    """The asyncio twin of SharedStore: ``await store.get(...)``, ``async for c in store.watch()``.

    ``from_url``, ``from_env`` and ``mapping`` are plain calls; everything else is awaited.
    """

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        namespace: str = "default",
        client_name: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> None:
        """``timeout``: see SharedStore."""
        prepare_client(redis_client)
        self._redis: redis.asyncio.Redis
        self._redis, self._owns_client = bounded_client(redis_client, timeout, Retry)
        self._pipeline = AutoPipeline(self._redis, timeout)
        self._core = Core(namespace, client_name, **StoreOptions.check(options))
        self._block = watch_block(self._redis)
        self._tracker = Tracker.for_client(self._redis, self._core.fresh, self._core.keys)
        if self._tracker is not None:  # a store dropped without close() leaves no thread behind
            weakref.finalize(self, self._tracker.abandon)
        self._hits = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        namespace: str = "default",
        client_name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> AsyncSharedStore:
        """Connect to ``url`` with every call bounded by ``timeout`` seconds."""
        backoff, retries = retry_settings(timeout)
        client = redis.asyncio.Redis.from_url(
            check_url(url), retry=Retry(backoff, retries), **client_options(timeout, client_name)
        )
        pool = client.connection_pool  # ours: no connection made yet
        pool.connection_class = with_hiredis_packing(pool.connection_class)
        store = cls(client, namespace, client_name, timeout=timeout, **options)
        store._owns_client = True
        return store

    @classmethod
    def from_settings(
        cls, settings: Settings, client_name: str | None = None, **options: Any
    ) -> AsyncSharedStore:
        """The store ``settings`` describe (URL, namespace, timeout, limits); ``client_name`` names
        this process unless the settings do (``SHAREDSTATE_CLIENT_NAME``); ``options`` win."""
        url, namespace, name, timeout = connection_of(settings, client_name)
        return cls.from_url(url, namespace, name, timeout=timeout, **settings_options(settings, options))

    @classmethod
    def from_env(cls, **overrides: Any) -> AsyncSharedStore:
        """Build a store from ``SHAREDSTATE_*`` settings (see ``sharedstate.settings``)."""
        settings, options = split_overrides(overrides)
        return cls.from_settings(settings, **options)

    @property
    def namespace(self) -> str:
        """The namespace this store reads and writes."""
        return self._core.namespace

    @property
    def keys(self) -> Keys:
        """The Redis keys of this store's namespace."""
        return self._core.keys

    @property
    def redis(self) -> redis.asyncio.Redis:
        """The redis-py asyncio client underneath."""
        return self._redis

    async def _run(self, call: Call[T]) -> T:
        try:
            with translate_errors(call.action, call.writes):
                for batch in before_batches(call):
                    pipe = self._redis.pipeline(transaction=False)
                    for command in batch:
                        pipe.execute_command(*command)
                    await pipe.execute()
                try:
                    raw = await self._send(call, call.command)
                except redis.exceptions.NoScriptError:
                    raw = await self._send(call, call.eval_command())
        except StoreUnavailable as exc:
            if call.stale is None:
                raise
            return call.stale(exc)
        finally:
            self._core.forget(call)
        if reply_bytes(raw) > LARGE_BYTES:  # decoding a large document would stall the loop
            return await asyncio.to_thread(call.parse, raw)
        return call.parse(raw)

    async def _built(self, build: Callable[..., R], *args: Any) -> R:
        """``build(*args)``: in a thread when a value in ``args`` is large to encode."""
        if any(is_large(arg) for arg in args):
            return await asyncio.to_thread(build, *args)
        return build(*args)

    async def _send(self, call: Call[Any], command: tuple[Any, ...]) -> Any:
        if call.then is not None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.execute_command(*command)
            pipe.execute_command(*call.then)
            return await pipe.execute()
        if call.alone:
            return await self._redis.execute_command(*command)
        return await self._pipeline.execute(command)  # with the other calls of this loop turn

    async def _run_many(self, calls: Sequence[Call[T]], action: str, transaction: bool = False) -> list[T]:
        """Send ``calls`` in one pipeline (see SharedStore._run_many); ``transaction``: MULTI/EXEC."""
        if not calls:
            return []
        with translate_errors(action, any(call.writes for call in calls)):
            for attempt in (1, 2):
                pipe = self._redis.pipeline(transaction=transaction)
                for call in calls:
                    pipe.execute_command(*call.command)
                try:
                    raws = await pipe.execute()
                    break
                except redis.exceptions.NoScriptError:
                    if attempt == 2:
                        raise
                    for script in {call.script for call in calls if call.script is not None}:
                        await self._redis.script_load(script.source)
                finally:
                    for call in calls:
                        self._core.forget(call)
        if reply_bytes(raws, 3) > LARGE_BYTES:
            return await asyncio.to_thread(
                lambda: [call.parse(raw) for call, raw in zip(calls, raws, strict=True)]
            )
        return [call.parse(raw) for call, raw in zip(calls, raws, strict=True)]

    # -- reads ---------------------------------------------------------------------------

    async def get(self, name: str) -> Document:
        """The document ``name``; DocumentNotFound if absent. From the client cache when this
        process holds a current copy (see SharedStore)."""
        doc = self._core.cached(name)
        if doc is MISS:
            doc = await self._read(self._core.get(name))
        else:
            await self._hit()
        if doc is None:
            raise DocumentNotFound(name)
        return doc

    async def load(self, name: str, default: Any = None) -> Any:
        """Just the data of ``name``, or ``default`` if absent."""
        doc = self._core.cached(name)
        if doc is MISS:
            doc = await self._read(self._core.get(name))
        else:
            await self._hit()
        return default if doc is None else doc.data

    async def get_field(self, name: str, field: str, default: Any = None) -> Any:
        """One top-level field, or ``default`` if the document or field is absent."""
        hit = self._core.cached_field(name, field)
        if hit is MISS:
            found, value = await self._read(self._core.get_field(name, field))
        else:
            found, value = hit
            await self._hit()
        return value if found else default

    async def _hit(self) -> None:
        """After a read from the cache, which never suspends: every HIT_TURN-th lets the loop
        turn, so a task polling a document in a loop cannot starve the others."""
        self._hits += 1
        if self._hits % HIT_TURN == 0:
            await asyncio.sleep(0)

    async def _read(self, call: Call[T]) -> T:
        """A read the cache could not answer: it also starts the cache's channel, once."""
        if self._tracker is not None:
            self._tracker.start()
        return await self._run(call)

    async def names(self) -> list[str]:
        """The sorted names of all documents."""
        return await self._run(self._core.names())

    async def info(self, name: str) -> DocumentInfo:
        """Version, time, writer, kind and size of ``name`` without its data; DocumentNotFound if absent."""
        info = await self._run(self._core.info(name))
        if info is None:
            raise DocumentNotFound(name)
        return info

    async def infos(self) -> list[DocumentInfo]:
        """``info`` of every document, sorted by name (in pipelines of 1,000)."""
        found = []
        for calls in self._core.info_batches(await self.names()):
            found += await self._run_many(calls, "list documents")
        return [info for info in found if info is not None]

    async def history(self, name: str, limit: int = 20) -> list[Change]:
        """The last ``limit`` changes of ``name``, newest first, deletes included."""
        return await self._run(self._core.history(name, limit))

    async def get_many(self, names: Sequence[str]) -> list[Document | None]:
        """The documents ``names`` as of now (None for an absent one), in one pipeline; never
        stale copies."""
        calls = [self._core.get(name, stale=False) for name in names]
        return await self._run_many(calls, f"read {len(calls)} documents")

    async def get_if_changed(self, name: str, version: int) -> Document | None:
        """``name`` unless it is still at ``version``: then None, and no data is sent. For a
        copy kept by the caller; DocumentNotFound if absent."""
        found = await self._read(self._core.get_unless(name, version))
        if found is None:
            raise DocumentNotFound(name)
        return None if isinstance(found, Unchanged) else found

    def cached_version(self, name: str) -> int | None:
        """The version of ``name`` this process's client cache holds a current copy of (0: known
        to be absent), or None when only Redis can tell. Never a round trip."""
        return self._core.cached_version(name)

    # -- writes --------------------------------------------------------------------------

    async def put(self, name: str, data: Any, expected_version: int | None = None) -> int:
        """Replace the document; returns its new version (see SharedStore.put)."""
        return (await self._run(await self._built(self._core.put, name, data, expected_version))).version

    async def replace(self, name: str, data: Any, expected_version: int | None = None) -> Written:
        """``put``, answering what the write did: ``.version``, ``.previous`` (the version it
        replaced, 0 if none), ``.time`` and ``.feed_id``."""
        return await self._run(await self._built(self._core.put, name, data, expected_version))

    async def put_all(self, documents: Mapping[str, Any]) -> dict[str, int]:
        """Replace every document of ``documents`` in one MULTI/EXEC: all or nothing. All are
        checked first (InvalidDocument names every problem; nothing is written). New versions."""
        calls = await self._built(self._core.put_all, documents)
        results = await self._run_many(calls, "write documents", transaction=True)
        return {name: written.version for name, written in zip(documents, results, strict=True)}

    async def merge(self, name: str, fields: Mapping[str, Any], expected_version: int | None = None) -> int:
        """Set several top-level fields in one atomic step (creating the document if absent)."""
        return await self._run(await self._built(self._core.merge, name, fields, expected_version))

    async def set_field(self, name: str, field: str, value: Any, expected_version: int | None = None) -> int:
        """Set one top-level field (creating the document if absent); returns the new version."""
        return await self._run(await self._built(self._core.set_field, name, field, value, expected_version))

    async def delete_field(self, name: str, field: str, expected_version: int | None = None) -> int:
        """Remove one top-level field; an absent field writes nothing and returns the current version."""
        return (await self._run(self._core.delete_field(name, field, expected_version))).version

    async def delete(self, name: str, expected_version: int | None = None) -> bool:
        """Delete the document; True if it existed."""
        return await self._run(self._core.delete(name, expected_version))

    async def update(
        self, name: str, fn: Callable[[Any], Any], retries: int = DEFAULT_UPDATE_RETRIES
    ) -> Document:
        """Read-modify-write with retry on conflict (see SharedStore.update); ``fn`` is a plain function."""
        attempt = 0
        while True:
            current = self._core.cached(name)  # a copy behind by the invalidation's trip: a conflict
            if current is MISS:
                current = await self._read(self._core.get(name, stale=False))
            data, expected = self._core.apply_update(fn, current)
            try:
                return await self._run(self._core.updated(name, data, expected))
            except VersionConflict:
                attempt += 1
                if attempt > retries:
                    raise
                await asyncio.sleep(self._core.backoff(attempt))

    # -- views ---------------------------------------------------------------------------

    def watch(
        self,
        names: Iterable[str] | None = None,
        timeout: float | None = None,
        after: str | None = None,
    ) -> AsyncWatch:
        """Changes made after this call (or after ``after``), for ``async for``.

        The feed position is fixed at the first iteration, counting changes stamped after the
        call's time as well; stops after ``timeout`` seconds without a change. FeedTrimmed as
        with SharedStore.watch.
        """
        return AsyncWatch(self, self._core.watch(names, timeout, after, self._block))

    def mapping(self, name: str) -> AsyncStoreMapping:
        """An async mapping view of one object document; see AsyncStoreMapping."""
        from sharedstate.mapping import AsyncStoreMapping

        return AsyncStoreMapping(self, name)

    async def close(self) -> None:
        """Release connections (of a client this store created) and stop the cache's channel."""
        if self._tracker is not None:
            await asyncio.to_thread(self._tracker.stop)
        if self._owns_client:
            await self._redis.aclose()

    async def __aenter__(self) -> AsyncSharedStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncSharedStore(namespace={self.namespace!r})"


class AsyncWatch(AsyncIterator[Change]):
    """What ``AsyncSharedStore.watch`` returns: an async iterator of Changes."""

    def __init__(self, store: AsyncSharedStore, state: WatchState) -> None:
        self._store = store
        self._state = state
        self._started = False
        self._ready: list[Change] = []

    def __aiter__(self) -> AsyncWatch:
        return self

    @property
    def position(self) -> str | None:
        """The feed position read up to (resume with ``watch(after=position)``)."""
        return self._state.position

    async def __anext__(self) -> Change:
        if not self._started:
            self._started = True
            start = self._state.start(lazy=True)
            if start is not None:
                await self._store._run(start)
        while not self._ready:
            call = self._state.read()
            if call is None:
                raise StopAsyncIteration
            self._ready = await self._store._run(call)
        return self._ready.pop(0)
