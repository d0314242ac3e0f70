"""What runs when: the built-in jobs, the verification job and users' extra cron jobs.

Users add jobs in a module named by ``SHAREDSTATE_CRON_CONFIG``::

    from worker.schedule import register
    register("mybot.jobs:send_digest", cron="0 8 * * *")
    register("mybot.jobs:refresh_cache", interval=600, timeout=60)

Cron expressions are evaluated in UTC whatever the container's time zone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter

from sharedstate.errors import ConfigurationError
from sharedstate.settings import Settings
from worker import jobs, names

RESULT_TTL = 3600  # seconds RQ keeps a successful job's result (the API shows it)
FREQUENT_RESULT_TTL = 60  # for the jobs that run every few seconds
FAILURE_TTL = 7 * 24 * 3600


@dataclass(frozen=True)
class Scheduled:
    """One periodic job: what RQ's cron scheduler registers."""

    name: str
    func: Callable[..., Any]
    queue: str
    cron: str | None = None
    interval: int | None = None
    timeout: int = 180
    result_ttl: int = RESULT_TTL
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON for the API."""
        return {
            "name": self.name,
            "queue": self.queue,
            "cron": self.cron,
            "interval": self.interval,
            "timeout": self.timeout,
        }


_extra: list[dict[str, Any]] = []


def register(
    path: str, *, name: str | None = None, cron: str | None = None, interval: int | None = None,
    timeout: int = 180, retries: int = 0,
) -> None:  # fmt: skip
    """Add a job (``package.module:function``, sync or async, no arguments) from a cron config module."""
    if (cron is None) == (interval is None):
        raise ConfigurationError(f"job {path!r}: give exactly one of cron= and interval=")
    _extra.append({"path": path, "name": name or path, "cron": cron, "interval": interval,
                   "timeout": timeout, "retries": retries})  # fmt: skip


def _check_cron(expression: str, what: str) -> str:
    if not croniter.is_valid(expression):
        raise ConfigurationError(f"{what}: {expression!r} is not a valid cron expression")
    return expression


def scheduled_jobs(settings: Settings) -> list[Scheduled]:
    """Every periodic job for ``settings``."""
    maintenance = names.maintenance_queue(settings.namespace)
    work = names.jobs_queue(settings.namespace)
    scheduled = [
        Scheduled(names.AUTO_RESTORE, jobs.auto_restore_check, maintenance,
                  interval=settings.restore_check_interval, timeout=3600, result_ttl=FREQUENT_RESULT_TTL),
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
        _extra.clear()
        try:
            importlib.import_module(settings.cron_config)
        except ImportError as exc:
            raise ConfigurationError(
                f"SHAREDSTATE_CRON_CONFIG: cannot import {settings.cron_config!r}: {exc}"
            ) from exc
        for job in _extra:
            if job["cron"]:
                _check_cron(job["cron"], f"job {job['name']}")
            arguments = {
                "path": job["path"],
                "name": job["name"],
                "retries": job["retries"],
                "timeout": job["timeout"],
            }
            scheduled.append(
                Scheduled(job["name"], jobs.user_job, work, cron=job["cron"], interval=job["interval"],
                          timeout=job["timeout"], kwargs=arguments)
            )  # fmt: skip
    return scheduled
