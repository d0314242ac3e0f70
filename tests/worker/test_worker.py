"""The worker service with real RQ workers and RQ's cron scheduler (real redis-server)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sharedstate import VersionConflict
from sharedstate.durability.format import read_snapshot
from sharedstate.redis_server import RedisProcess
from tests.deployments import Deployment, processes_of, wait_for

JOBS = "tests.worker.sample_jobs"


def at_least(count: int, runs: list[dict[str, object]], status: str) -> list[dict[str, object]] | None:
    """The first ``count`` runs with ``status``, or None while there are fewer."""
    matching = [run for run in runs if run["status"] == status]
    return matching[:count] if len(matching) >= count else None


def snapshot_holds(path: object, name: str, data: object) -> bool:
    _, records = read_snapshot(path)  # type: ignore[arg-type]
    return any(record.name == name and record.data == data for record in records)


def test_verification_runs_on_an_interval(deployment: Deployment) -> None:
    deployment.start(verify_job=f"{JOBS}:quick", verify_interval=1)
    runs = wait_for(lambda: at_least(3, deployment.runs("verify"), "ok"), 30, "three verification runs")
    assert all(run["result"] == "fine" and run["fence"] >= 1 for run in runs)
    starts = sorted(run["started_at"] for run in runs)
    assert starts[-1] - starts[0] >= 1.0  # spread over the interval, not a burst
    assert len(deployment.samples()) >= 3


def test_async_verification_job(deployment: Deployment) -> None:
    deployment.start(verify_job=f"{JOBS}:asynchronous", verify_interval=1)
    run = wait_for(
        lambda: next((r for r in deployment.runs("verify") if r["status"] == "ok"), None), 30, "a run"
    )
    assert run["result"] == "async fine"


def test_a_slow_job_never_overlaps_itself_even_with_two_workers(deployment: Deployment) -> None:
    settings = {"verify_job": f"{JOBS}:slow", "verify_interval": 1}
    deployment.start(**settings)
    deployment.start(**settings)
    wait_for(
        lambda: len([s for s in deployment.samples() if s["event"] == "end"]) >= 3, 60, "three finished runs"
    )
    wait_for(lambda: any(r["status"] == "skipped" for r in deployment.runs("verify")), 30, "a skipped run")
    events = deployment.samples()
    spans: dict[int, list[float]] = {}
    open_runs = 0
    for event in sorted(events, key=lambda e: e["t"]):
        open_runs += 1 if event["event"] == "start" else -1
        assert open_runs <= 1, f"two runs overlapped: {events}"
        spans.setdefault(event["pid"], []).append(event["t"])
    skipped = [r for r in deployment.runs("verify") if r["status"] == "skipped"]
    assert all("lock" in r["reason"] for r in skipped)
    fences = [r["fence"] for r in reversed(deployment.runs("verify")) if r["status"] == "ok"]
    assert fences == sorted(fences) and len(set(fences)) == len(fences)


def test_a_failing_job_is_recorded_and_the_worker_keeps_going(deployment: Deployment) -> None:
    deployment.start(verify_job=f"{JOBS}:failing", verify_interval=1, snapshot_interval=1)

    def failed_twice() -> list[dict[str, Any]]:  # the same failure again is counted on one record
        return [
            run
            for run in deployment.runs("verify")
            if run["status"] == "failed" and run.get("repeats", 1) >= 2
        ]

    [run] = wait_for(failed_twice, 30, "two failed runs")
    assert "RuntimeError: the verification found a problem" in run["error"]
    assert "Traceback" in run["traceback"] and "sample_jobs.py" in run["traceback"]
    assert run["first_at"] < run["started_at"]
    deployment.store.put("after", {"still": "working"})
    after = {"still": "working"}
    wait_for(
        lambda: any(snapshot_holds(p, "after", after) for p in deployment.snapshots()), 30, "a later snapshot"
    )


def test_retries_back_off_and_are_recorded(deployment: Deployment) -> None:
    deployment.start(verify_job=f"{JOBS}:failing", verify_cron="0 0 1 1 *", verify_retries=1)
    # the cron slot is far away: trigger the first attempt by hand, as the cron would
    from rq import Queue

    Queue(f"sharedstate.{deployment.namespace}.jobs", connection=deployment.client).enqueue(
        "sharedstate.worker.jobs.verify", path=f"{JOBS}:failing"
    )
    runs = wait_for(lambda: at_least(2, deployment.runs("verify"), "failed"), 40, "the attempt and its retry")
    first, retry = sorted(runs, key=lambda r: r["started_at"])
    assert first["retry_in"] == 5.0 and retry.get("retry_in") is None
    assert retry["started_at"] - first["ended_at"] >= 4.5


def test_snapshots_appear_on_schedule(deployment: Deployment) -> None:
    deployment.start(snapshot_interval=1)
    deployment.store.put("config", {"v": 1})
    wait_for(
        lambda: any(snapshot_holds(p, "config", {"v": 1}) for p in deployment.snapshots()), 20, "snapshot v1"
    )
    deployment.store.put("config", {"v": 2})
    wait_for(
        lambda: any(snapshot_holds(p, "config", {"v": 2}) for p in deployment.snapshots()), 20, "snapshot v2"
    )
    count = len(deployment.snapshots())
    time.sleep(2.5)  # a quiet period: nothing changed, so no new snapshot may appear
    assert len(deployment.snapshots()) == count


@pytest.mark.parametrize("group", [False, True], ids=["pid", "process-group"])
def test_sigterm_takes_a_final_snapshot_and_leaves_nothing_behind(
    deployment: Deployment, group: bool
) -> None:
    worker = deployment.start(snapshot_interval=3600, verify_job=f"{JOBS}:slow", verify_interval=3600)
    wait_for(lambda: any(s["event"] == "start" for s in deployment.samples()), 30, "the slow job to start")
    wait_for(lambda: len(processes_of(worker.pid)) >= 3, 10, "the children")
    deployment.store.put("last", {"write": "before SIGTERM"})
    assert worker.terminate(group=group) == 0, worker.output()
    assert [s["event"] for s in deployment.samples()] == ["start", "end"]  # the running job finished
    newest = deployment.snapshots()[-1]
    assert snapshot_holds(newest, "last", {"write": "before SIGTERM"})
    assert processes_of(worker.pid) == []
    assert any(r["status"] == "ok" and r["result"].get("final") for r in deployment.runs("snapshot"))


def test_sigterm_after_redis_lost_everything_stops_cleanly(deployment: Deployment) -> None:
    """RQ's cron scheduler unregisters itself as it stops: its registration went with the data."""
    worker = deployment.start(snapshot_interval=3600, verify_job=f"{JOBS}:quick", verify_interval=3600)
    wait_for(lambda: "started cron" in worker.output(), 30, "the cron process")
    wait_for(lambda: deployment.client.keys("rq:cron_scheduler*"), 30, "cron's registration")
    deployment.client.flushall()
    assert worker.terminate() == 0, worker.output()
    assert "Traceback" not in worker.output(), worker.output()


def test_flushall_is_restored_within_10_seconds(deployment: Deployment) -> None:
    deployment.start(snapshot_interval=1)
    for i in range(20):
        deployment.store.put(f"doc{i}", {"i": i})
    wait_for(
        lambda: any(snapshot_holds(p, "doc19", {"i": 19}) for p in deployment.snapshots()), 20, "a snapshot"
    )
    held = deployment.store.get("doc0").version
    deployment.client.flushall()
    started = time.monotonic()
    wait_for(lambda: deployment.store.load("doc19") == {"i": 19}, 10, "the automatic restore")
    assert time.monotonic() - started < 10
    assert {deployment.store.load(f"doc{i}")["i"] for i in range(20)} == set(range(20))
    with pytest.raises(VersionConflict):
        deployment.store.put("doc0", {"stale": True}, expected_version=held)

    def restored() -> list[Any]:  # by the loss watch, or by the integrity check if it came first
        automatic = [r["result"] for r in deployment.runs("auto-restore") if r["status"] == "ok"]
        checked = [r["result"]["filled_in"] for r in deployment.runs("integrity") if r.get("result")]
        return [result for result in automatic + checked if result]

    reports = wait_for(restored, 10, "the record of the restore")
    assert reports[0]["restored"] == 20


def test_a_redis_outage_does_not_end_the_service(own_redis: RedisProcess, tmp_path: object) -> None:
    from pathlib import Path

    deployment = Deployment(own_redis, Path(str(tmp_path)))
    worker = deployment.start(verify_job=f"{JOBS}:quick", verify_interval=1)
    try:
        wait_for(lambda: len(deployment.samples()) >= 1, 30, "a first run")
        own_redis.kill()
        time.sleep(6)  # the outage itself: long enough for RQ's cron scheduler to give up and exit
        assert worker.process.poll() is None, worker.output()
        own_redis.start()
        client = own_redis.client()
        wait_for(lambda: client.llen(deployment.sample_key) >= 2, 60, "runs after Redis came back")
        client.close()
        assert worker.terminate() == 0
        output = worker.output()
        assert "exited with code" in output  # the scheduler was restarted
        # RQ's lines too: the outage is one line each, naming no address (an internal one on a PaaS)
        assert "Traceback" not in output and f":{own_redis.port}" not in output, output
        assert "<redis>" in output
    finally:
        deployment.close()


def test_configuration_errors_stop_the_worker_at_once(deployment: Deployment) -> None:
    worker = deployment.start(verify_job=f"{JOBS}:quick", verify_cron="not a cron")
    assert worker.process.wait(30) == 2
    assert "SHAREDSTATE_VERIFY_CRON" in worker.output()
