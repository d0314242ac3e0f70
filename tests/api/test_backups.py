"""The API and the backups: with a bucket it lists snapshots from the bucket itself (no worker
catalogue needed); /v1/health reports the journal."""

from __future__ import annotations

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
from tests.s3 import S3Server


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
        accepted = api.post(f"/v1/snapshots/{made.path.name}/restore", token=ADMIN)
        assert accepted.status_code == 202, accepted.text
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
