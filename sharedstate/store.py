"""SharedStore: the synchronous client. All logic is in ``_core``; this file only does I/O."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis
import redis.exceptions
from redis.retry import Retry

from sharedstate._core import MISS, Call, Core, Unchanged, WatchState, before_batches
from sharedstate._tracking import Tracker
from sharedstate.connection import bounded_client, check_url, client_options, retry_settings
from sharedstate.errors import DocumentNotFound, StoreUnavailable, VersionConflict, translate_errors
from sharedstate.keys import DEFAULT_TIMEOUT, DEFAULT_UPDATE_RETRIES, Keys
from sharedstate.models import Change, Document, DocumentInfo, Written
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
    from sharedstate.mapping import StoreMapping

T = TypeVar("T")
_MISSING: Any = object()


class SharedStore:
    """A namespace of JSON documents in Redis, shared safely between processes.

    >>> store = SharedStore.from_url("redis://localhost:6379/0", namespace="mybot", client_name="bot")
    >>> v = store.put("config", {"a": 1})
    >>> store.update("config", lambda data: {**data, "n": data.get("n", 0) + 1}).version
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        namespace: str = "default",
        client_name: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> None:
        """``timeout``: seconds within which every call answers or raises StoreUnavailable; a
        plain client that could take longer is not changed, the store uses a pool of its own
        with the same connection settings (see ``connection.bounded_client``). None: as given."""
        prepare_client(redis_client)
        self._redis: redis.Redis
        self._redis, self._owns_client = bounded_client(redis_client, timeout, Retry)
        self._core = Core(namespace, client_name, **StoreOptions.check(options))
        self._block = watch_block(self._redis)
        self._tracker = Tracker.for_client(self._redis, self._core.fresh, self._core.keys)
        if self._tracker is not None:  # a store dropped without close() leaves no thread behind
            weakref.finalize(self, self._tracker.abandon)

    @classmethod
    def from_url(
        cls,
        url: str,
        namespace: str = "default",
        client_name: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> SharedStore:
        """Connect to ``url`` with every call bounded by ``timeout`` seconds."""
        backoff, retries = retry_settings(timeout)
        client = redis.Redis.from_url(
            check_url(url), retry=Retry(backoff, retries), **client_options(timeout, client_name)
        )
        store = cls(client, namespace, client_name, timeout=timeout, **options)
        store._owns_client = True
        return store

    @classmethod
    def from_settings(cls, settings: Settings, client_name: str | None = None, **options: Any) -> SharedStore:
        """The store ``settings`` describe (URL, namespace, timeout, limits); ``client_name`` names
        this process unless the settings do (``SHAREDSTATE_CLIENT_NAME``); ``options`` win."""
        url, namespace, name, timeout = connection_of(settings, client_name)
        return cls.from_url(url, namespace, name, timeout=timeout, **settings_options(settings, options))

    @classmethod
    def from_env(cls, **overrides: Any) -> SharedStore:
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
    def redis(self) -> redis.Redis:
        """The redis-py client underneath."""
        return self._redis

    def _run(self, call: Call[T]) -> T:
        try:
            with translate_errors(call.action, call.writes):
                for batch in before_batches(call):
                    pipe = self._redis.pipeline(transaction=False)
                    for command in batch:
                        pipe.execute_command(*command)
                    pipe.execute()
                if call.then is not None:
                    pipe = self._redis.pipeline(transaction=False)
                    pipe.execute_command(*call.command)
                    pipe.execute_command(*call.then)
                    raw = pipe.execute()
                else:
                    try:
                        raw = self._redis.execute_command(*call.command)
                    except redis.exceptions.NoScriptError:
                        raw = self._redis.execute_command(*call.eval_command())
        except StoreUnavailable as exc:
            if call.stale is None:
                raise
            return call.stale(exc)
        finally:
            self._core.forget(call)
        return call.parse(raw)

    def _run_many(self, calls: Sequence[Call[T]], action: str, transaction: bool = False) -> list[T]:
        """Send ``calls`` in one pipeline (each call atomic on its own; ``transaction``: MULTI/EXEC)."""
        if not calls:
            return []
        with translate_errors(action, any(call.writes for call in calls)):
            for attempt in (1, 2):
                pipe = self._redis.pipeline(transaction=transaction)
                for call in calls:
                    pipe.execute_command(*call.command)
                try:
                    raws = pipe.execute()
                    break
                except redis.exceptions.NoScriptError:
                    # Re-sending is safe: write scripts carry write ids (see write.lua).
                    if attempt == 2:
                        raise
                    for script in {call.script for call in calls if call.script is not None}:
                        self._redis.script_load(script.source)
                finally:
                    for call in calls:
                        self._core.forget(call)
        return [call.parse(raw) for call, raw in zip(calls, raws, strict=True)]

    # -- reads ---------------------------------------------------------------------------

    def get(self, name: str) -> Document:
        """The document ``name``; DocumentNotFound if absent. From the client cache when this
        process holds a current copy (see ``cache``)."""
        doc = self._core.cached(name)
        if doc is MISS:
            doc = self._read(self._core.get(name))
        if doc is None:
            raise DocumentNotFound(name)
        return doc

    def load(self, name: str, default: Any = None) -> Any:
        """Just the data of ``name``, or ``default`` if absent."""
        doc = self._core.cached(name)
        if doc is MISS:
            doc = self._read(self._core.get(name))
        return default if doc is None else doc.data

    def get_field(self, name: str, field: str, default: Any = None) -> Any:
        """One top-level field, or ``default`` if the document or field is absent."""
        hit = self._core.cached_field(name, field)
        found, value = self._read(self._core.get_field(name, field)) if hit is MISS else hit
        return value if found else default

    def _read(self, call: Call[T]) -> T:
        """A read the cache could not answer: it also starts the cache's channel, once."""
        if self._tracker is not None:
            self._tracker.start()
        return self._run(call)

    def names(self) -> list[str]:
        """The sorted names of all documents."""
        return self._run(self._core.names())

    def info(self, name: str) -> DocumentInfo:
        """Version, time, writer, kind and size of ``name`` without its data; DocumentNotFound if absent."""
        info = self._run(self._core.info(name))
        if info is None:
            raise DocumentNotFound(name)
        return info

    def infos(self) -> list[DocumentInfo]:
        """``info`` of every document, sorted by name (in pipelines of 1,000)."""
        found = []
        for calls in self._core.info_batches(self.names()):
            found += self._run_many(calls, "list documents")
        return [info for info in found if info is not None]

    def history(self, name: str, limit: int = 20) -> list[Change]:
        """The last ``limit`` changes of ``name``, newest first, deletes included."""
        return self._run(self._core.history(name, limit))

    def get_many(self, names: Sequence[str]) -> list[Document | None]:
        """The documents ``names`` as of now (None for an absent one), in one pipeline; never
        stale copies."""
        calls = [self._core.get(name, stale=False) for name in names]
        return self._run_many(calls, f"read {len(calls)} documents")

    def get_if_changed(self, name: str, version: int) -> Document | None:
        """``name`` unless it is still at ``version``: then None, and no data is sent. For a
        copy kept by the caller; DocumentNotFound if absent."""
        found = self._read(self._core.get_unless(name, version))
        if found is None:
            raise DocumentNotFound(name)
        return None if isinstance(found, Unchanged) else found

    def cached_version(self, name: str) -> int | None:
        """The version of ``name`` this process's client cache holds a current copy of (0: known
        to be absent), or None when only Redis can tell. Never a round trip."""
        return self._core.cached_version(name)

    # -- writes --------------------------------------------------------------------------

    def put(self, name: str, data: Any, expected_version: int | None = None) -> int:
        """Replace the document; returns its new version.

        ``expected_version`` makes it a compare-and-set (0: create only); a mismatch raises
        VersionConflict.
        """
        return self._run(self._core.put(name, data, expected_version)).version

    def replace(self, name: str, data: Any, expected_version: int | None = None) -> Written:
        """``put``, answering what the write did: ``.version``, ``.previous`` (the version it
        replaced, 0 if none), ``.time`` and ``.feed_id``."""
        return self._run(self._core.put(name, data, expected_version))

    def put_all(self, documents: Mapping[str, Any]) -> dict[str, int]:
        """Replace every document of ``documents`` in one MULTI/EXEC: all or nothing. All are
        checked first (InvalidDocument names every problem; nothing is written). New versions."""
        results = self._run_many(self._core.put_all(documents), "write documents", transaction=True)
        return {name: written.version for name, written in zip(documents, results, strict=True)}

    def merge(self, name: str, fields: Mapping[str, Any], expected_version: int | None = None) -> int:
        """Set several top-level fields in one atomic step (creating the document if absent)."""
        return self._run(self._core.merge(name, fields, expected_version))

    def set_field(self, name: str, field: str, value: Any, expected_version: int | None = None) -> int:
        """Set one top-level field (creating the document if absent); returns the new version."""
        return self._run(self._core.set_field(name, field, value, expected_version))

    def delete_field(self, name: str, field: str, expected_version: int | None = None) -> int:
        """Remove one top-level field; an absent field writes nothing and returns the current version."""
        return self._run(self._core.delete_field(name, field, expected_version)).version

    def delete(self, name: str, expected_version: int | None = None) -> bool:
        """Delete the document; True if it existed."""
        return self._run(self._core.delete(name, expected_version))

    def update(self, name: str, fn: Callable[[Any], Any], retries: int = DEFAULT_UPDATE_RETRIES) -> Document:
        """Read-modify-write with retry on conflict.

        ``fn`` gets the data (``{}`` if the document is absent) and returns the new data, or
        mutates it and returns None. VersionConflict once ``retries`` retries are spent.
        """
        attempt = 0
        while True:
            current = self._core.cached(name)  # a copy behind by the invalidation's trip: a conflict
            if current is MISS:
                current = self._read(self._core.get(name, stale=False))
            data, expected = self._core.apply_update(fn, current)
            try:
                return self._run(self._core.updated(name, data, expected))
            except VersionConflict:
                attempt += 1
                if attempt > retries:
                    raise
                time.sleep(self._core.backoff(attempt))

    # -- views ---------------------------------------------------------------------------

    def watch(
        self,
        names: Iterable[str] | None = None,
        timeout: float | None = None,
        after: str | None = None,
    ) -> Watch:
        """Changes made after this call (or after feed position ``after``), as they happen.

        Stops after ``timeout`` seconds without a change (never, if None). Raises FeedTrimmed
        when ``after`` is older than what the capped feed still holds, and while iterating when
        the feed lost what follows the position reached (trimmed, or Redis lost it).
        """
        state = self._core.watch(names, timeout, after, self._block)
        start = state.start(lazy=False)
        if start is not None:
            self._run(start)
        return Watch(self, state)

    def mapping(self, name: str) -> StoreMapping:
        """A MutableMapping view of one object document; see StoreMapping."""
        from sharedstate.mapping import StoreMapping

        return StoreMapping(self, name)

    def bulk(self) -> SharedStore:
        """The same namespace and client without last-known copies: for reading or writing every
        document (snapshots, restores, exports) without filling this process's memory."""
        core = self._core
        return SharedStore(
            self._redis,
            core.namespace,
            core.writer,
            timeout=None,  # the same client: already bounded
            stale_reads=False,
            max_document_bytes=core.max_document_bytes,
            feed_maxlen=core.feed_maxlen,
            history_limit=core.history_limit,
            history_ttl=core.history_ttl,
            payload_limit=core.payload_limit,
            history_budget=core.history_budget,
            cache=False,
        )

    def close(self) -> None:
        """Release connections (of a client this store created) and stop the cache's channel."""
        if self._tracker is not None:
            self._tracker.stop()
        if self._owns_client:
            self._redis.close()

    def __enter__(self) -> SharedStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SharedStore(namespace={self.namespace!r})"


class Watch(Iterator[Change]):
    """What ``SharedStore.watch`` returns: an iterator of Changes."""

    def __init__(self, store: SharedStore, state: WatchState) -> None:
        self._store = store
        self._state = state
        self._ready: list[Change] = []

    def __iter__(self) -> Watch:
        return self

    @property
    def position(self) -> str | None:
        """The feed position read up to (resume with ``watch(after=position)``)."""
        return self._state.position

    def __next__(self) -> Change:
        while not self._ready:
            call = self._state.read()
            if call is None:
                raise StopIteration
            self._ready = self._store._run(call)
        return self._ready.pop(0)
