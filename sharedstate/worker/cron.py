"""The cron process: RQ 3's own CronScheduler with our jobs, cron expressions in UTC.

Run by the supervisor as ``python -m sharedstate.worker.cron``. RQ's scheduler exits (code 1) when Redis
is unreachable for a few seconds; the supervisor starts it again with backoff.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

import redis
from rq.cron import CronScheduler

from sharedstate.settings import Settings
from sharedstate.worker.process import supervised_child
from sharedstate.worker.schedule import scheduled_jobs


def use_utc() -> None:
    """Make this process's local time UTC: RQ evaluates cron strings in local time."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def main() -> int:
    supervised_child()
    use_utc()
    settings = Settings.load()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s cron: %(message)s", stream=sys.stderr
    )
    if settings.log_level != "DEBUG":  # a line per enqueued job: the idle worker's chatter
        logging.getLogger("rq.cron").setLevel(logging.WARNING)
    connection = redis.Redis.from_url(settings.require_redis_url())  # RQ's own client, never the store's
    scheduler = CronScheduler(
        connection=connection, name=f"sharedstate.{settings.namespace}.{socket.gethostname()}.{os.getpid()}"
    )
    for job in scheduled_jobs(settings):
        if job.in_supervisor:
            continue
        scheduler.register(
            job.func,
            job.queue,
            kwargs=job.kwargs or None,
            cron=job.cron,
            interval=job.interval,
            job_timeout=job.timeout,
            result_ttl=job.result_ttl,
            failure_ttl=settings.failed_job_ttl,  # short: a job failing every minute stays bounded
            name=f"{settings.namespace}:{job.name}",
        )
    scheduler.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
