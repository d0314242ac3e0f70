"""Restores the API runs itself, from a backup bucket every service reaches (no worker needed).

Each runs in a thread of the API process as a recorded RQ job: ``GET /v1/jobs/{id}`` shows it
like a worker's job, but no queue holds it, so no worker ever runs it a second time. The
restore itself is the library's, under its restore lease: one at a time per namespace, whoever
asks for it (the API, the worker or a hand-run ``sharedstate restore``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from rq.job import Job, JobStatus
from rq.results import Result

from sharedstate.api.rq_jobs import RESULT_TTL
from sharedstate.durability.format import SUFFIX
from sharedstate.durability.restore import restore_newest, restore_snapshot
from sharedstate.durability.snapshots import list_snapshots
from sharedstate.durability.target import Target
from sharedstate.errors import SnapshotError
from sharedstate.settings import Settings
from sharedstate.store import SharedStore

log = logging.getLogger("sharedstate.api.audit")

RUNNING_TTL = 6 * 3600  # a run whose API process died is forgotten after this


def restore_from(settings: Settings, target: Target, snapshot_id: str, documents: list[str] | None,
                 force: bool) -> dict[str, Any]:  # fmt: skip
    """Restore one snapshot of the bucket (fill in, or with ``force`` roll back); the report."""
    entry = next((e for e in list_snapshots(target, settings.namespace) if e.id == snapshot_id), None)
    if entry is None or not snapshot_id.endswith(SUFFIX):
        raise SnapshotError(snapshot_id, "no such snapshot on the backup target")
    with SharedStore.from_settings(settings, client_name="api-restore", cache=False) as store:
        report = restore_snapshot(
            store, entry.path, only=documents, force=force,
            lease_ttl=settings.restore_lease_ttl, key=settings.signing_key,
        )  # fmt: skip
    return report.to_dict()


def restore_to(settings: Settings, target: Target, at: float, documents: list[str] | None) -> dict[str, Any]:
    """Roll back to the state at ``at`` (the newest snapshot complete by then plus the journal up
    to it); the report."""
    with SharedStore.from_settings(settings, client_name="api-restore", cache=False) as store:
        report = restore_newest(
            store, target, only=documents, force=True, at=at,
            lease_ttl=settings.restore_lease_ttl, key=settings.signing_key, publish=True,
        )  # fmt: skip
    if report is None:
        raise SnapshotError(target.description, "no snapshot to restore from")
    return report.to_dict()


async def run_here(connection: redis.Redis, func: str, kwargs: dict[str, Any],
                   body: Callable[[], dict[str, Any]], failure_ttl: int) -> str:  # fmt: skip
    """Record an RQ job for ``func(**kwargs)`` and run ``body`` for it in a thread; the job id
    (its status, result or error then read like a worker's job)."""

    def record() -> Job:
        job = Job.create(func, kwargs=kwargs, connection=connection, result_ttl=RESULT_TTL,
                         failure_ttl=failure_ttl, status=JobStatus.STARTED)  # fmt: skip
        job.started_at = datetime.now(UTC)
        job.save()
        job.cleanup(RUNNING_TTL)
        return job

    job = await asyncio.to_thread(record)
    threading.Thread(
        target=_perform, args=(job, body, failure_ttl), daemon=True, name=f"restore-{job.id}"
    ).start()
    return str(job.id)


def _perform(job: Job, body: Callable[[], dict[str, Any]], failure_ttl: int) -> None:
    started = job.started_at
    value: dict[str, Any] | None = None
    error = ""
    try:
        value = body()
    except Exception as exc:  # recorded as the job's failure, as an RQ worker would
        log.error("restore job %s failed: %s", job.id, exc)
        error = traceback.format_exc()
    else:
        log.info("restore job %s finished: %s", job.id, value.get("description", ""))
    ended = datetime.now(UTC)
    try:
        if value is None:
            Result.create_failure(job, failure_ttl, error, worker_name="api",
                                  execution_started_at=started, execution_ended_at=ended)  # fmt: skip
        else:
            Result.create(job, Result.Type.SUCCESSFUL, RESULT_TTL, return_value=value, worker_name="api",
                          execution_started_at=started, execution_ended_at=ended)  # fmt: skip
        job.ended_at = ended
        job.set_status(JobStatus.FINISHED if value is not None else JobStatus.FAILED)
        job.save()
        job.cleanup(RESULT_TTL if value is not None else failure_ttl)
    except redis.RedisError as exc:  # the restore's outcome is in the log above
        log.error("restore job %s: could not record its outcome: %s", job.id, type(exc).__name__)
