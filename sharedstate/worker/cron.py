"""The cron process: RQ 3's own CronScheduler with our jobs, cron expressions in UTC.

Run by the supervisor as ``python -m sharedstate.worker.cron``. RQ's scheduler stops when Redis is
unreachable for a few seconds; this process then exits with code 1 (one line in the log, no
traceback) and the supervisor starts it again with backoff.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time

import redis
from redis.client import Pipeline
from rq.cron import CronScheduler
from rq.exceptions import SchedulerNotFound

from sharedstate.settings import Settings
from sharedstate.worker import logs
from sharedstate.worker.process import supervised_child
from sharedstate.worker.schedule import scheduled_jobs


class SupervisedCron(CronScheduler):
    """RQ's CronScheduler that stops cleanly when Redis lost its registration (restarted empty)
    or is down as it stops: there is nothing left to unregister, or nothing to unregister from."""

    def _request_stop(self, signum: int, frame: object) -> None:
        # A second signal while it unregisters (the supervisor's, then the group's) would raise
        # StopRequested out of that cleanup as a traceback: the first one is enough.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        super()._request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def register_death(self, pipeline: Pipeline | None = None) -> None:
        try:
            super().register_death(pipeline)
        except SchedulerNotFound:
            pass
        except redis.RedisError as exc:
            self.log.warning("cron: could not unregister as it stopped (%s)", type(exc).__name__)


def use_utc() -> None:
    """Make this process's local time UTC: RQ evaluates cron strings in local time."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def main() -> int:
    supervised_child()
    use_utc()
    settings = Settings.load()
    logs.configure(settings.log_level)
    if settings.log_level != "DEBUG":  # a line per enqueued job: the idle worker's chatter
        logging.getLogger("rq.cron").setLevel(logging.WARNING)
    connection = redis.Redis.from_url(settings.require_redis_url())  # RQ's own client, never the store's
    scheduler = SupervisedCron(
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
    try:
        scheduler.start()  # type: ignore[no-untyped-call]
    except logs.OUTAGES as exc:
        return logs.stopped_by_outage("cron", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
