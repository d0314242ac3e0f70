"""Per-process state of job code: settings and a store, made on first use in each process.

RQ runs every job in a forked work horse; a store made here belongs to that process.
"""

from __future__ import annotations

import contextvars
import os

from sharedstate.settings import Settings
from sharedstate.store import SharedStore

_store: SharedStore | None = None
_store_pid = 0
_settings: Settings | None = None

fence: contextvars.ContextVar[int | None] = contextvars.ContextVar("fence", default=None)
"""Fencing token of the lease the running job holds (None outside a job)."""


def settings() -> Settings:
    """The worker's settings (read once per process)."""
    global _settings
    if _settings is None:
        _settings = Settings.load()
    return _settings


def store() -> SharedStore:
    """A store of the configured namespace for the current process."""
    global _store, _store_pid
    if _store is None or _store_pid != os.getpid():
        config = settings()
        _store = SharedStore.from_url(
            config.require_redis_url(),
            config.namespace,
            config.client_name or "worker",
            timeout=config.timeout,
            max_document_bytes=config.max_document_bytes,
            feed_maxlen=config.feed_maxlen,
            history_limit=config.history_limit,
            payload_limit=config.payload_limit,
        )
        _store_pid = os.getpid()
    return _store


def current_fence() -> int | None:
    """The fencing token of the lease held by the running job: tag external side effects with it."""
    return fence.get()
