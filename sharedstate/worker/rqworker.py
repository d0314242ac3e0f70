"""An RQ worker process on some of the namespace's queues: ``python -m sharedstate.worker.rqworker QUEUE...``.

It runs RQ's scheduler too (``with_scheduler``), which delayed retries need. Its work horses
die with it (a parent-death signal), so a killed worker leaves no job process behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

import redis
import rq.scheduler
from rq import Queue, Worker

import sharedstate.worker.jobs  # noqa: F401 - imported once here, inherited by every forked work horse
from sharedstate.settings import Settings
from sharedstate.worker import logs
from sharedstate.worker.process import die_with_parent, supervised_child


class SupervisedWorker(Worker):
    """RQ's forking Worker whose work horses follow it in death."""

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()  # type: ignore[no-untyped-call]
        die_with_parent(signal.SIGTERM)


_rq_scheduler_run = rq.scheduler.run


def _scheduler_process(scheduler: rq.scheduler.RQScheduler) -> None:
    """RQ's scheduler process, ended by a lost Redis without multiprocessing's traceback: RQ
    logged the error (one line, see ``logs``) and the worker starts another once Redis is back."""
    try:
        _rq_scheduler_run(scheduler)  # type: ignore[no-untyped-call]
    except logs.OUTAGES:
        sys.exit(1)


def _rank(level: str) -> int:
    return ["DEBUG", "INFO", "WARNING", "ERROR"].index(level)


def main(argv: list[str] | None = None) -> int:
    supervised_child()
    queues = (argv if argv is not None else sys.argv[1:]) or []
    if not queues:
        sys.exit("usage: python -m sharedstate.worker.rqworker QUEUE...")
    settings = Settings.load()
    logs.configure(settings.log_level)
    rq.scheduler.run = _scheduler_process  # RQ forks its scheduler with this module-level name
    connection = redis.Redis.from_url(settings.require_redis_url())  # RQ's own client, never the store's
    role = queues[0].rsplit(".", 1)[-1]
    name = f"sharedstate.{settings.namespace}.{role}.{socket.gethostname()}.{os.getpid()}"
    # RQ says a few lines at INFO for every job, the worker's own maintenance jobs included
    # (~140k lines a day idle): they show at SHAREDSTATE_LOG_LEVEL=DEBUG; failures always do
    level = "DEBUG" if settings.log_level == "DEBUG" else max(settings.log_level, "WARNING", key=_rank)
    try:  # RQ's worker talks to Redis from its constructor on, and gives up on a long outage
        rq_worker = SupervisedWorker(
            [Queue(q, connection=connection) for q in queues], connection=connection, name=name
        )
        rq_worker.work(with_scheduler=True, logging_level=level)
    except logs.OUTAGES as exc:
        return logs.stopped_by_outage(f"rq-{role}", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
