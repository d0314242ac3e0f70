"""The client cache's invalidation channel: Redis client tracking, one connection per store.

One RESP2 connection asks Redis to redirect to itself the invalidations of every key under the
namespace's prefix (``CLIENT TRACKING ON REDIRECT <own id> BCAST PREFIX ss:{ns}:``) and
subscribes to ``__redis__:invalidate``. Broadcast mode needs no read to register a key, so the
pooled connections that read and write are left as they are; Redis sends the invalidation of
a write before that write's reply (both from the same event-loop turn), and also for keys that
expire, are evicted, restored or flushed (then a null: everything). Redis 6.2+ and Valkey 8/9
have this; a Cluster's namespace lives in one slot, so the connection goes to the node holding
it. The connection pings every half second: a channel that breaks or falls silent empties the
cache (``_fresh``) until it is back. The channel runs in a daemon thread for both clients, so
an asyncio loop busy with other work still has its invalidations applied.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio.connection
import redis.connection
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from sharedstate._fresh import SILENCE, ClientCache
from sharedstate.keys import Keys

log = logging.getLogger("sharedstate")

CHANNEL = b"__redis__:invalidate"
PING_EVERY = 0.5  # seconds between two PINGs: how soon a silent channel is noticed (see SILENCE)
RETRY_MAX = 2.0  # longest wait between two attempts to re-establish the channel

Connect = Callable[[], redis.connection.AbstractConnection]


def connection_factory(client: Any, key: str) -> Connect | None:
    """How to open a plain RESP2 connection to the server (or Cluster node) holding ``key``
    with ``client``'s settings (credentials, TLS, db); None when the client cannot track
    (fakeredis, Sentinel under asyncio, something unknown)."""
    if type(client).__module__.startswith("fakeredis"):
        return None
    if hasattr(client, "get_node_from_key"):  # Cluster, sync or asyncio

        def from_node() -> redis.connection.AbstractConnection:
            node = client.get_node_from_key(key)
            pooled = getattr(node, "redis_connection", None)
            if pooled is not None:
                pool = pooled.connection_pool
                return _open(pool.connection_class, dict(pool.connection_kwargs))
            kwargs = {**node.connection_kwargs, "host": node.host, "port": node.port}
            return _open(node.connection_class, kwargs)

        return from_node
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if pool is None or kwargs is None:
        return None
    connection_class = pool.connection_class
    if type(pool).__name__.startswith("Sentinel"):
        if type(pool).__module__.startswith("redis.asyncio"):
            return None
        return lambda: _open(connection_class, {**pool.connection_kwargs, "connection_pool": pool})
    return lambda: _open(connection_class, dict(pool.connection_kwargs))


def _open(connection_class: type[Any], kwargs: dict[str, Any]) -> redis.connection.AbstractConnection:
    if issubclass(connection_class, redis.asyncio.connection.AbstractConnection):
        connection_class = _sync_twin(connection_class)
        kwargs.pop("parser_class", None)
    accepted = _accepted(connection_class)
    kwargs = {name: value for name, value in kwargs.items() if name in accepted}
    kwargs.update(protocol=2, retry=Retry(NoBackoff(), 0))  # RESP2: invalidations as pub/sub messages
    connection: redis.connection.AbstractConnection = connection_class(**kwargs)
    return connection


def _sync_twin(connection_class: type[Any]) -> type[Any]:
    if issubclass(connection_class, redis.asyncio.connection.SSLConnection):
        return redis.connection.SSLConnection
    if issubclass(connection_class, redis.asyncio.connection.UnixDomainSocketConnection):
        return redis.connection.UnixDomainSocketConnection
    return redis.connection.Connection


def _accepted(connection_class: type[Any]) -> set[str]:
    names: set[str] = set()
    for cls in connection_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return names - {"self", "args", "kwargs"}


class Tracker:
    """Keeps one store's cache fed with invalidations, from a daemon thread started on first use."""

    def __init__(self, connect: Connect, cache: ClientCache, keys: Keys) -> None:
        self._connect = connect
        self._cache = cache
        self._prefix = keys.base
        self._data = keys.data("").encode()
        self._meta = keys.meta("").encode()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: redis.connection.AbstractConnection | None = None
        self._lock = threading.Lock()
        self._disabled = False
        self._receiving = False
        self._poller: select.poll | None = None
        cache.in_flight = self.in_flight
        _trackers.add(self)

    @classmethod
    def for_client(cls, client: Any, cache: ClientCache | None, keys: Keys) -> Tracker | None:
        """The tracker of a store, or None when it has no cache or its client cannot track."""
        if cache is None:
            return None
        connect = connection_factory(client, keys.names)
        return None if connect is None else cls(connect, cache, keys)

    def in_flight(self) -> bool:
        """True while invalidations have reached this process but are not applied yet: in the
        socket, or read and being applied. A read then goes to Redis, so a write acknowledged
        to this process through any connection (its reply comes after its invalidation) is
        never answered from an older copy, whatever the thread scheduling."""
        if self._receiving:
            return True
        poller = self._poller
        if poller is None:
            return False
        try:
            return bool(poller.poll(0))
        except RuntimeError:  # another thread is polling it this instant: assume the worst
            return True

    def start(self) -> None:
        """Start the channel if it is not running (cheap when it is)."""
        if self._thread is not None or self._disabled or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="sharedstate-cache", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop the channel and close its connection (waits for the thread, briefly)."""
        self.abandon()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._cache.down()

    def abandon(self) -> None:
        """Tell the channel to stop, without waiting: it closes its connection as it goes. (What
        a store garbage-collected without close() does: no lock, little work, inside the
        collector; the thread empties the cache as it ends.)"""
        self._stop.set()
        connection = self._connection
        sock = getattr(connection, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread at once

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.05
        outage: str | None = None
        while not self._stop.is_set():
            connection: redis.connection.AbstractConnection | None = None
            try:
                connection = self._connection = self._connect()
                connection.connect()
                self._subscribe(connection)
                sock = getattr(connection, "_sock", None)
                assert sock is not None
                poller = select.poll()
                poller.register(sock, select.POLLIN)
                readers = select.poll()
                readers.register(sock, select.POLLIN)
                self._poller = readers
                self._cache.up()
                if outage is not None:
                    log.info("client cache: invalidations flow again (%s before)", outage)
                    outage = None
                delay = 0.05
                self._listen(connection, poller)
            except redis.exceptions.ResponseError as exc:
                self._disabled = True
                log.warning("client cache off: the server cannot track keys (%s); reads go to Redis", exc)
                return
            except (redis.exceptions.RedisError, OSError, ValueError) as exc:
                if outage is None and not self._stop.is_set():
                    outage = type(exc).__name__
                    log.info("client cache: invalidation channel down (%s); reads go to Redis", outage)
            finally:
                self._cache.down()
                self._poller = None
                self._receiving = False
                self._connection = None
                if connection is not None:
                    connection.disconnect()
            self._stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _subscribe(self, connection: redis.connection.AbstractConnection) -> None:
        connection.send_command("CLIENT", "ID")
        own_id = connection.read_response()
        connection.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", own_id, "BCAST", "PREFIX", self._prefix
        )
        connection.read_response()
        connection.send_command("SUBSCRIBE", CHANNEL)
        connection.read_response()

    def _listen(self, connection: redis.connection.AbstractConnection, poller: select.poll) -> None:
        pinged = time.monotonic()
        while not self._stop.is_set():
            # Wait on the socket itself: redis-py's pure-Python parser reads bytes out of the
            # socket in can_read, and a read of the cache between that and ``_receiving`` would
            # see neither. (Only the channel uses this poll object: one poll() at a time.)
            if poller.poll(PING_EVERY * 1000):
                self._receiving = True  # before the bytes leave the socket
                try:
                    while True:  # until neither the parser's buffer nor the socket holds more
                        self._handle(connection.read_response())
                        if not connection.can_read(timeout=0):
                            break
                finally:
                    self._receiving = False
            now = time.monotonic()
            if now - pinged >= PING_EVERY:
                connection.send_command("PING")
                pinged = now
            if now - self._cache.last_heard >= SILENCE:
                raise redis.exceptions.TimeoutError("no answer to PING")

    def _handle(self, reply: Any) -> None:
        self._cache.heard()
        if not isinstance(reply, list) or len(reply) != 3 or reply[0] != b"message":
            return  # a pong
        keys = reply[2]
        if keys is None:
            self._cache.flush()
            return
        names = set()
        for key in keys if isinstance(keys, list) else (keys,):
            if key.startswith(self._data):
                names.add(key[len(self._data) :].decode("utf-8", "replace"))
            elif key.startswith(self._meta):
                names.add(key[len(self._meta) :].decode("utf-8", "replace"))
        if names:
            self._cache.invalidate(names)


_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()


def _after_fork() -> None:
    # The child has the parent's cache but not its thread: start over (the parent's socket is
    # left to the parent; redis-py does not shut down a connection another process made).
    for tracker in list(_trackers):
        tracker._thread = None
        tracker._connection = None
        tracker._lock = threading.Lock()
        tracker._cache.after_fork()


os.register_at_fork(after_in_child=_after_fork)
