"""What the durability side keeps in Redis about a namespace (never documents).

* ``marker`` - set once the namespace is accounted for (restored, imported, or found fresh).
  Redis losing its data loses the marker: that, not an empty document list, triggers the
  automatic restore. Its value is the namespace's *epoch*, recorded in snapshots.
* ``floor`` - raised by a restore; every later write gets a higher version (see write.lua).
* ``Keys.restore_intent`` - the restore in progress or interrupted (snapshot id), so an interrupted
  restore is finished with the same snapshot and the namespace is never marked complete half-way.
* ``Keys.restore_lock`` - the lease of the restore that is writing.
* ``Keys.journal_lock`` / ``Keys.journal`` - the journaler's lease and its published state.
* ``Keys.catalogue`` / ``Keys.last_snapshot`` - the snapshot list (for the API) and the last
  snapshot taken (so an unchanged namespace is not snapshotted again).

This module is the one that reads and writes them.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis

from sharedstate._scripts import FLOOR
from sharedstate.aio import AsyncSharedStore
from sharedstate.errors import translate_errors
from sharedstate.jsonio import load_record
from sharedstate.keys import Keys
from sharedstate.lease import Lease, run_script
from sharedstate.store import SharedStore

EMPTY_CATALOGUE: dict[str, Any] = {"updated_at": None, "snapshots": []}


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def get_marker(store: SharedStore) -> str | None:
    """The namespace's epoch, or None if Redis does not know the namespace (fresh or lost)."""
    with translate_errors("read the namespace marker"):
        return _text(store.redis.get(store.keys.marker))


def set_marker(store: SharedStore, note: str = "") -> str:
    """Mark the namespace accounted for, with a new epoch; returns it."""
    epoch = f"{int(time.time())}-{secrets.token_hex(4)}"
    with translate_errors("set the namespace marker"):
        store.redis.set(store.keys.marker, epoch)
    return epoch


def clear_marker(store: SharedStore) -> None:
    """Mark the namespace incomplete (a full restore is running)."""
    with translate_errors("clear the namespace marker"):
        store.redis.delete(store.keys.marker)


def get_floor(store: SharedStore) -> int:
    """The namespace's version floor (0 if never raised)."""
    with translate_errors("read the version floor"):
        return int(store.redis.get(store.keys.floor) or 0)


def raise_floor(store: SharedStore, at_least: int) -> int:
    """Raise the version floor to ``at_least`` (never lower it); returns the floor now."""
    with translate_errors("raise the version floor"):
        return int(run_script(store.redis, FLOOR, [store.keys.floor], [str(at_least)]))


def feed_position(store: SharedStore) -> str:
    """Id of the newest feed entry ('0-0' if none): changes since a snapshot move it."""
    with translate_errors("read the change feed"):
        last = store.redis.xrevrange(store.keys.feed, count=1)
    return _text(last[0][0]) if last else "0-0"  # type: ignore[return-value]


async def feed_position_of(store: AsyncSharedStore) -> str:
    """``feed_position`` for the asyncio client (the API's event streams start there)."""
    with translate_errors("read the change feed"):
        last = await store.redis.xrevrange(store.keys.feed, count=1)
    return _text(last[0][0]) if last else "0-0"  # type: ignore[return-value]


def _get_json(store: SharedStore, key: str, what: str) -> Any:
    with translate_errors(f"read {what}"):
        raw = store.redis.get(key)
    return load_record(raw)


def _set_json(store: SharedStore, key: str, what: str, value: Any) -> None:
    with translate_errors(f"write {what}"):
        store.redis.set(key, json.dumps(value))


def _delete(store: SharedStore, key: str, what: str) -> None:
    with translate_errors(f"remove {what}"):
        store.redis.delete(key)


def catalogue(store: SharedStore) -> dict[str, Any]:
    """The published snapshot catalogue (empty before the worker published one)."""
    return _catalogue(_get_json(store, store.keys.catalogue, "the snapshot catalogue"))


def _catalogue(value: dict[str, Any] | None) -> dict[str, Any]:
    """The catalogue as published, or an empty one when absent or garbled (rows included)."""
    rows = value.get("snapshots") if value is not None else None
    if value is None or not isinstance(rows, list) or not all(_is_row(row) for row in rows):
        return dict(EMPTY_CATALOGUE)
    return value


def _is_row(row: Any) -> bool:
    return isinstance(row, dict) and isinstance(row.get("id"), str)


def set_catalogue(store: SharedStore, value: dict[str, Any]) -> None:
    """Publish the snapshot catalogue (the worker's job: see ``snapshots.publish_catalogue``)."""
    _set_json(store, store.keys.catalogue, "the snapshot catalogue", value)


async def catalogue_of(store: AsyncSharedStore) -> dict[str, Any]:
    """``catalogue`` for the asyncio client (the API)."""
    with translate_errors("read the snapshot catalogue"):
        raw = await store.redis.get(store.keys.catalogue)
    return _catalogue(load_record(raw))


def last_snapshot(store: SharedStore) -> dict[str, Any] | None:
    """The record of the last snapshot taken (None before the first)."""
    return _get_json(store, store.keys.last_snapshot, "the last snapshot")  # type: ignore[no-any-return]


def set_last_snapshot(store: SharedStore, record: dict[str, Any]) -> None:
    """Remember the snapshot just taken."""
    _set_json(store, store.keys.last_snapshot, "the last snapshot", record)


def restore_intent(store: SharedStore) -> dict[str, Any] | None:
    """The restore in progress or interrupted (None if none)."""
    return _get_json(store, store.keys.restore_intent, "the restore in progress")  # type: ignore[no-any-return]


def set_restore_intent(store: SharedStore, intent: dict[str, Any]) -> None:
    """Note the restore about to write, so an interruption is finished with the same snapshot."""
    _set_json(store, store.keys.restore_intent, "the restore in progress", intent)


def clear_restore_intent(store: SharedStore) -> None:
    """The restore finished (or was abandoned on purpose)."""
    _delete(store, store.keys.restore_intent, "the restore in progress")


RESTORE_LEASE_TTL = 15.0
"""Seconds a restore's lease outlives its last renewal (every batch): how long a restore killed
half-way blocks the automatic one that finishes it."""


def restore_lease(store: SharedStore, ttl: float = RESTORE_LEASE_TTL) -> Lease:
    """The lease a restore holds while it runs (renewed every third of its lifetime)."""
    return Lease(store.redis, store.keys.restore_lock, ttl)


JOURNAL_LEASE_TTL = 10.0
"""Seconds the journaler's lease outlives its last renewal: how long a second worker waits
before it takes over journaling from one that died."""


def journal_lease(store: SharedStore, ttl: float = JOURNAL_LEASE_TTL) -> Lease:
    """The lease of the one worker that journals the namespace's feed."""
    return Lease(store.redis, store.keys.journal_lock, ttl)


def journal_state(store: SharedStore) -> dict[str, Any] | None:
    """The journal's published state (None before any journaler ran)."""
    return _get_json(store, store.keys.journal, "the journal state")  # type: ignore[no-any-return]


def set_journal_state(store: SharedStore, value: dict[str, Any]) -> None:
    """Publish the journal's state (the journaler's job)."""
    _set_json(store, store.keys.journal, "the journal state", value)


async def journal_state_of(store: AsyncSharedStore) -> dict[str, Any] | None:
    """``journal_state`` for the API."""
    with translate_errors("read the journal state"):
        raw = await store.redis.get(store.keys.journal)
    return load_record(raw)  # type: ignore[no-any-return]


def journal_state_at(client: redis.Redis, keys: Keys) -> dict[str, Any] | None:
    """``journal_state`` through a plain client (for ``doctor``)."""
    return load_record(client.get(keys.journal))  # type: ignore[no-any-return]
