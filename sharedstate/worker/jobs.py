"""The job functions RQ runs: verification, snapshot, integrity, auto-restore, restore.

Each runs under a lease (``ss:{ns}:sys:lock:job:<name>``, renewed while it runs, with a
fencing token) so two runs of one job never overlap, even with two worker services or a
duplicate enqueue: a run that finds the lease held is recorded as skipped. Every run is
recorded (``worker.records``) with its outcome, and a failure with its traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rq import Queue, get_current_job
from rq.timeouts import JobTimeoutException

from sharedstate.durability import state
from sharedstate.durability.format import SUFFIX
from sharedstate.durability.journal import segments_of
from sharedstate.durability.points import unneeded_segments
from sharedstate.durability.restore import auto_restore, restore_lost, restore_newest, restore_snapshot
from sharedstate.durability.snapshots import (
    NamespaceNotReady,
    apply_retention,
    clean_temp_files,
    list_snapshots,
    publish_catalogue,
    take_snapshot,
)
from sharedstate.durability.target import JOURNAL, SNAPSHOTS
from sharedstate.errors import ConfigurationError, SharedStateError, SnapshotError
from sharedstate.integrity import check, relist
from sharedstate.lease import Lease
from sharedstate.settings import parse_keep
from sharedstate.worker import context, names, records
from sharedstate.worker.usercode import load_callable

log = logging.getLogger("sharedstate.worker")

LEASE_TTL = 30.0  # seconds; renewed every third of it while the job runs


class Skipped(Exception):
    """A run with nothing to do; ``quiet`` ones are not added to the run history."""

    def __init__(self, reason: str, quiet: bool = False) -> None:
        super().__init__(reason)
        self.quiet = quiet


def _renew(lease: Lease, stop: threading.Event, job: str) -> None:
    while not stop.wait(LEASE_TTL / 3):
        try:
            if not lease.renew():
                log.error("job %s lost its lease (fence %s): another run may start", job, lease.token)
                return
        except SharedStateError as exc:
            log.warning("job %s could not renew its lease: %s", job, exc)


def run_job(
    job: str,
    body: Callable[[], Any],
    *,
    retry: Callable[[], float | None] | None = None,
    exclusive: bool = True,
) -> dict[str, Any]:
    """Run ``body`` as one recorded run of ``job`` (under the job's lease if ``exclusive``).

    ``retry`` is called after a failure; it may schedule another attempt and return its delay.
    """
    store = context.store()
    current = get_current_job()
    run: dict[str, Any] = {
        "job": job,
        "rq_job": current.id if current else None,
        "started_at": time.time(),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    lease = Lease(store.redis, store.keys.job_lock(job), LEASE_TTL)
    token = lease.acquire() if exclusive else 0
    if token is None:
        run.update(status="skipped", reason="another run of this job holds its lock", ended_at=time.time())
        records.record_run(store, job, run)
        return run
    run["fence"] = token
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lease, stop, job), daemon=True, name=f"lease-{job}")
    renewer.start()
    fence = context.fence.set(token or None)
    try:
        result = body()
    except Skipped as exc:
        run.update(status="skipped", reason=str(exc), ended_at=time.time())
        if exc.quiet:
            records.record_check(store, job, str(exc))
        else:
            records.record_run(store, job, run)
        return run
    except JobTimeoutException as exc:
        run.update(status="timeout", error=str(exc), ended_at=time.time())
        records.record_run(store, job, run)
        raise
    except Exception as exc:
        run.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        if retry is not None:
            run["retry_in"] = retry()
        run["ended_at"] = time.time()
        records.record_run(store, job, run)
        raise
    else:
        run.update(status="ok", result=result, ended_at=time.time())
        records.record_run(store, job, run)
        return run
    finally:
        context.fence.reset(fence)
        stop.set()
        renewer.join(1)
        try:
            lease.release()
        except SharedStateError as exc:
            log.warning("job %s could not release its lease (it expires by itself): %s", job, exc)


# -- the user's jobs -----------------------------------------------------------------------------


def call(fn: Callable[[], Any]) -> Any:
    """Call a job function with no arguments, running it to completion if it is async."""
    result = fn()
    if inspect.isawaitable(result):

        async def wait() -> Any:
            return await result

        result = asyncio.run(wait())
    return result


def _summary(result: Any) -> Any:
    """What a run records of a job's return value: itself if small JSON, else a shortened repr."""
    try:
        if len(json.dumps(result)) <= 2000:
            return result
    except (TypeError, ValueError):
        pass
    return repr(result)[:1000]


def _retry_later(
    func: Callable[..., Any], attempt: int, max_retries: int, time_limit: int, **kwargs: Any
) -> Callable[[], float | None]:
    """After a failure: enqueue ``func(attempt=attempt + 1, **kwargs)`` with backoff, if retries remain."""

    def schedule() -> float | None:
        current = get_current_job()
        if attempt > max_retries or current is None:
            return None
        delay = float(min(300, 5 * 2 ** (attempt - 1)))
        queue = Queue(names.jobs_queue(context.settings().namespace), connection=current.connection)
        arguments = {**kwargs, "attempt": attempt + 1}
        queue.enqueue_in(timedelta(seconds=delay), func, kwargs=arguments, job_timeout=time_limit)
        return delay

    return schedule


def user_job(
    path: str, attempt: int = 1, name: str | None = None, retries: int = 0, timeout: int = 180
) -> Any:
    """Run the user's job function at ``path`` (sync or async, no arguments)."""
    job = name or path
    return run_job(
        job,
        lambda: _summary(call(load_callable(path))),
        retry=_retry_later(
            user_job, attempt, retries, timeout, path=path, name=name, retries=retries, timeout=timeout
        ),
    )


def verify(path: str | None = None, attempt: int = 1) -> Any:
    """The periodic verification job: ``SHAREDSTATE_VERIFY_JOB``, retried up to ``VERIFY_RETRIES``."""
    config = context.settings()
    target = path or config.verify_job
    if not target:
        raise ConfigurationError("SHAREDSTATE_VERIFY_JOB is not set")
    return run_job(
        names.VERIFY,
        lambda: _summary(call(load_callable(target))),
        retry=_retry_later(verify, attempt, config.verify_retries, config.verify_timeout, path=target),
    )


# -- maintenance -------------------------------------------------------------------------------


def _snapshot(force: bool) -> dict[str, Any]:
    config = context.settings()
    store = context.store()
    target = context.target()
    if not force:
        last = state.last_snapshot(store)
        if (
            last is not None
            and last.get("feed_position") == state.feed_position(store)
            and last.get("epoch") == state.get_marker(store)
            and any(item.name == last.get("id") for item in target.list(SNAPSHOTS))
        ):
            raise Skipped(f"no change since {last['id']}", quiet=True)
    clean_temp_files(target)
    try:
        result = take_snapshot(store, target, key=context.settings().signing_key)
    except NamespaceNotReady as exc:
        raise Skipped(str(exc)) from None
    removed = apply_retention(target, store.namespace, parse_keep(config.snapshot_keep), result.path)
    unneeded = unneeded_segments(
        list_snapshots(target, store.namespace), segments_of(target, store.namespace)
    )
    target.delete(JOURNAL, [segment.name for segment in unneeded])
    publish_catalogue(store, target, {result.path.name: "ok"})
    record = {
        "id": result.path.name,
        "created_at": result.header.created_at,
        "documents": result.header.documents,
        "size": result.size,
        "seconds": round(result.seconds, 3),
        "feed_position": result.header.feed_position,
        "epoch": result.header.epoch,
        "removed": [source.name for source in removed],
        "journal_segments_removed": len(unneeded),
        "undecodable": [{"name": name, "reason": reason} for name, reason in result.skipped[:100]],
    }
    state.set_last_snapshot(store, record)
    return record


def snapshot_now() -> dict[str, Any]:
    """Take a snapshot now, changed or not, with retention and catalogue (no lease, no record)."""
    return _snapshot(force=True)


def snapshot(force: bool = False) -> Any:
    """Snapshot the namespace (skipped cheaply when nothing changed, unless ``force``)."""
    return run_job(names.SNAPSHOT, lambda: _snapshot(force))


class IntegrityProblems(SharedStateError):
    """The integrity check found problems (recorded; missing documents are filled in)."""


def _fill_in_missing(store: Any, missing: list[str], data_lost: list[str]) -> dict[str, Any] | None:
    """Documents the newest snapshot holds that Redis lost (or holds older), filled in by the
    restore rule, and those whose data Redis lost under their meta, put back from it; None when
    nothing is missing."""
    config = context.settings()
    directory = context.target()
    try:
        plan = restore_newest(store, directory, dry_run=True, key=config.signing_key)
    except SnapshotError as exc:
        log.error("integrity: no snapshot to compare with: %s", exc)
        return None
    if plan is None:
        return None
    done: dict[str, Any] = {}
    if plan.restored:
        report = auto_restore(
            store, directory, config.restore_lease_ttl, missing=plan.restored, key=config.signing_key
        )
        if report is not None:
            done = report.to_dict()
    options: dict[str, Any] = {"lease_ttl": config.restore_lease_ttl, "key": config.signing_key}
    missing = [name for name in missing if name not in set(done.get("created", ()))]
    if missing:
        log.critical("integrity: %s lost their meta: putting them back from the newest snapshot holding "
                     "them", ", ".join(missing[:10]))  # fmt: skip
        done["missing_restored"] = restore_lost(store, directory, missing, **options)
    if data_lost:
        log.critical("integrity: the data of %s is gone under its meta: putting it back from the newest "
                     "snapshot holding it", ", ".join(data_lost[:10]))  # fmt: skip
        done["data_lost_restored"] = restore_lost(store, directory, data_lost, force=True, **options)
    return done or None


def _integrity() -> dict[str, Any]:
    store = context.store()
    problems = check(store)
    unlisted = [p.name for p in problems if p.code == "unlisted" and p.name]
    relisted = relist(store, unlisted) if unlisted else 0
    filled = _fill_in_missing(
        store,
        [p.name for p in problems if p.code == "missing" and p.name],
        [p.name for p in problems if p.code == "data_lost" and p.name],
    )
    found = len(problems)
    if relisted or filled:
        problems = check(store)  # what the repairs left
    records.record_integrity(
        store,
        {
            "checked_at": time.time(),
            "count": len(problems),
            "problems": [p.to_dict() for p in problems[:100]],
            "relisted": relisted,
            "filled_in": filled,
            "found": found,
        },
    )
    if problems:
        first = problems[0]
        raise IntegrityProblems(f"{len(problems)} problem(s); first: {first.name}: {first.what}")
    return {"problems": 0, "found": found, "relisted": relisted, "filled_in": filled}


def integrity() -> Any:
    """Check every document decodes and meta, data and names agree, and fill in documents the
    newest snapshot holds that Redis lost (hourly)."""
    return run_job(names.INTEGRITY, _integrity)


def _auto_restore() -> dict[str, Any]:
    config = context.settings()
    report = auto_restore(context.store(), context.target(), config.restore_lease_ttl, key=config.signing_key)
    if report is None:
        raise Skipped("namespace intact", quiet=True)
    return report.to_dict()


def auto_restore_check() -> Any:
    """Every few seconds: restore the namespace if Redis lost it."""
    return run_job(names.AUTO_RESTORE, _auto_restore)


def snapshot_path(snapshot_id: str) -> Any:
    """The snapshot of an id on the backup target (no other folder, no temp files)."""
    if (
        "/" in snapshot_id
        or "\\" in snapshot_id
        or snapshot_id.startswith(".")
        or not snapshot_id.endswith(SUFFIX)
    ):
        raise SnapshotError(snapshot_id, "not a snapshot id")
    for entry in list_snapshots(context.target()):
        if entry.id == snapshot_id:
            return entry.path
    raise SnapshotError(snapshot_id, "no such snapshot on the backup target")


def _restore(snapshot_id: str, documents: list[str] | None, force: bool) -> dict[str, Any]:
    store = context.store()
    report = restore_snapshot(
        store,
        snapshot_path(snapshot_id),
        only=documents,
        force=force,
        lease_ttl=context.settings().restore_lease_ttl,
        key=context.settings().signing_key,
    )
    publish_catalogue(store, context.target(), {snapshot_id: "ok"})
    return report.to_dict()


def restore(snapshot_id: str, documents: list[str] | None = None, force: bool = False) -> Any:
    """Restore a snapshot of this worker's volume (asked for by the API): fill in what is missing
    or older, or with ``force`` roll back."""
    return run_job(names.RESTORE, lambda: _restore(snapshot_id, documents, force))


def _restore_at(at: float, documents: list[str] | None) -> dict[str, Any]:
    config = context.settings()
    store = context.store()
    report = restore_newest(
        store,
        context.target(),
        only=documents,
        force=True,
        at=at,
        lease_ttl=config.restore_lease_ttl,
        key=config.signing_key,
        publish=True,
    )
    if report is None:
        raise SnapshotError(context.target().description, "no snapshot to restore from")
    return report.to_dict()


def restore_at(at: float, documents: list[str] | None = None) -> Any:
    """Roll back to the state at time ``at`` (asked for by the API): the newest snapshot complete
    by then plus the journal up to it."""
    return run_job(names.RESTORE, lambda: _restore_at(float(at), documents))
