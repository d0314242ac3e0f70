"""Snapshots, restores and jobs through the API, run by a real `sharedstate worker`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sharedstate.api.main import create_app
from tests.api.conftest import ADMIN, Api, settings_for
from tests.deployments import Deployment, wait_for


@pytest.fixture
def deployment_api(deployment: Deployment, tmp_path: Path) -> Iterator[Api]:
    api = Api(create_app(settings_for(deployment.server, tmp_path, namespace=deployment.namespace)))
    yield api
    api.close()


def finished(api: Api, job_id: str) -> dict[str, object] | None:
    state = api.get(f"/v1/jobs/{job_id}").json()
    return state if state["status"] in ("finished", "failed") else None


def test_snapshot_and_restore_round_trip(deployment: Deployment, deployment_api: Api) -> None:
    api = deployment_api
    deployment.start(
        snapshot_interval=3600, verify_job="tests.worker.sample_jobs:quick", verify_interval=3600
    )
    api.put("/v1/docs/config", json={"v": "original", "ids": [1, 2]})
    accepted = api.post("/v1/snapshots", token=ADMIN)
    assert (
        accepted.status_code == 202
        and accepted.headers["location"] == f"/v1/jobs/{accepted.json()['job_id']}"
    )
    job = wait_for(lambda: finished(api, accepted.json()["job_id"]), 30, "the snapshot job")
    assert job["status"] == "finished"
    snapshots = wait_for(lambda: api.get("/v1/snapshots").json(), 10, "the catalogue")
    newest = max(snapshots, key=lambda row: row["created_at"])
    assert newest["status"] == "ok" and newest["documents"] == 1

    api.put("/v1/docs/config", json={"v": "changed"})
    api.put("/v1/docs/extra", json=1)
    restore = api.post(f"/v1/snapshots/{newest['id']}/restore", token=ADMIN)  # fills in only
    job = wait_for(lambda: finished(api, restore.json()["job_id"]), 30, "the restore job")
    assert job["status"] == "finished", job
    assert job["result"]["result"]["kept_newer"] == 1 and job["result"]["result"]["restored"] == 0  # type: ignore[index]
    assert api.get("/v1/docs/config").json()["data"] == {"v": "changed"}  # newer: kept
    restore = api.post(
        f"/v1/snapshots/{newest['id']}/restore", token=ADMIN, json={"documents": ["config"], "force": True}
    )
    assert restore.status_code == 202
    job = wait_for(lambda: finished(api, restore.json()["job_id"]), 30, "the forced restore")
    assert job["status"] == "finished", job
    assert api.get("/v1/docs/config").json()["data"] == {"v": "original", "ids": [1, 2]}
    assert api.get("/v1/docs/extra").status_code == 200  # a subset restore touches nothing else

    restore = api.post(f"/v1/snapshots/{newest['id']}/restore", token=ADMIN, json={"force": True})
    wait_for(lambda: finished(api, restore.json()["job_id"]), 30, "the full forced restore")
    assert api.get("/v1/docs/extra").status_code == 404

    def jobs_once_verify_ran() -> dict[str, dict[str, object]] | None:
        listed = {job["name"]: job for job in api.get("/v1/jobs").json()}
        return listed if listed.get("verify", {}).get("last_runs") else None

    # the verification job runs once at start on its own queue: it may come after the restores
    jobs = wait_for(jobs_once_verify_ran, 30, "the verification job's first run")
    assert {"verify", "snapshot", "auto-restore", "integrity", "restore"} <= set(jobs)
    assert jobs["verify"]["last_runs"][0]["status"] == "ok"
    assert jobs["verify"]["next_run"] is not None and jobs["verify"]["interval"] == 3600
    assert [run["status"] for run in jobs["restore"]["last_runs"]] == ["ok", "ok", "ok"]
    health = api.get("/v1/health").json()
    assert health["worker"]["alive"] is True
    assert health["snapshots"]["count"] >= 1
