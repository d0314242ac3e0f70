"""What runs when: the built-in jobs, the verification job and users' extra cron jobs.

Users declare jobs in a module named by ``SHAREDSTATE_CRON_CONFIG`` (imported from the
working directory), as a list named ``cron_jobs``::

    from sharedstate.worker.schedule import cron_job
    cron_jobs = [
        cron_job("mybot.jobs:send_digest", cron="0 8 * * *"),
        cron_job("mybot.jobs:refresh_cache", interval=600, timeout=60),
    ]

The list is read afresh on every call of ``scheduled_jobs``; nothing accumulates anywhere.

Cron expressions are evaluated in UTC whatever the container's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter

from sharedstate.errors import ConfigurationError
from sharedstate.settings import Settings
from sharedstate.worker import jobs, names
from sharedstate.worker.usercode import import_user_module

RESULT_TTL = 3600  # seconds RQ keeps a successful job's result (the API shows it)
FREQUENT_RESULT_TTL = 60  # for the jobs that run every few seconds


@dataclass(frozen=True)
class Scheduled:
    """One periodic job: what RQ's cron scheduler registers (or, ``in_supervisor``, the supervisor runs)."""

    name: str
    func: Callable[..., Any]
    queue: str
    cron: str | None = None
    interval: int | None = None
    timeout: int = 180
    result_ttl: int = RESULT_TTL
    kwargs: dict[str, Any] = field(default_factory=dict)
    in_supervisor: bool = False

    def describe(self) -> dict[str, Any]:
        """JSON for the API."""
        return {
            "name": self.name,
            "queue": self.queue,
            "cron": self.cron,
            "interval": self.interval,
            "timeout": self.timeout,
            "runner": "supervisor" if self.in_supervisor else "rq-cron",
        }


@dataclass(frozen=True)
class CronJob:
    """One of the user's periodic jobs, as declared in the ``SHAREDSTATE_CRON_CONFIG`` module."""

    path: str
    name: str
    cron: str | None
    interval: int | None
    timeout: int
    retries: int


def cron_job(
    path: str, *, name: str | None = None, cron: str | None = None, interval: int | None = None,
    timeout: int = 180, retries: int = 0,
) -> CronJob:  # fmt: skip
    """Declare a job (``package.module:function``, sync or async, no arguments) for ``cron_jobs``."""
    if (cron is None) == (interval is None):
        raise ConfigurationError(f"job {path!r}: give exactly one of cron= and interval=")
    if cron is not None:
        _check_cron(cron, f"job {name or path}")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 1):
        raise ConfigurationError(f"job {name or path}: interval must be a whole number of seconds >= 1")
    return CronJob(path, name or path, cron, interval, timeout, retries)


def declared_jobs(module_name: str) -> list[CronJob]:
    """The ``cron_jobs`` list of the user's cron config module."""
    module = import_user_module(module_name, "SHAREDSTATE_CRON_CONFIG")
    declared = getattr(module, "cron_jobs", None)
    if not isinstance(declared, list | tuple) or not all(isinstance(job, CronJob) for job in declared):
        raise ConfigurationError(
            f"SHAREDSTATE_CRON_CONFIG: {module_name!r} must define cron_jobs = [cron_job(...), ...]"
        )
    names_seen = [job.name for job in declared]
    duplicates = sorted({n for n in names_seen if names_seen.count(n) > 1 or n in names.BUILTIN_JOBS})
    if duplicates:
        raise ConfigurationError(
            f"SHAREDSTATE_CRON_CONFIG: job names taken twice or by a built-in job: {', '.join(duplicates)}"
        )
    return list(declared)


def _check_cron(expression: str, what: str) -> str:
    if not croniter.is_valid(expression):
        raise ConfigurationError(f"{what}: {expression!r} is not a valid cron expression")
    return expression


def scheduled_jobs(settings: Settings) -> list[Scheduled]:
    """Every periodic job for ``settings``."""
    maintenance = names.maintenance_queue(settings.namespace)
    work = names.jobs_queue(settings.namespace)
    scheduled = [
        # The supervisor runs this one itself: after Redis lost everything, RQ's cron and workers
        # may be backing off their reconnects, and the restore must not wait for them.
        Scheduled(names.AUTO_RESTORE, jobs.auto_restore_check, maintenance,
                  interval=settings.restore_check_interval, timeout=3600, result_ttl=FREQUENT_RESULT_TTL,
                  in_supervisor=True),
        Scheduled(names.SNAPSHOT, jobs.snapshot, maintenance, interval=settings.snapshot_interval,
                  timeout=3600, result_ttl=FREQUENT_RESULT_TTL),
        Scheduled(names.INTEGRITY, jobs.integrity, maintenance, interval=settings.integrity_interval,
                  timeout=3600),
    ]  # fmt: skip
    if settings.verify_job:
        timing: dict[str, Any] = (
            {"interval": settings.verify_interval}
            if settings.verify_interval
            else {"cron": _check_cron(settings.verify_cron, "SHAREDSTATE_VERIFY_CRON")}
        )
        scheduled.append(
            Scheduled(names.VERIFY, jobs.verify, work, timeout=settings.verify_timeout,
                      kwargs={"path": settings.verify_job}, **timing)
        )  # fmt: skip
    if settings.cron_config:
        for job in declared_jobs(settings.cron_config):
            arguments = {"path": job.path, "name": job.name, "retries": job.retries, "timeout": job.timeout}
            scheduled.append(
                Scheduled(job.name, jobs.user_job, work, cron=job.cron, interval=job.interval,
                          timeout=job.timeout, kwargs=arguments)
            )  # fmt: skip
    return scheduled
