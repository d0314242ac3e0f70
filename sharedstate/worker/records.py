"""The worker's records in Redis, and the one place that reads and writes them.

The worker writes them (sync store); the API and ``doctor`` read them (async store or a
plain client). Keys are in ``sharedstate.keys.Keys``; every value is JSON.

* heartbeats (``Keys.workers``): one per running worker service, every few seconds;
* the schedule (``Keys.schedule``): the periodic jobs as the worker registered them;
* runs (``Keys.runs(job)``): the last ``RUNS_KEPT`` finished runs of each job, newest first;
* checks (``Keys.checked(job)``): the last run that had nothing to do (kept out of the runs);
* integrity (``Keys.integrity``): the last integrity check's findings.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from sharedstate import AsyncSharedStore, SharedStore
from sharedstate.errors import translate_errors
from sharedstate.jsonio import load_record
from sharedstate.keys import Keys

RUNS_KEPT = 50
"""Runs kept per job."""

CHECKED_TTL = 86400
"""Seconds a "nothing to do" note is kept."""

HEARTBEAT_STALE = 30.0
"""Seconds without a heartbeat after which a worker counts as gone."""


def _with_ages(raw: dict[Any, Any]) -> list[dict[str, Any]]:
    now = time.time()
    beats = [beat for beat in map(load_record, raw.values()) if beat is not None]
    for beat in beats:
        beat["age"] = round(now - beat.get("heartbeat_at", 0), 1)
        beat["alive"] = beat["age"] <= HEARTBEAT_STALE
    return sorted(beats, key=lambda beat: beat["age"])


# -- written by the worker ---------------------------------------------------------------------


def publish_heartbeat(store: SharedStore, worker_id: str, beat: dict[str, Any], schedule: list[Any]) -> None:
    """This worker's heartbeat and the schedule it runs, in one round trip."""
    with translate_errors("publish the heartbeat"):
        pipe = store.redis.pipeline(transaction=False)
        pipe.hset(store.keys.workers, worker_id, json.dumps(beat))
        pipe.set(store.keys.schedule, json.dumps(schedule))
        pipe.execute()


def remove_heartbeat(store: SharedStore, worker_id: str) -> None:
    """Forget a worker that stopped."""
    with translate_errors("remove the heartbeat"):
        store.redis.hdel(store.keys.workers, worker_id)


def record_run(store: SharedStore, job: str, run: dict[str, Any]) -> None:
    """Add a finished run (status ok | failed | skipped | timeout) to the job's history.

    A failure repeating the newest one (same status and error) replaces it and is counted
    (``repeats``, ``first_at``), so a job failing every minute keeps one record, not one each.
    """
    key = store.keys.runs(job)
    with translate_errors(f"record a run of {job}"):
        newest_raw = store.redis.lindex(key, 0) if run.get("status") in ("failed", "timeout") else None
        newest = load_record(newest_raw)
        if (
            newest
            and (newest.get("status"), newest.get("error")) == (run.get("status"), run.get("error"))
            and newest.get("retry_in") is None  # a retry's attempts each keep their own record
            and run.get("retry_in") is None
        ):
            run = {**run, "repeats": int(newest.get("repeats", 1)) + 1,
                   "first_at": newest.get("first_at", newest.get("started_at"))}  # fmt: skip
            store.redis.lset(key, 0, json.dumps(run, default=str))  # the job's lease keeps writers apart
            return
        pipe = store.redis.pipeline(transaction=True)
        pipe.lpush(key, json.dumps(run, default=str))
        pipe.ltrim(key, 0, RUNS_KEPT - 1)
        pipe.execute()


def record_check(store: SharedStore, job: str, detail: str) -> None:
    """Note a run that had nothing to do, without filling the history."""
    with translate_errors(f"record a check of {job}"):
        store.redis.set(
            store.keys.checked(job), json.dumps({"at": time.time(), "detail": detail}), ex=CHECKED_TTL
        )


def record_integrity(store: SharedStore, findings: dict[str, Any]) -> None:
    """The integrity check's findings."""
    with translate_errors("record the integrity check"):
        store.redis.set(store.keys.integrity, json.dumps(findings))


def heartbeats_of(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every heartbeat with its ``age`` and ``alive``, freshest first (for ``doctor``)."""
    return _with_ages(client.hgetall(keys.workers))


# -- read by the API ---------------------------------------------------------------------------


async def heartbeats(store: AsyncSharedStore) -> list[dict[str, Any]]:
    """Every heartbeat with its ``age`` and ``alive``, freshest first."""
    with translate_errors("read the worker heartbeats"):
        return _with_ages(await store.redis.hgetall(store.keys.workers))


async def schedule(store: AsyncSharedStore) -> list[dict[str, Any]]:
    """The published schedule ([] before a worker published one)."""
    with translate_errors("read the schedule"):
        jobs = load_record(await store.redis.get(store.keys.schedule), list) or []
    return [job for job in jobs if isinstance(job, dict)]


async def runs(store: AsyncSharedStore, job: str, limit: int = RUNS_KEPT) -> list[dict[str, Any]]:
    """The job's last runs, newest first."""
    with translate_errors(f"read the runs of {job}"):
        raw = await store.redis.lrange(store.keys.runs(job), 0, min(limit, RUNS_KEPT) - 1)
    return [run for run in map(load_record, raw) if run is not None]


async def checked(store: AsyncSharedStore, job: str) -> dict[str, Any] | None:
    """The job's last run that had nothing to do, if any in the last day."""
    with translate_errors(f"read the checks of {job}"):
        return load_record(await store.redis.get(store.keys.checked(job)))  # type: ignore[no-any-return]


async def integrity(store: AsyncSharedStore) -> dict[str, Any] | None:
    """The last integrity check's findings (None before the first)."""
    with translate_errors("read the integrity check"):
        return load_record(await store.redis.get(store.keys.integrity))  # type: ignore[no-any-return]
