"""The API and the backups: with a bucket it lists snapshots from the bucket itself (no worker
catalogue needed) and restores them itself (no worker running); /v1/health reports the journal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from sharedstate import SharedStore
from sharedstate.api.main import create_app
from sharedstate.durability import state
from sharedstate.durability.snapshots import take_snapshot
from sharedstate.redis_server import RedisProcess
from tests.api.conftest import ADMIN, Api, settings_for
from tests.deployments import wait_for
from tests.s3 import S3Server


def _finished(api: Api, accepted: object) -> dict[str, object]:
    """The job a 202 named, once it ended (polled over HTTP)."""
    import httpx

    assert isinstance(accepted, httpx.Response) and accepted.status_code == 202, getattr(accepted, "text", "")
    assert accepted.json()["warning"] is None  # run by the API: no worker needed
    url = accepted.json()["status_url"]

    def ended() -> dict[str, object] | None:
        job: dict[str, object] = api.get(url, token=ADMIN).json()
        return job if job["status"] in ("finished", "failed") else None

    found: dict[str, object] = wait_for(ended, 30, f"the job at {url} to end")
    return found


def test_with_a_bucket_the_api_lists_the_snapshots_itself(
    redis_server: RedisProcess,
    real_redis: redis.Redis,
    tmp_path: Path,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in s3_server.env().items():
        monkeypatch.setenv(variable, value)
    settings = settings_for(redis_server, tmp_path, backup_url=f"s3://{s3_server.bucket()}/team")
    store = SharedStore(real_redis, settings.namespace, "beside")
    store.put("a", {"n": 1})
    made = take_snapshot(store, settings.backup_target())  # by hand: the catalogue stays empty
    api = Api(create_app(settings))
    try:
        rows = api.get("/v1/snapshots").json()
        assert [(row["id"], row["documents"], row["status"]) for row in rows] == [
            (made.path.name, 1, "unverified")
        ]
        assert state.catalogue(store)["snapshots"] == []
        real_redis.flushall()  # Redis lost everything; no worker runs
        job = _finished(api, api.post(f"/v1/snapshots/{made.path.name}/restore", token=ADMIN))
        assert job["status"] == "finished", job
        run = job["result"]  # the run, as the worker's jobs return it
        assert isinstance(run, dict) and run["status"] == "ok" and run["result"]["restored"] == 1
        recorded = real_redis.lrange(store.keys.runs("restore"), 0, -1)  # among the restore job's runs
        assert len(recorded) == 1 and json.loads(recorded[0])["rq_job"] == job["id"]
        assert store.get("a").data == {"n": 1}
        store.put("a", {"n": 2})  # newer than the snapshot: a second fill-in keeps it
        job = _finished(api, api.post(f"/v1/snapshots/{made.path.name}/restore", token=ADMIN))
        assert job["status"] == "finished" and store.get("a").data == {"n": 2}
        rolled = api.post("/v1/restore", json={"at": time.time()}, token=ADMIN)
        job = _finished(api, rolled)
        assert job["status"] == "finished", job  # the snapshot, then the journal (none here)
        assert store.get("a").data == {"n": 1}
        too_early = _finished(api, api.post("/v1/restore", json={"at": 1.0}, token=ADMIN))
        assert too_early["status"] == "failed" and "snapshot" in str(too_early["error"])
        assert store.get("a").data == {"n": 1}  # a failed restore changed nothing
        assert state.catalogue(store)["snapshots"] == []  # only the worker publishes it
        assert (
            api.post(
                "/v1/snapshots/other-20260101T000000000Z-abcdef.jsonl.gz/restore", token=ADMIN
            ).status_code
            == 404
        )
    finally:
        api.close()


def test_health_reports_the_journal_and_an_uncovered_gap(api: Api, store: SharedStore) -> None:
    assert api.get("/v1/health").json()["journal"] is None  # no journal ran yet
    now = time.time()
    state.set_journal_state(
        store,
        {"position": "1-0", "flushed_at": now - 2, "entries": 5, "gaps": 1, "updated_at": now,
         "last_gap": {"at": now - 1, "after": "1-0", "reason": "trimmed up to 9-0"}},
    )  # fmt: skip
    health = api.get("/v1/health").json()
    assert health["journal"]["gaps"] == 1 and health["journal"]["flushed_age"] >= 2
    assert health["status"] == "degraded"
    assert any("gap" in warning and "no snapshot covers" in warning for warning in health["warnings"])


def test_a_roll_back_to_a_time_is_an_admin_job(api: Api) -> None:
    from tests.api.conftest import WRITE

    assert api.post("/v1/restore", json={"at": time.time()}, token=WRITE).status_code == 403
    for bad in ({"at": -1}, {"at": "yesterday"}, {}, {"at": 1.0, "documents": "a"}):
        assert api.post("/v1/restore", json=bad, token=ADMIN).status_code == 422, bad
    accepted = api.post("/v1/restore", json={"at": time.time(), "documents": ["a"]}, token=ADMIN)
    assert accepted.status_code == 202 and accepted.json()["status_url"].startswith("/v1/jobs/")
