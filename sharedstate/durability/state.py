"""What the durability side keeps in Redis about a namespace (never documents).

* ``marker`` - set once the namespace is accounted for (restored, imported, or found fresh).
  Redis losing its data loses the marker: that, not an empty document list, triggers the
  automatic restore. Its value is the namespace's *epoch*, recorded in snapshots.
* ``floor`` - raised by a restore; every later write gets a higher version (see write.lua).
* ``sys:restore`` - the restore in progress or interrupted (snapshot id), so an interrupted
  restore is finished with the same snapshot and the namespace is never marked complete half-way.
* ``sys:catalogue`` / ``sys:snapshot`` - the snapshot list and the last snapshot run, for the API.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from sharedstate._scripts import FLOOR
from sharedstate.errors import translate_errors
from sharedstate.lease import Lease, run_script
from sharedstate.store import SharedStore

CATALOGUE = "catalogue"
LAST_SNAPSHOT = "snapshot"
RESTORE = "restore"


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def get_marker(store: SharedStore) -> str | None:
    """The namespace's epoch, or None if Redis does not know the namespace (fresh or lost)."""
    with translate_errors("read the namespace marker"):
        return _text(store.redis.get(store._core.keys.marker))


def set_marker(store: SharedStore, note: str = "") -> str:
    """Mark the namespace accounted for, with a new epoch; returns it."""
    epoch = f"{int(time.time())}-{secrets.token_hex(4)}"
    with translate_errors("set the namespace marker"):
        store.redis.set(store._core.keys.marker, epoch)
    return epoch


def clear_marker(store: SharedStore) -> None:
    """Mark the namespace incomplete (a full restore is running)."""
    with translate_errors("clear the namespace marker"):
        store.redis.delete(store._core.keys.marker)


def get_floor(store: SharedStore) -> int:
    """The namespace's version floor (0 if never raised)."""
    with translate_errors("read the version floor"):
        return int(store.redis.get(store._core.keys.floor) or 0)


def raise_floor(store: SharedStore, at_least: int) -> int:
    """Raise the version floor to ``at_least`` (never lower it); returns the floor now."""
    with translate_errors("raise the version floor"):
        return int(run_script(store.redis, FLOOR, [store._core.keys.floor], [str(at_least)]))


def feed_position(store: SharedStore) -> str:
    """Id of the newest feed entry ('0-0' if none): changes since a snapshot move it."""
    with translate_errors("read the change feed"):
        last = store.redis.xrevrange(store._core.keys.feed, count=1)
    return _text(last[0][0]) if last else "0-0"  # type: ignore[return-value]


def get_json(store: SharedStore, what: str) -> Any:
    """A JSON record under ``ss:{ns}:sys:<what>`` (None if absent)."""
    with translate_errors(f"read {what}"):
        raw = store.redis.get(store._core.keys.system(what))
    return json.loads(raw) if raw else None


def set_json(store: SharedStore, what: str, value: Any, ttl: int | None = None) -> None:
    """Store a JSON record under ``ss:{ns}:sys:<what>``."""
    with translate_errors(f"write {what}"):
        store.redis.set(store._core.keys.system(what), json.dumps(value), ex=ttl)


def delete_json(store: SharedStore, what: str) -> None:
    """Remove a record under ``ss:{ns}:sys:<what>``."""
    with translate_errors(f"remove {what}"):
        store.redis.delete(store._core.keys.system(what))


RESTORE_LEASE_TTL = 15.0
"""Seconds a restore's lease outlives its last renewal (every batch): how long a restore killed
half-way blocks the automatic one that finishes it."""


def restore_lease(store: SharedStore, ttl: float = RESTORE_LEASE_TTL) -> Lease:
    """The lease a restore holds while it runs (renewed every third of its lifetime)."""
    return Lease(store.redis, store._core.keys.system("lock:restore"), ttl)
