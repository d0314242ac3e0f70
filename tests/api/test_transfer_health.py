"""Export/import, health, readiness and metrics through HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from sharedstate import SharedStore
from sharedstate.api.main import create_app
from sharedstate.redis_server import RedisProcess
from tests.api.conftest import ADMIN, WRITE, Api, settings_for


def test_export_then_import_round_trips(api: Api, store: SharedStore) -> None:
    store.put("config", {"a": 1, "f": 1.5, "u": "✓"})
    store.put("list", [1, None, "x"])
    store.put("ids", {"s": {2, 1}})
    exported = api.get("/v1/export")
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/json"
    body = exported.json()
    assert body == {"config": {"a": 1, "f": 1.5, "u": "✓"}, "list": [1, None, "x"], "ids": {"s": [1, 2]}}
    for name in list(body):
        store.delete(name)
    response = api.post("/v1/import", json=body)
    assert response.status_code == 200
    assert response.json()["imported"] == ["config", "ids", "list"]
    assert api.get("/v1/export").json() == body


def test_import_is_all_or_nothing(api: Api, store: SharedStore) -> None:
    store.put("keep", {"untouched": True})
    response = api.post("/v1/import", json={"good": 1, "bad name": 2, "keep": {"replaced": True}})
    assert response.status_code == 422 and "bad name" in response.json()["detail"]
    assert store.names() == ["keep"] and store.load("keep") == {"untouched": True}
    assert api.post("/v1/import", json=[1, 2]).status_code == 422
    assert api.post("/v1/import", json={}).json() == {"imported": [], "versions": {}}


def test_export_of_an_empty_namespace(api: Api) -> None:
    assert api.get("/v1/export").json() == {}


def test_health_reports_figures_and_warnings(api: Api, store: SharedStore) -> None:
    store.put("doc", 1)
    response = api.get("/v1/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "degraded"  # no worker heartbeat
    assert health["documents"] == 1
    assert health["redis"]["reachable"] is True and health["redis"]["latency_ms"] >= 0
    assert health["redis"]["aof_enabled"] is False and any("AOF" in w for w in health["warnings"])
    assert any("worker" in w for w in health["warnings"])
    assert health["worker"] == {"alive": False, "workers": []}
    usage = health["usage"]
    assert usage["documents"] == 1 and usage["feed_entries"] >= 1 and usage["documents_memory_estimate"] > 0
    assert usage["history_budget"] == 64 * 2**20 and 0 < usage["history_bytes"] < 10_000


def test_evicting_maxmemory_policy_degrades(api: Api, real_redis: redis.Redis) -> None:
    real_redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        health = api.get("/v1/health").json()
        assert any("allkeys-lru" in w for w in health["warnings"])
    finally:
        real_redis.config_set("maxmemory-policy", "noeviction")


def test_redis_down(own_redis: RedisProcess, tmp_path: Path) -> None:
    api = Api(create_app(settings_for(own_redis, tmp_path, timeout=1.0)))
    try:
        api.put("/v1/docs/doc", json=1)
        own_redis.kill()
        health = api.get("/v1/health")
        assert health.status_code == 200 and health.json()["status"] == "down"
        assert "redis://" not in health.text
        ready = api.get("/readyz", token=None)
        assert ready.status_code == 503 and ready.json()["error"] == "not_ready"
        assert api.get("/healthz", token=None).status_code == 200
        write = api.put("/v1/docs/doc", json=2)
        assert write.status_code == 503 and write.json()["error"] == "store_unavailable"
        assert write.headers["retry-after"]
        assert api.get("/v1/docs/doc").status_code == 503  # the API never serves stale copies
    finally:
        api.close()


def test_metrics(api: Api, store: SharedStore) -> None:
    first = api.put("/v1/docs/doc", json={"a": 1}).json()["version"]
    api.put("/v1/docs/doc", json={"a": 2}, headers={"If-Match": f'"{first}"'})
    api.put("/v1/docs/doc", json={"a": 3}, headers={"If-Match": f'"{first}"'})
    api.get("/v1/docs/doc")
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'sharedstate_http_requests_total{method="PUT",route="/v1/docs/{name}",status="412"} 1.0' in text
    assert 'sharedstate_store_operations_total{op="put"} 3.0' in text
    assert "sharedstate_version_conflicts_total 1.0" in text
    assert "sharedstate_documents 1.0" in text
    assert "sharedstate_snapshot_age_seconds -1.0" in text
    assert "sharedstate_http_request_seconds_bucket" in text


def test_snapshot_and_restore_need_a_catalogue_entry(api: Api) -> None:
    assert api.get("/v1/snapshots").json() == []
    assert api.get("/v1/jobs").json() == []
    response = api.post("/v1/snapshots/ns-20260101T000000000Z-abcdef.jsonl.gz/restore", token=ADMIN)
    assert response.status_code == 404
    assert api.post("/v1/snapshots/../../etc/passwd/restore", token=ADMIN).status_code in (404, 422)
    assert api.get("/v1/jobs/not-a-job").status_code == 404
    accepted = api.post("/v1/snapshots", token=ADMIN)
    assert accepted.status_code == 202 and "no worker" in accepted.json()["warning"]
    assert api.get(accepted.json()["status_url"]).json()["status"] == "queued"


@pytest.mark.parametrize("token", [WRITE])
def test_write_token_cannot_restore(api: Api, token: str) -> None:
    assert api.post("/v1/snapshots", token=token).status_code == 403


def test_a_failed_restore_degrades_health_until_one_succeeds(api: Api, store: SharedStore) -> None:
    from sharedstate.worker import names, records

    def failed_jobs() -> list[str]:
        return [item["job"] for item in api.get("/v1/health").json()["jobs"]["failed"]]

    assert failed_jobs() == []
    records.record_run(
        store, names.RESTORE, {"status": "failed", "error": "snapshot is corrupt", "ended_at": 1.0}
    )
    health = api.get("/v1/health").json()
    assert failed_jobs() == ["restore"] and health["status"] == "degraded"
    assert any("restore" in warning for warning in health["warnings"])
    records.record_run(store, names.RESTORE, {"status": "ok", "ended_at": 2.0})
    assert failed_jobs() == []


@pytest.mark.parametrize("record", ["journal", "catalogue", "last_snapshot", "schedule", "integrity"])
@pytest.mark.parametrize("garbage", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_a_garbled_worker_record_in_redis_never_breaks_health_or_listings(
    api: Api, store: SharedStore, real_redis: redis.Redis, record: str, garbage: bytes
) -> None:
    real_redis.set(getattr(store.keys, record), garbage)
    health = api.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")
    snapshots = api.get("/v1/snapshots")
    assert snapshots.status_code == 200 and isinstance(snapshots.json(), list)


def test_garbled_heartbeats_and_runs_are_left_out_not_fatal(
    api: Api, store: SharedStore, real_redis: redis.Redis
) -> None:
    real_redis.hset(store.keys.workers, "w1", b"{cut")
    real_redis.lpush(store.keys.runs("snapshot"), b"\xff")
    health = api.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"  # no worker alive
    assert api.get("/v1/jobs").status_code == 200
