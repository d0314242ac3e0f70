"""Restores the API runs itself, from a backup bucket every service reaches (no worker needed).

Each runs in a thread of the API process as a recorded RQ job: ``GET /v1/jobs/{id}`` shows it
like a worker's job, but no queue holds it, so no worker ever runs it a second time. The
restore itself is the library's, under its restore lease: one at a time per namespace, whoever
asks for it (the API, the worker or a hand-run ``sharedstate restore``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
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
from sharedstate.errors import SharedStateError, SnapshotError
from sharedstate.settings import Settings
from sharedstate.store import SharedStore
from sharedstate.worker import names, records

log = logging.getLogger("sharedstate.api.audit")

RUNNING_TTL = 6 * 3600  # a run whose API process died is forgotten after this


def restore_from(store: SharedStore, settings: Settings, target: Target, *, snapshot_id: str,
                 documents: list[str] | None, force: bool) -> dict[str, Any]:  # fmt: skip
    """Restore one snapshot of the bucket (fill in, or with ``force`` roll back); the report."""
    entry = next((e for e in list_snapshots(target, settings.namespace) if e.id == snapshot_id), None)
    if entry is None or not snapshot_id.endswith(SUFFIX):
        raise SnapshotError(snapshot_id, "no such snapshot on the backup target")
    report = restore_snapshot(
        store, entry.path, only=documents, force=force,
        lease_ttl=settings.restore_lease_ttl, key=settings.signing_key,
    )  # fmt: skip
    return report.to_dict()


def restore_to(store: SharedStore, settings: Settings, target: Target, *, at: float,
               documents: list[str] | None) -> dict[str, Any]:  # fmt: skip
    """Roll back to the state at ``at`` (the newest snapshot complete by then plus the journal up
    to it); the report."""
    # not publish=True: only the worker publishes the catalogue
    report = restore_newest(
        store, target, only=documents, force=True, at=at,
        lease_ttl=settings.restore_lease_ttl, key=settings.signing_key,
    )  # fmt: skip
    if report is None:
        raise SnapshotError(target.description, "no snapshot to restore from")
    return report.to_dict()


Body = Callable[[SharedStore], dict[str, Any]]


async def run_here(connection: redis.Redis, settings: Settings, func: str, kwargs: dict[str, Any],
                   body: Body) -> str:  # fmt: skip
    """Record an RQ job for ``func(**kwargs)`` and run ``body`` for it in a thread; the job id.
    Its status, and its result (the run, as the worker's jobs return it) or error, then read like
    a worker's job, and the run is recorded among the restore job's last runs."""

    def record() -> Job:
        job = Job.create(func, kwargs=kwargs, connection=connection, result_ttl=RESULT_TTL,
                         failure_ttl=settings.failed_job_ttl, status=JobStatus.STARTED)  # fmt: skip
        job.started_at = datetime.now(UTC)
        job.save()
        job.cleanup(RUNNING_TTL)
        return job

    job = await asyncio.to_thread(record)
    threading.Thread(
        target=_perform, args=(job, settings, body), daemon=True, name=f"restore-{job.id}"
    ).start()
    return str(job.id)


def _perform(job: Job, settings: Settings, body: Body) -> None:
    started = job.started_at
    run: dict[str, Any] = {"job": names.RESTORE, "rq_job": job.id, "started_at": time.time(),
                           "worker": f"api:{socket.gethostname()}:{os.getpid()}"}  # fmt: skip
    error = ""
    with SharedStore.from_settings(settings, client_name="api-restore", cache=False) as store:
        try:
            run.update(status="ok", result=body(store))
        except Exception as exc:  # recorded as the job's failure, as an RQ worker would
            log.error("restore job %s failed: %s", job.id, exc)
            error = traceback.format_exc()
            run.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            log.info("restore job %s finished: %s", job.id, run["result"].get("description", ""))
        run["ended_at"] = time.time()
        ended = datetime.now(UTC)
        ok = run["status"] == "ok"
        try:
            records.record_run(store, names.RESTORE, run)
            if ok:
                Result.create(job, Result.Type.SUCCESSFUL, RESULT_TTL, return_value=run, worker_name="api",
                              execution_started_at=started, execution_ended_at=ended)  # fmt: skip
            else:
                Result.create_failure(job, settings.failed_job_ttl, error, worker_name="api",
                                      execution_started_at=started, execution_ended_at=ended)  # fmt: skip
            job.ended_at = ended
            job.set_status(JobStatus.FINISHED if ok else JobStatus.FAILED)
            job.save()
            job.cleanup(RESULT_TTL if ok else settings.failed_job_ttl)
        except (redis.RedisError, SharedStateError) as exc:  # the outcome is in the log above
            log.error("restore job %s: could not record its outcome: %s", job.id, type(exc).__name__)
