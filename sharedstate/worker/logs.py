"""Log output of the worker's child processes (RQ workers, their scheduler, cron).

RQ's own lines go through the same handler as ours, in the same format, with the server's
address cut (on a PaaS it is an internal name, and logs are shared), and a lost connection to
Redis is one line, not a traceback per process and retry: an outage is expected, the
supervisor waits it out, and ``/v1/health`` says so.
"""

from __future__ import annotations

import logging
import sys

import redis.exceptions

from sharedstate.errors import describe, without_addresses

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_OUTAGE_NAMES = tuple(f"{kind.__module__}.{kind.__name__}" for kind in OUTAGES)  # as tracebacks end
_TRACEBACK = "Traceback (most recent call last):"


class RQLines(logging.Filter):
    """Rewrites RQ's records (loggers ``rq.*``): no address, an outage's traceback as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "rq" and not record.name.startswith("rq."):
            return True
        message = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OUTAGES):
            message = f"{message} ({describe(exc)})"
            record.exc_info = record.exc_text = None
        elif _TRACEBACK in message:  # RQ's scheduler writes its traceback into the message
            head, _, trace = message.partition(_TRACEBACK)
            last = trace.rstrip().rsplit("\n", 1)[-1]
            if last.startswith(_OUTAGE_NAMES):
                message = f"{head.rstrip()} ({last.removeprefix('redis.exceptions.')})"
        record.msg, record.args = without_addresses(message), None
        return True


def configure(level: str) -> None:
    """One stderr handler at the root for this process, RQ's loggers included (RQ adds its own
    handlers only where none would take its records)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RQLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def stopped_by_outage(process: str, exc: BaseException) -> int:
    """Say in one line that ``process`` stops because Redis is unreachable; its exit code (1: the
    supervisor starts it again, with backoff)."""
    logging.getLogger("sharedstate.worker").warning(
        "%s: Redis unreachable (%s): stopping", process, describe(exc)
    )
    return 1
