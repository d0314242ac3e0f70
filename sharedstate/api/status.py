"""What the API reports about the system: catalogue, workers, jobs, health.

Everything here is read from Redis, where the worker publishes it (``ss:{ns}:sys:*``): the
API never mounts the volume. No figure ever contains a Redis URL, password or token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import redis.exceptions

from sharedstate import AsyncSharedStore, usage
from sharedstate.api import rq_jobs
from sharedstate.durability import state as state_records
from sharedstate.durability.snapshots import catalogue_rows, list_snapshots
from sharedstate.errors import SharedStateError, StoreUnavailable, translate_errors
from sharedstate.persistence import assess, journal_live
from sharedstate.worker import names, records

if TYPE_CHECKING:
    from sharedstate.api.deps import AppState

log = logging.getLogger("sharedstate.api")


async def snapshot_rows(state: AppState) -> list[dict[str, Any]]:
    """The snapshots the API shows: listed from the backup target itself when every service can
    reach it (a bucket), else the catalogue the worker publishes."""
    published: list[dict[str, Any]] = (await catalogue(state.store))["snapshots"]
    target = state.shared_target()
    if target is None:
        return published
    try:
        entries = await asyncio.to_thread(list_snapshots, target, state.settings.namespace)
    except SharedStateError as exc:
        log.warning("cannot list the backup bucket (%s): showing the worker's catalogue", exc)
        return published
    return catalogue_rows(entries, published)


async def catalogue(store: AsyncSharedStore) -> dict[str, Any]:
    """The snapshot catalogue the worker publishes (empty before it did)."""
    return await state_records.catalogue_of(store)


async def live_workers(store: AsyncSharedStore) -> list[dict[str, Any]]:
    """Workers that sent a heartbeat recently."""
    return [beat for beat in await records.heartbeats(store) if beat["alive"]]


async def scheduled_jobs(state: AppState, runs: int) -> list[dict[str, Any]]:
    """The published schedule with next runs and last runs ([] before a worker published one)."""
    store = state.store
    schedule = await records.schedule(store)
    if not schedule:
        return []
    upcoming = await rq_jobs.next_runs(state.rq, store.namespace)
    rows = []
    for job in [
        *schedule,
        {
            "name": names.RESTORE,
            "queue": names.maintenance_queue(store.namespace),
            "cron": None,
            "interval": None,
            "timeout": 3600,
        },
    ]:
        checked = await records.checked(store, job["name"])
        rows.append(
            {
                **job,
                "next_run": upcoming.get(job["name"]),
                "last_checked": checked["at"] if checked else None,
                "last_runs": await records.runs(store, job["name"], runs),
            }
        )
    return rows


async def _redis_settings(store: AsyncSharedStore) -> tuple[float, dict[str, Any], str | None]:
    """Latency (ms), INFO and the ``save`` setting (empty / None where disabled)."""
    client = store.redis
    started = time.perf_counter()
    with translate_errors("ping Redis"):
        await client.ping()
    latency = round((time.perf_counter() - started) * 1000, 3)
    try:
        info = await client.info()
    except redis.exceptions.ResponseError:  # INFO disabled (some managed services)
        info = {}
    try:
        save = (await client.config_get("save")).get("save")
    except redis.exceptions.ResponseError:  # CONFIG disabled
        save = None
    return latency, info, save


async def namespace_usage(store: AsyncSharedStore, budget: int) -> dict[str, Any] | None:
    """The namespace's memory and feed budget (None where MEMORY is disabled)."""
    try:
        with translate_errors("measure the namespace"):
            first = await _pipelined(store, usage.first_commands(store.keys))
            sampled = await _pipelined(store, usage.sample_commands(store.keys, first))
    except redis.exceptions.ResponseError:
        return None
    return usage.usage_of(first, sampled, budget)


async def _pipelined(store: AsyncSharedStore, commands: list[tuple[Any, ...]]) -> list[Any]:
    pipe = store.redis.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(await pipe.execute())


def _journal(
    record: dict[str, Any] | None,
    alive: bool,
    newest_snapshot: float | None,
    now: float,
    warnings: list[str],
) -> dict[str, Any] | None:
    """The journal's figures (None before it ever ran); ``degraded`` when it stopped reporting
    while a worker runs, or a gap is not yet covered by a snapshot."""
    if record is None:
        return None
    degraded = False
    silent = now - float(record.get("updated_at") or 0)
    if alive and not journal_live(record, alive, now):
        degraded = True
        warnings.append(f"the journal has not reported for {silent:.0f} s: changes may not reach the backups")
    gap = record.get("last_gap") or None
    if gap and (newest_snapshot is None or newest_snapshot < float(gap.get("at", 0))):
        degraded = True
        warnings.append(f"the journal has a gap ({gap.get('reason')}) that no snapshot covers yet")
    flushed = record.get("flushed_at")
    return {
        "position": record.get("position"),
        "flushed_age": round(now - float(flushed), 1) if flushed else None,
        "reported_age": round(silent, 1),
        "entries": record.get("entries"),
        "gaps": record.get("gaps"),
        "last_gap": gap,
        "degraded": degraded,
    }


async def health(state: AppState) -> dict[str, Any]:
    """Every figure of /v1/health with the overall status (ok, degraded, down)."""
    store = state.store
    try:
        latency, info, save = await _redis_settings(store)
    except StoreUnavailable as exc:
        return {
            "status": "down",
            "warnings": [f"Redis is unreachable: {exc}"],
            "redis": {"reachable": False},
            "worker": {},
            "snapshots": {},
            "jobs": {},
            "documents": None,
            "integrity": None,
        }
    now = time.time()
    beats = await records.heartbeats(store)
    alive = [beat for beat in beats if beat["alive"]]
    journal_record = await state_records.journal_state_of(store)
    found = assess(info, save, journaled=journal_live(journal_record, bool(alive), now))
    redis_figures = {"reachable": True, "latency_ms": latency, **found.figures}
    warnings, degraded = found.warnings, found.degraded
    if not alive:
        degraded = True
        warnings.append(
            "no worker heartbeat in the last 30 s: no snapshots and no scheduled jobs are running"
        )
    cat = await catalogue(store)
    good = [row for row in cat["snapshots"] if row["status"] != "corrupt"]
    newest = max((row["created_at"] for row in good), default=None)
    checked = await records.checked(store, names.SNAPSHOT)
    last_check = max(filter(None, [newest, checked["at"] if checked else None]), default=None)
    snapshot_runs = await records.runs(store, names.SNAPSHOT, 1)
    last_run = snapshot_runs[0] if snapshot_runs else None
    with translate_errors("count documents"):
        documents = int(await store.redis.scard(store.keys.names))
    stale_after = max(3 * state.settings.snapshot_interval, 300)
    if last_run is not None and last_run["status"] in ("failed", "timeout"):
        degraded = True
        warnings.append(f"the last snapshot failed: {last_run.get('error')}")
    elif last_run is not None and (last_run.get("result") or {}).get("undecodable"):
        degraded = True
        bad = [item["name"] for item in last_run["result"]["undecodable"]]
        warnings.append(
            f"the last snapshot left out {len(bad)} undecodable document(s): {', '.join(bad[:10])}"
        )
    elif alive and documents and (last_check is None or now - last_check > stale_after):
        degraded = True
        warnings.append(f"no snapshot or snapshot check in the last {stale_after} s")
    failed = []
    # scheduled jobs, and the restores asked for (from the API or at start-up): a failed one
    # leaves the namespace degraded until that job next succeeds
    jobs = [job["name"] for job in await records.schedule(store)]
    jobs += [job for job in (names.RESTORE, names.AUTO_RESTORE) if job not in jobs]
    for job_name in jobs:
        last = await records.runs(store, job_name, 1)
        if last and last[0]["status"] in ("failed", "timeout"):
            failed.append({"job": job_name, "at": last[0].get("ended_at"), "error": last[0].get("error")})
    if failed:
        degraded = True
        warnings.append(f"last run failed: {', '.join(item['job'] for item in failed)}")
    journal = _journal(journal_record, bool(alive), newest, now, warnings)
    if journal is not None and journal.pop("degraded"):
        degraded = True
    usage = await namespace_usage(store, state.settings.history_budget)
    integrity = await records.integrity(store)
    if integrity and integrity.get("count"):
        degraded = True
        warnings.append(f"the integrity check found {integrity['count']} problem(s)")
    return {
        "status": "degraded" if degraded else "ok",
        "warnings": warnings,
        "redis": redis_figures,
        "worker": {"alive": bool(alive), "workers": beats},
        "snapshots": {
            "count": len(cat["snapshots"]),
            "newest_id": next((row["id"] for row in good if row["created_at"] == newest), None),
            "newest_age": round(now - newest, 1) if newest else None,
            "last_check_age": round(now - last_check, 1) if last_check else None,
            "last_run": last_run
            and {key: last_run.get(key) for key in ("status", "ended_at", "error", "reason")},
        },
        "jobs": {"failed": failed},
        "journal": journal,
        "documents": documents,
        "usage": usage,
        "integrity": integrity,
    }
