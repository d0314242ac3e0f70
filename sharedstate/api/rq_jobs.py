"""RQ from the API: enqueue work for the worker, read job status and the cron schedule.

RQ is synchronous; every call runs in a thread so handlers never block the event loop.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import redis
from rq import Queue
from rq.cron import CronScheduler
from rq.exceptions import NoSuchJobError
from rq.job import Job

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RESULT_TTL = 24 * 3600


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value else None


async def enqueue(
    connection: redis.Redis, queue: str, func: str, kwargs: dict[str, Any], job_timeout: int, failure_ttl: int
) -> str:
    """Enqueue ``func`` (an import path the worker resolves) and return the job id."""

    def put() -> str:
        job = Queue(queue, connection=connection).enqueue(
            func, kwargs=kwargs, job_timeout=job_timeout, result_ttl=RESULT_TTL, failure_ttl=failure_ttl
        )
        return str(job.id)

    return await asyncio.to_thread(put)


async def status(connection: redis.Redis, job_id: str) -> dict[str, Any] | None:
    """One RQ job's state, result and error; None if RQ does not know it (or forgot it)."""

    def read() -> dict[str, Any] | None:
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            return None
        state = job.get_status(refresh=False)
        latest = job.latest_result()
        error = None
        if latest is not None and latest.exc_string:
            error = latest.exc_string.strip().splitlines()[-1][:500]
        return {
            "id": job.id,
            "status": str(state.value if state is not None else "unknown"),
            "func": job.func_name,
            "enqueued_at": _epoch(job.enqueued_at),
            "started_at": _epoch(job.started_at),
            "ended_at": _epoch(job.ended_at),
            "result": job.return_value(refresh=False) if latest is not None else None,
            "error": error,
        }

    return await asyncio.to_thread(read)


async def next_runs(connection: redis.Redis, namespace: str) -> dict[str, float]:
    """When RQ's cron scheduler(s) will next enqueue each of the namespace's jobs."""

    def read() -> dict[str, float]:
        found: dict[str, float] = {}
        prefix = f"{namespace}:"
        for scheduler in CronScheduler.all(connection, cleanup=False):
            for job in scheduler.get_jobs():
                if job.name.startswith(prefix) and job.next_enqueue_time is not None:
                    name = job.name[len(prefix) :]
                    when = job.next_enqueue_time.timestamp()
                    found[name] = min(found.get(name, when), when)
        return found

    try:
        return await asyncio.to_thread(read)
    except redis.RedisError:
        return {}
