"""``sharedstate worker``: one service, one process tree.

The supervisor (this process) restores the namespace if Redis lost it, then runs and
watches three children, each in its own session so a signal to our process group reaches
only us and each child gets exactly one SIGTERM from us:

* an RQ worker on the maintenance queue (snapshots, checks, restores asked for by the API),
* an RQ worker on the jobs queue (the verification job, users' cron jobs),
* RQ's cron scheduler, which enqueues them.

A child that exits is started again with backoff (RQ's scheduler exits when Redis is away
for a few seconds), so a Redis outage never ends the service; once Redis answers again,
children waiting out a backoff start at once. Every few seconds the supervisor publishes a
heartbeat and the schedule for the API. The supervisor itself checks every
``SHAREDSTATE_RESTORE_CHECK_INTERVAL`` seconds whether Redis lost the namespace and restores
it (a recorded ``auto-restore`` run), so a restore never waits for RQ to reconnect.

The supervisor is a subreaper (Linux): whatever a child leaves behind when it is SIGKILLed
(RQ's scheduler process, a work horse) is re-parented to it, killed and reaped, and a child's
process group is killed when the child exits.

On SIGTERM or SIGINT it stops the scheduler, lets running jobs finish within
``SHAREDSTATE_SHUTDOWN_GRACE`` seconds (then stops them), takes a final snapshot and exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sharedstate.durability.journaling import Journaler
from sharedstate.durability.restore import auto_restore
from sharedstate.durability.target import SNAPSHOTS, DirectoryTarget
from sharedstate.errors import SharedStateError, StoreUnavailable
from sharedstate.settings import Settings
from sharedstate.worker import context, jobs, names, records
from sharedstate.worker.process import (
    SUPERVISOR_PID,
    become_subreaper,
    children_of,
    kill_group,
    python_module,
)
from sharedstate.worker.schedule import scheduled_jobs
from sharedstate.worker.usercode import check_job

log = logging.getLogger("sharedstate.worker")

HEARTBEAT_EVERY = 5.0
RESTART_MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a child that ran this long starts again without backoff
COLD_STOP_WAIT = 5.0
REAP_EVERY = 2.0  # seconds between looks for processes left behind by a child
RQWORKER = "sharedstate.worker.rqworker"
JOURNAL_RESTART = 5.0  # seconds before a journal that failed unexpectedly starts again


@dataclass
class Child:
    """One supervised child process."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    backoff: float = 1.0
    started_at: float = 0.0
    next_start: float = 0.0
    stop_signals: int = field(default=0)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, env=env, start_new_session=True)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.process.pid)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.process is not None
            self.stop_signals += 1
            self.process.send_signal(sig)

    def describe(self) -> dict[str, Any]:
        return {
            "pid": self.process.pid if self.process else None,
            "running": self.running,
            "restarts": self.restarts,
        }


class Supervisor:
    """Runs the worker service until asked to stop; ``run()`` returns the exit code."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = threading.Event()
        self.redis_back = threading.Event()  # set by the loss watch when Redis answers after an outage
        self.journal_stop = threading.Event()  # the journal stops last, after the final snapshot
        self.snapshot_wanted = threading.Event()  # the journal found a gap: snapshot as soon as possible
        self.id = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = time.time()
        ns = settings.namespace
        self.children = [
            Child("rq-maintenance", python_module(RQWORKER, names.maintenance_queue(ns))),
            Child("rq-jobs", python_module(RQWORKER, names.jobs_queue(ns))),
            Child("cron", python_module("sharedstate.worker.cron")),
        ]
        self.env = {
            **os.environ,
            SUPERVISOR_PID: str(os.getpid()),
            "SHAREDSTATE_NAMESPACE": ns,
            "SHAREDSTATE_DATA_DIR": str(settings.data_dir),
            "PYTHONUNBUFFERED": "1",
        }

    def _request_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping.is_set():
            log.info("received %s: stopping", signal.Signals(signum).name)
        self.stopping.set()

    # -- start-up ------------------------------------------------------------------------------

    def _restore_at_start(self) -> bool:
        """Auto-restore before anything is scheduled; waits for Redis. False if stopped meanwhile."""
        delay = 1.0
        while not self.stopping.is_set():
            try:
                config = self.settings
                report = auto_restore(
                    context.store(), context.target(), config.restore_lease_ttl, key=config.signing_key
                )
            except StoreUnavailable as exc:
                if not _answers(context.store()):
                    log.warning("Redis is not reachable yet (%s); trying again in %.0f s", exc, delay)
                    self.stopping.wait(delay)
                    delay = min(delay * 2, RESTART_MAX_BACKOFF)
                    continue
                failure: Exception = exc
            except SharedStateError as exc:
                failure = exc
            else:
                if report is not None:
                    log.info("start-up restore done: %s", report.to_dict())
                return True
            # Redis answers but the restore cannot finish: serve what is there; the periodic
            # check tries again (a restore only fills in, so trying again is always safe)
            log.critical(
                "the start-up restore could not finish (%s); starting anyway with what Redis holds, the "
                "restore is retried every %s s",
                failure,
                self.settings.restore_check_interval,
            )
            return True
        return False

    # -- running -------------------------------------------------------------------------------

    def _watch_for_loss(self) -> None:
        """Thread: restore the namespace whenever Redis lost it; notice Redis coming back."""
        reachable = True
        while not self.stopping.wait(self.settings.restore_check_interval):
            try:
                jobs.auto_restore_check()
            except StoreUnavailable as exc:
                if reachable:
                    log.warning("Redis is not reachable (%s): restores wait for it", exc)
                reachable = False
                continue
            except Exception:
                log.exception("the automatic restore check failed")
            if not reachable:
                log.info("Redis is reachable again")
                self.redis_back.set()
            reachable = True

    def _journal(self) -> None:
        """Thread: journal every change to the backup target (see ``durability.journaling``)."""
        while not self.journal_stop.is_set():
            journaler = Journaler(
                context.store(),
                context.target(),
                key=self.settings.signing_key,
                on_gap=lambda gap: self.snapshot_wanted.set(),
                on_snapshot=lambda why: self.snapshot_wanted.set(),
            )
            try:
                journaler.run(self.journal_stop)
            except Exception:  # it resumes after the last entry the target holds
                log.exception("the journal stopped; starting it again in %.0f s", JOURNAL_RESTART)
                self.journal_stop.wait(JOURNAL_RESTART)

    def _snapshot_after_gap(self) -> None:
        """Thread: after a gap in the journal, snapshot as soon as the namespace allows it (a
        namespace Redis lost is restored first)."""
        while not self.stopping.is_set():
            self.snapshot_wanted.wait(1.0)
            if not self.snapshot_wanted.is_set():
                continue
            try:
                run = jobs.run_job(names.SNAPSHOT, jobs.snapshot_now, exclusive=False)
            except Exception as exc:
                log.warning("snapshot after a journal gap failed: %s", exc)
                run = {"status": "failed"}
            if run.get("status") == "ok":
                log.warning("snapshot asked for by the journal: %s", (run.get("result") or {}).get("id"))
                self.snapshot_wanted.clear()
            else:
                self.stopping.wait(self.settings.restore_check_interval)

    def _supervise(self) -> None:
        now = time.monotonic()
        if self.redis_back.is_set():
            self.redis_back.clear()
            for child in self.children:  # they exited for want of Redis: no reason to wait longer
                child.next_start = min(child.next_start, now)
                child.backoff = 1.0
        for child in self.children:
            if child.running:
                continue
            if child.process is not None:
                kill_group(child.process.pid)  # what it started (RQ's scheduler) goes with it
                code = child.process.returncode
                ran = now - child.started_at
                if ran >= STABLE_AFTER:
                    child.backoff = 1.0
                child.next_start = now + child.backoff
                log.warning("%s exited with code %s after %.0f s; starting it again in %.0f s",
                            child.name, code, ran, child.backoff)  # fmt: skip
                child.backoff = min(child.backoff * 2, RESTART_MAX_BACKOFF)
                child.restarts += 1
                child.process = None
            if now >= child.next_start:
                child.start(self.env)

    def _reap_leftovers(self) -> None:
        """Kill and reap processes re-parented to us that are not our children: what a child that
        was SIGKILLed (an OOM kill) left behind, such as RQ's scheduler or a work horse."""
        ours = {child.process.pid for child in self.children if child.process is not None}
        for pid, state in children_of(os.getpid()).items():
            if pid in ours:
                continue
            if state != "Z":
                log.warning("killing process %d, left behind by a child that died", pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # killed: it exits at once; a zombie answers at once

    def _heartbeat(self) -> None:
        store = context.store()
        beat = {
            "id": self.id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "namespace": self.settings.namespace,
            "started_at": self.started_at,
            "heartbeat_at": time.time(),
            "children": {child.name: child.describe() for child in self.children},
            "queues": [
                names.maintenance_queue(self.settings.namespace),
                names.jobs_queue(self.settings.namespace),
            ],
        }
        try:
            schedule = [job.describe() for job in scheduled_jobs(self.settings)]
            records.publish_heartbeat(store, self.id, beat, schedule)
        except Exception as exc:  # Redis away: the heartbeat simply goes stale
            log.debug("heartbeat failed: %s", exc)

    # -- stopping ------------------------------------------------------------------------------

    def _stop_children(self) -> None:
        grace = self.settings.shutdown_grace
        for child in self.children:
            child.signal(signal.SIGTERM)  # RQ workers: warm shutdown, the running job finishes
        deadline = time.monotonic() + max(grace, 1.1)  # RQ ignores a second signal within 1 s
        while any(child.running for child in self.children) and time.monotonic() < deadline:
            time.sleep(0.05)
        late = [child for child in self.children if child.running]
        if late:
            log.warning(
                "jobs still running after %.0f s: stopping %s", grace, ", ".join(c.name for c in late)
            )
            for child in late:
                child.signal(signal.SIGTERM)  # cold shutdown: RQ kills its work horse
            deadline = time.monotonic() + COLD_STOP_WAIT
            while any(child.running for child in late) and time.monotonic() < deadline:
                time.sleep(0.05)
        for child in self.children:
            if child.running:
                assert child.process is not None
                log.error("%s did not stop: killing it", child.name)
                child.process.kill()
            if child.process is not None:
                child.process.wait()
                kill_group(child.process.pid)
        self._reap_leftovers()

    def _final_snapshot(self) -> None:
        try:
            run = jobs.run_job(
                names.SNAPSHOT, lambda: {**jobs.snapshot_now(), "final": True}, exclusive=False
            )
            log.info("final snapshot: %s", run.get("result") or run.get("reason"))
        except SharedStateError as exc:
            log.error("final snapshot failed: %s", exc)
        except Exception:
            log.exception("final snapshot failed")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        log.info("worker %s for namespace %r, backups in %s", self.id, self.settings.namespace,
                 context.target().description)  # fmt: skip
        subreaper = become_subreaper()
        if not self._restore_at_start():
            return 0
        next_beat = next_reap = 0.0
        watch = threading.Thread(target=self._watch_for_loss, name="loss-watch", daemon=True)
        watch.start()
        journal = threading.Thread(target=self._journal, name="journal", daemon=True)
        after_gap = threading.Thread(target=self._snapshot_after_gap, name="gap-snapshot", daemon=True)
        if self.settings.journal:
            journal.start()
            after_gap.start()
        try:
            while not self.stopping.is_set():
                self._supervise()
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + HEARTBEAT_EVERY
                if subreaper and time.monotonic() >= next_reap:
                    self._reap_leftovers()
                    next_reap = time.monotonic() + REAP_EVERY
                self.stopping.wait(0.5)
        finally:
            self.stopping.set()
            watch.join(max(self.settings.shutdown_grace, 1.0))  # a restore under way resumes at next start
            self._stop_children()
            self._final_snapshot()
            self.journal_stop.set()
            if journal.is_alive():
                journal.join(max(self.settings.shutdown_grace, 1.0))
            try:
                records.remove_heartbeat(context.store(), self.id)
            except Exception as exc:
                log.debug("could not remove the heartbeat: %s", exc)
        log.info("worker stopped")
        return 0


def run(settings: Settings) -> int:
    """Run the worker service in this process."""
    context.use_settings(settings)
    settings.require_redis_url()
    target = context.target()  # configuration errors now, not at the first snapshot
    if isinstance(target, DirectoryTarget):
        target.staging(SNAPSHOTS)
    for job in scheduled_jobs(settings):  # configuration errors now, not in the cron child
        path = job.kwargs.get("path")  # the user's own jobs
        if path is not None:
            what = (
                "SHAREDSTATE_VERIFY_JOB"
                if job.name == names.VERIFY
                else f"SHAREDSTATE_CRON_CONFIG job {job.name!r}"
            )
            check_job(path, what)
    return Supervisor(settings).run()


def _answers(store: Any) -> bool:
    """True if Redis answers a PING now (so a failure was the restore's own, not Redis being down)."""
    try:
        return bool(store.redis.ping())
    except Exception:
        return False
