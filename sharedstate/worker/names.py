"""Names the worker, the cron scheduler and the API agree on."""

from __future__ import annotations

VERIFY = "verify"
SNAPSHOT = "snapshot"
INTEGRITY = "integrity"
AUTO_RESTORE = "auto-restore"
RESTORE = "restore"
BUILTIN_JOBS = (VERIFY, SNAPSHOT, INTEGRITY, AUTO_RESTORE, RESTORE)


def jobs_queue(namespace: str) -> str:
    """RQ queue of the verification job and users' cron jobs (may run for minutes)."""
    return f"sharedstate.{namespace}.jobs"


def maintenance_queue(namespace: str) -> str:
    """RQ queue of snapshots, restores and checks: never stuck behind a long user job."""
    return f"sharedstate.{namespace}.maintenance"
