"""The client cache: copies of documents known to be current, served without a round trip.

Pure state, no I/O: ``_tracking`` feeds it invalidations pushed by Redis. A copy is served
only while that channel is live and was heard from recently, and only if nothing invalidated
the document between the moment the read that made the copy was sent and its answer (a
``ticket`` taken before sending): a read racing a write never leaves an old copy behind.
Copies are kept encoded, so each read decodes its own objects (one msgpack call for a whole
document): a caller mutating what it got never changes the cache.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sharedstate import codec

SILENCE = 1.5  # seconds without a word from the channel (it pings every 0.5 s) before no copy is served
TOUCHED_MAX = 100_000  # names whose last invalidation is remembered; past it, all in-flight reads lose


@dataclass(slots=True)
class Entry:
    """A current copy: ``fields`` None means the document is known to be absent."""

    version: int
    updated_at: float
    updated_by: str
    kind: str
    fields: Mapping[str, bytes] | None
    size: int
    blob: bytes | None = field(default=None)  # the whole data as one msgpack value, built on first use

    def data_blob(self) -> bytes:
        blob = self.blob
        if blob is None:
            assert self.fields is not None
            blob = self.blob = codec.pack_document(self.kind, self.fields)
        return blob


class ClientCache:
    """Current copies, bounded by count and bytes, emptied whenever the channel breaks."""

    def __init__(self, namespace: str, max_documents: int, max_bytes: int) -> None:
        self.namespace = namespace
        self._max_documents = max_documents
        self._max_bytes = max_bytes
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._live = False
        self._heard = 0.0
        self._serial = 0  # invalidations applied so far
        self._flushed = 0  # serial of the last flush: tickets older than it are void
        self._touched: dict[str, int] = {}  # name -> serial of its last invalidation
        self.in_flight: Callable[[], bool] = _never  # the channel holds invalidations not applied yet
        _caches.setdefault(namespace, weakref.WeakSet()).add(self)

    # -- the channel (called by _tracking) ----------------------------------------------

    def up(self) -> None:
        """The channel is established: invalidations of every later write will arrive."""
        with self._lock:
            self._live = True
            self._heard = time.monotonic()

    def heard(self) -> None:
        """The channel answered (a message or a pong)."""
        self._heard = time.monotonic()

    def down(self) -> None:
        """The channel broke: nothing is known to be current any more."""
        with self._lock:
            self._live = False
            self._flush_locked()

    def flush(self) -> None:
        """Redis was flushed (or lost track): every copy goes."""
        with self._lock:
            self._flush_locked()

    def invalidate(self, names: Iterable[str]) -> None:
        """These documents changed."""
        with self._lock:
            self._serial += 1
            serial = self._serial
            touched = self._touched
            for name in names:
                touched[name] = serial
                self._drop_locked(name)
            if len(touched) > TOUCHED_MAX:
                self._flush_locked()

    # -- reads and writes (called by the clients' core) ---------------------------------

    @property
    def last_heard(self) -> float:
        """``time.monotonic()`` of the channel's last word."""
        return self._heard

    def ticket(self) -> int | None:
        """Taken before a read is sent; None when its answer cannot become a current copy."""
        return self._serial if self._live else None

    def lookup(self, name: str) -> Entry | None:
        """The current copy of ``name``, if one is known."""
        entry = self._items.get(name)
        if entry is None or not self._live or time.monotonic() - self._heard >= SILENCE:
            return None
        if self.in_flight():  # an invalidation that arrived before this read may be among them
            return None
        try:  # noqa: SIM105 - suppress() costs more than the rest of a hot read
            self._items.move_to_end(name)
        except KeyError:  # invalidated meanwhile: this read began before it came
            pass
        return entry

    def admit(self, name: str, ticket: int | None, entry: Entry) -> None:
        """Keep what a read sent at ``ticket`` answered, unless ``name`` changed since."""
        if ticket is None or entry.size * 2 > self._max_bytes // 8:
            return
        with self._lock:
            if not self._live or ticket < self._flushed or self._touched.get(name, 0) > ticket:
                return
            self._drop_locked(name)
            self._items[name] = entry
            self._bytes += entry.size * 2  # fields and, once read whole, the blob
            while len(self._items) > self._max_documents or self._bytes > self._max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.size * 2

    def after_fork(self) -> None:
        """In a forked child: a lock the parent's channel thread held stays held here, so
        take a new one, and know nothing until the child's own channel is up."""
        self._lock = threading.Lock()
        self._live = False
        self._flush_locked()

    def __len__(self) -> int:
        return len(self._items)

    def _drop_locked(self, name: str) -> None:
        old = self._items.pop(name, None)
        if old is not None:
            self._bytes -= old.size * 2

    def _flush_locked(self) -> None:
        self._serial += 1
        self._flushed = self._serial
        self._touched.clear()
        self._items.clear()
        self._bytes = 0


def _never() -> bool:
    return False


_caches: dict[str, weakref.WeakSet[ClientCache]] = {}
"""Every cache of this process by namespace: a write through one store voids the copies of all."""


def forget(namespace: str, name: str) -> None:
    """This process wrote ``name`` (or tried to): no copy from before counts, in any store of
    the namespace in this process, before Redis's own invalidation arrives."""
    caches = _caches.get(namespace)
    if caches:
        for cache in list(caches):
            cache.invalidate((name,))
