"""Records of job runs in Redis, for the API: ``ss:{ns}:sys:runs:<job>``, newest first, capped."""

from __future__ import annotations

import json
import time
from typing import Any

from sharedstate.errors import translate_errors
from sharedstate.store import SharedStore

KEEP = 50
"""Runs kept per job."""


def _key(store: SharedStore, job: str) -> str:
    return store._core.keys.system(f"runs:{job}")


def record(store: SharedStore, job: str, run: dict[str, Any]) -> None:
    """Add a finished run (status ok | failed | skipped | timeout) to the job's history."""
    with translate_errors(f"record a run of {job}"):
        pipe = store.redis.pipeline(transaction=True)
        pipe.lpush(_key(store, job), json.dumps(run, default=str))
        pipe.ltrim(_key(store, job), 0, KEEP - 1)
        pipe.execute()


def touch(store: SharedStore, job: str, detail: str) -> None:
    """Note a run that had nothing to do, without filling the history (``sys:checked:<job>``)."""
    with translate_errors(f"record a check of {job}"):
        store.redis.set(
            store._core.keys.system(f"checked:{job}"),
            json.dumps({"at": time.time(), "detail": detail}),
            ex=86400,
        )


def last_runs(store: SharedStore, job: str, limit: int = KEEP) -> list[dict[str, Any]]:
    """The job's last runs, newest first."""
    with translate_errors(f"read the runs of {job}"):
        raw = store.redis.lrange(_key(store, job), 0, limit - 1)
    return [json.loads(item) for item in raw]
