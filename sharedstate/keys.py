"""Redis key layout and every default, each explained in a line.

Every key of a namespace starts with ``ss:{<namespace>}:``. The braces are a Redis Cluster
hash tag: all keys of one namespace live in one slot, so each write (data, meta, names,
history, feed) is one atomic script on a single Redis and on a Cluster alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sharedstate.errors import InvalidDocument

PREFIX = "ss"
"""Every sharedstate key starts with ``ss:``; RQ's keys start with ``rq:``."""

NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,200}")
"""A document name: 1-200 ASCII letters, digits and ``._-:``."""

NAMESPACE_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A namespace: like a name but shorter and without ``:``, so it reads well inside keys."""

VALUE_FIELD = "="
"""Hash field holding a whole document whose top level is not a JSON object."""

KIND_OBJECT = "o"
"""Meta ``k`` of a document whose top level is an object: one hash field per key."""

KIND_VALUE = "v"
"""Meta ``k`` of any other document: the whole value in the hash field ``VALUE_FIELD``."""

DEFAULT_NAMESPACE = "default"
"""Namespace used when none is configured."""

DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""Largest encoded document accepted (fields plus values, msgpack)."""

DEFAULT_FEED_MAXLEN = 10_000
"""Most entries kept in a namespace's change feed (the oldest go first)."""

DEFAULT_HISTORY_LIMIT = 50
"""Most changes kept in each document's history (each also needs its feed entry)."""

DEFAULT_PAYLOAD_LIMIT = 64 * 1024
"""Largest payload (values written) a feed entry keeps; larger ones are omitted."""

DEFAULT_HISTORY_BUDGET = 64 * 1024 * 1024
"""Bytes the change feed and the histories of a namespace may hold together (oldest go first)."""

DEFAULT_HISTORY_TTL = 30 * 24 * 3600
"""Seconds a deleted document's history is kept (renewed if the name is written again)."""

DEFAULT_WRITE_ID_TTL = 120
"""Seconds a write's id is remembered, so a write re-sent by redis-py's retry applies once."""

INFO_BATCH = 1000  # metadata reads per pipeline when listing documents
BEFORE_BATCH = 8  # staged chunks of a wide put per pipeline (a few MB per round trip)
DEFAULT_TIMEOUT = 10.0
"""Seconds within which any call either answers or raises StoreUnavailable (from_url clients)."""

DEFAULT_UPDATE_RETRIES = 50
"""Times update() retries a read-modify-write that met a conflict."""

DEFAULT_STALE_CACHE_SIZE = 10_000
"""Documents whose last known copy is kept per process for reads while Redis is down."""

DEFAULT_CACHE_DOCUMENTS = 10_000
"""Most documents the client cache of one store keeps current copies of."""

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
"""Most bytes the client cache of one store holds (a copy counts twice its encoded size; one
over an eighth of this is not kept)."""


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid document name, else raise InvalidDocument."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidDocument(
            f"invalid document name {name!r}: use 1-200 characters of ASCII letters, digits and ._-:"
        )
    return name


def validate_namespace(namespace: object) -> str:
    """Return ``namespace`` if valid, else raise InvalidDocument."""
    if not isinstance(namespace, str) or not NAMESPACE_RE.fullmatch(namespace):
        raise InvalidDocument(
            f"invalid namespace {namespace!r}: use 1-64 characters of ASCII letters, digits and ._-"
        )
    return namespace


@dataclass(frozen=True, slots=True)
class Keys:
    """The keys of one namespace."""

    namespace: str

    @property
    def base(self) -> str:
        """``ss:{<namespace>}:``, the prefix of every key of the namespace."""
        return f"{PREFIX}:{{{self.namespace}}}:"

    def data(self, name: str) -> str:
        """Hash of a document's fields (msgpack values)."""
        return f"{self.base}d:{name}"

    def meta(self, name: str) -> str:
        """Hash of a document's version ``v``, time ``t``, writer ``w``, kind ``k``, size ``s``."""
        return f"{self.base}m:{name}"

    def history(self, name: str) -> str:
        """Capped list of the feed ids of a document's last changes, newest first (kept after a
        delete, with a TTL)."""
        return f"{self.base}h:{name}"

    def write_id(self, write_id: str) -> str:
        """Short-lived record of one applied write, for idempotent re-sends."""
        return f"{self.base}w:{write_id}"

    @property
    def names(self) -> str:
        """Set of the namespace's document names."""
        return f"{self.base}names"

    @property
    def feed(self) -> str:
        """Capped stream of every change in the namespace: the change feed."""
        return f"{self.base}feed"

    @property
    def feed_bytes(self) -> str:
        """Counter of the bytes the feed and histories hold, kept by the write scripts."""
        return f"{self.base}feedbytes"

    @property
    def tombstones(self) -> str:
        """Hash name -> last version of deleted documents, so versions are never reused."""
        return f"{self.base}tomb"

    @property
    def floor(self) -> str:
        """Version floor set by a restore: every later write gets a version above it."""
        return f"{self.base}floor"

    @property
    def marker(self) -> str:
        """Set by the durability side once the namespace is accounted for; gone when Redis lost data."""
        return f"{self.base}marker"

    # Internal records under ``sys:``, never documents. Each has one module that reads and
    # writes it: ``durability/state.py`` (the durability side's), ``worker/records.py``
    # (the worker's, which the API reads).

    def _system(self, what: str) -> str:
        return f"{self.base}sys:{what}"

    @property
    def catalogue(self) -> str:
        """JSON list of the snapshots the worker can restore, published by the worker."""
        return self._system("catalogue")

    @property
    def last_snapshot(self) -> str:
        """JSON of the last snapshot taken (id, feed position, epoch): lets an unchanged one be skipped."""
        return self._system("snapshot")

    @property
    def restore_intent(self) -> str:
        """JSON of the restore in progress (snapshot id), so an interrupted one is finished alike."""
        return self._system("restore")

    @property
    def restore_lock(self) -> str:
        """The lease a restore holds while it writes."""
        return self._system("lock:restore")

    @property
    def journal_lock(self) -> str:
        """The lease the worker that journals the feed holds (one journaler per namespace)."""
        return self._system("lock:journal")

    @property
    def journal(self) -> str:
        """JSON of the journal's state (position, last flush, gaps) for health and the API."""
        return self._system("journal")

    def stage(self, name: str) -> str:
        """Hash a restore fills with a very wide document's fields before it swaps them in."""
        return self._system(f"stage:{name}")

    def put_stage(self, write_id: str) -> str:
        """Hash a put of a very wide document fills, a chunk per command, before its swap."""
        return self._system(f"put:{write_id}")

    def job_lock(self, job: str) -> str:
        """The lease a run of the worker's job ``job`` holds, so two runs never overlap."""
        return self._system(f"lock:job:{job}")

    @property
    def workers(self) -> str:
        """Hash worker id -> JSON heartbeat of each running worker service."""
        return self._system("workers")

    @property
    def schedule(self) -> str:
        """JSON list of the worker's periodic jobs, published with each heartbeat."""
        return self._system("schedule")

    def runs(self, job: str) -> str:
        """Capped list of the last runs of ``job``, newest first (JSON each)."""
        return self._system(f"runs:{job}")

    def checked(self, job: str) -> str:
        """JSON of the last run of ``job`` that had nothing to do (kept out of ``runs``), with a TTL."""
        return self._system(f"checked:{job}")

    @property
    def integrity(self) -> str:
        """JSON of the last integrity check's findings."""
        return self._system("integrity")

    def name_of_data_key(self, key: str) -> str:
        """The document name of a data key (inverse of ``data``)."""
        return key[len(self.base) + 2 :]
