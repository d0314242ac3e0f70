"""Per-process state of job code: settings and a store, made on first use in each process.

RQ runs every job in a forked work horse; a store made here belongs to that process.
"""

from __future__ import annotations

import contextvars
import os

from sharedstate.durability.target import Target
from sharedstate.settings import Settings
from sharedstate.store import SharedStore

_store: SharedStore | None = None
_store_pid = 0
_settings: Settings | None = None
_target: Target | None = None

fence: contextvars.ContextVar[int | None] = contextvars.ContextVar("fence", default=None)
"""Fencing token of the lease the running job holds (None outside a job)."""


def settings() -> Settings:
    """The worker's settings (read once per process)."""
    global _settings
    if _settings is None:
        _settings = Settings.load()
    return _settings


def use_settings(given: Settings) -> None:
    """Use ``given`` in this process (and the children it forks) instead of the environment's."""
    global _settings, _target
    _settings = given
    _target = None


def store() -> SharedStore:
    """A store of the configured namespace for the current process."""
    global _store, _store_pid
    if _store is None or _store_pid != os.getpid():
        _store = SharedStore.from_settings(settings(), client_name="worker")
        _store_pid = os.getpid()
    return _store


def target() -> Target:
    """Where backups live (``SHAREDSTATE_BACKUP_URL``): the volume's directory or a bucket."""
    global _target
    if _target is None:
        _target = settings().backup_target()
    return _target


def current_fence() -> int | None:
    """The fencing token of the lease held by the running job: tag external side effects with it."""
    return fence.get()
