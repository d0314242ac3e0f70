"""Worker pieces without processes: loading jobs, the schedule, UTC cron."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rq.cron import CronJob

from sharedstate.errors import ConfigurationError
from sharedstate.settings import Settings
from sharedstate.worker import cron, jobs, logs, names
from sharedstate.worker.schedule import scheduled_jobs
from sharedstate.worker.usercode import check_job, load_callable


def test_load_callable() -> None:
    assert load_callable("os.path:join") is os.path.join
    assert load_callable("datetime:datetime.now") == datetime.now
    for bad, message in [
        ("no_colon", "package.module:function"),
        ("not_a_module_xyz:f", "cannot import"),
        ("os:no_such_function", "has no"),
        ("os:sep", "not callable"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            load_callable(bad)


def test_call_runs_sync_and_async_functions() -> None:
    async def coroutine() -> int:
        return 7

    assert jobs.call(lambda: 3) == 3
    assert jobs.call(coroutine) == 7


def _settings(**values: object) -> Settings:
    return Settings.load(redis_url="redis://x", namespace="ns", **values)


def test_schedule() -> None:
    by_name = {job.name: job for job in scheduled_jobs(_settings())}
    assert set(by_name) == {names.AUTO_RESTORE, names.SNAPSHOT, names.INTEGRITY}
    assert by_name[names.SNAPSHOT].interval == 60 and by_name[names.INTEGRITY].interval == 3600
    assert by_name[names.SNAPSHOT].queue == "sharedstate.ns.maintenance"
    # the restore check runs in the supervisor, never behind RQ's reconnect backoff
    assert [j.name for j in by_name.values() if j.in_supervisor] == [names.AUTO_RESTORE]

    verify = {j.name: j for j in scheduled_jobs(_settings(verify_job="m:f"))}[names.VERIFY]
    assert (verify.cron, verify.interval, verify.timeout, verify.queue) == (
        "0 */6 * * *",
        None,
        180,
        "sharedstate.ns.jobs",
    )
    assert verify.kwargs == {"path": "m:f"}
    verify = {j.name: j for j in scheduled_jobs(_settings(verify_job="m:f", verify_interval=30))}[
        names.VERIFY
    ]
    assert (verify.cron, verify.interval) == (None, 30)
    with pytest.raises(ConfigurationError, match="VERIFY_CRON"):
        scheduled_jobs(_settings(verify_job="m:f", verify_cron="every tuesday"))


def test_extra_cron_jobs_from_a_config_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_cron_config.py").write_text(
        "from sharedstate.worker.schedule import cron_job\n"
        "cron_jobs = [\n"
        "    cron_job('os.path:join', cron='0 8 * * *'),\n"
        "    cron_job('os.path:exists', name='exists', interval=600, timeout=30, retries=2),\n"
        "]\n"
    )
    monkeypatch.chdir(tmp_path)  # the user's config module imports from the working directory
    monkeypatch.setattr(sys, "path", list(sys.path))
    settings = _settings(cron_config="my_cron_config")
    try:
        for _ in range(3):  # the supervisor asks on every heartbeat: the jobs must stay
            jobs_by_name = {job.name: job for job in scheduled_jobs(settings)}
            assert jobs_by_name["os.path:join"].cron == "0 8 * * *"
            extra = jobs_by_name["exists"]
            assert (extra.interval, extra.timeout, extra.kwargs["retries"]) == (600, 30, 2)
            assert extra.func is jobs.user_job
        with pytest.raises(ConfigurationError, match="CRON_CONFIG"):
            scheduled_jobs(_settings(cron_config="no_such_cron_config_module"))
    finally:
        sys.modules.pop("my_cron_config", None)


@pytest.mark.parametrize(
    "body, message",
    [
        ("cron_jobs = None", "must define cron_jobs"),
        ("x = 1", "must define cron_jobs"),
        ("cron_jobs = [cron_job('a:b', cron='1 * * * *'), cron_job('c:d', name='a:b', interval=5)]", "a:b"),
        ("cron_jobs = [cron_job('a:b', name='snapshot', interval=5)]", "built-in"),
        ("cron_jobs = [cron_job('a:b', cron='every day')]", "not a valid cron"),
        ("cron_jobs = [cron_job('a:b')]", "exactly one"),
        ("cron_jobs = [cron_job('a:b', interval=0)]", "interval"),
    ],
)
def test_bad_cron_configs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    (tmp_path / "bad_cron_config.py").write_text(
        f"from sharedstate.worker.schedule import cron_job\n{body}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    try:
        with pytest.raises(ConfigurationError, match=message):
            scheduled_jobs(_settings(cron_config="bad_cron_config"))
    finally:
        sys.modules.pop("bad_cron_config", None)


@pytest.fixture
def tokyo() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_cron_expressions_are_utc_whatever_the_container_zone(tokyo: None) -> None:
    assert time.localtime().tm_gmtoff == 9 * 3600
    local = CronJob("q", func_name="x.y", cron="0 12 * * *").next_enqueue_time
    assert local is not None and local.astimezone(UTC).hour == 3  # RQ alone: noon in Tokyo
    cron.use_utc()
    utc = CronJob("q", func_name="x.y", cron="0 12 * * *").next_enqueue_time
    assert utc is not None and utc.astimezone(UTC).hour == 12


def test_a_repeating_failure_is_counted_not_stored_each_time() -> None:
    import fakeredis

    from sharedstate import SharedStore
    from sharedstate.worker import records

    store = SharedStore(fakeredis.FakeRedis(), "units")
    records.record_run(store, "snapshot", {"status": "ok", "started_at": 1.0})
    for at in range(2, 102):  # a snapshot failing every minute for 100 minutes
        records.record_run(
            store, "snapshot", {"status": "failed", "error": "OSError: disk full", "started_at": at}
        )
    records.record_run(store, "snapshot", {"status": "failed", "error": "another", "started_at": 200.0})
    runs = [json.loads(raw) for raw in store.redis.lrange(store.keys.runs("snapshot"), 0, -1)]
    assert [(run["status"], run.get("repeats")) for run in runs] == [
        ("failed", None),
        ("failed", 100),
        ("ok", None),
    ]
    assert (runs[1]["first_at"], runs[1]["started_at"]) == (2, 101)


def _filtered(name: str, msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args or None, exc_info)
    assert logs.RQLines().filter(record)
    return record


def test_rq_lines_name_no_address_and_an_outage_is_one_line() -> None:
    import redis.exceptions

    record = _filtered(
        "rq.worker", "could not connect: %s", "Error 111 connecting to redis.internal:6379. Refused."
    )
    assert record.getMessage() == "could not connect: Error 111 connecting to <redis>. Refused."

    refused = redis.exceptions.ConnectionError("Error 111 connecting to 10.1.2.3:6379. Connection refused.")
    record = _filtered("rq.worker", "found an unhandled exception, quitting...", exc=refused)
    assert record.exc_info is None
    assert record.getMessage() == (
        "found an unhandled exception, quitting... (ConnectionError: Error 111 connecting to <redis>. "
        "Connection refused.)"
    )
    trace = "Traceback (most recent call last):\n  File x\n"
    trace += "redis.exceptions.TimeoutError: Timeout reading from redis.internal:6379"
    record = _filtered("rq.scheduler", "Scheduler [PID %s] raised an exception.\n%s", 7, trace)
    assert (
        record.getMessage()
        == "Scheduler [PID 7] raised an exception. (TimeoutError: Timeout reading from <redis>)"
    )

    bug = ValueError("a bug")  # not an outage: the traceback stays
    assert _filtered("rq.job", "job failed", exc=bug).exc_info is not None
    user = _filtered("mybot.jobs", "next run at %s via %s", "12:30:00", "connecting to db.internal:5432")
    assert (
        user.getMessage() == "next run at 12:30:00 via connecting to db.internal:5432"
    )  # not RQ's: untouched


def test_check_job_finds_modules_without_running_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mybot").mkdir()
    (tmp_path / "mybot" / "__init__.py").write_text("raise SystemExit('the package ran')\n")
    (tmp_path / "mybot" / "jobs.py").write_text("def verify(): pass\n")
    (tmp_path / "tasks.py").write_text("def verify(): pass\n")
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    for found in ("mybot.jobs:verify", "tasks:verify", "os.path:join", "json.decoder:JSONDecoder"):
        check_job(found, "SHAREDSTATE_VERIFY_JOB")
    for missing in ("mybot.job:verify", "taskz:verify", "tasks.sub:verify"):
        with pytest.raises(ConfigurationError, match=r"SHAREDSTATE_VERIFY_JOB: cannot import"):
            check_job(missing, "SHAREDSTATE_VERIFY_JOB")
    assert "mybot" not in sys.modules and "tasks" not in sys.modules and sys.path == path_before


def test_cron_stops_once_whatever_signals_follow() -> None:
    """The first stop signal ends the scheduler's loop; one arriving while it unregisters is
    ignored instead of raising out of that cleanup as a traceback."""
    import signal

    import fakeredis
    from rq.exceptions import StopRequested

    scheduler = cron.SupervisedCron(connection=fakeredis.FakeRedis(), name="units")
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(StopRequested):
            scheduler._request_stop(signal.SIGTERM, None)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGINT, before[1])
