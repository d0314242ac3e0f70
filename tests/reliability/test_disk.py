"""The worker's volume fills up or turns read-only: the error shows in /v1/health, old snapshots survive."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sharedstate.api.main import create_app
from sharedstate.durability.format import verify
from sharedstate.redis_server import RedisProcess
from tests.api.conftest import READ, Api, settings_for
from tests.deployments import Deployment, wait_for
from tests.tmpfs import tmpfs


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "data", "512k") as mount:
        yield mount


def _last_snapshot_error(api: Api) -> str | None:
    health = api.get("/v1/health", token=READ).json()
    run = health["snapshots"]["last_run"]
    if run and run["status"] == "failed" and health["status"] == "degraded":
        return str(run["error"])
    return None


def test_full_and_read_only_volume(
    redis_server: RedisProcess, real_redis: redis.Redis, small_volume: Path, tmp_path: Path
) -> None:
    deployment = Deployment(redis_server, tmp_path)  # its data dir is the tmpfs
    deployment.start(snapshot_interval=1)
    api = Api(create_app(settings_for(redis_server, tmp_path, namespace=deployment.namespace)))
    try:
        deployment.store.put("small", {"fits": True})
        old = wait_for(lambda: deployment.snapshots(), 20, "a first snapshot")
        for i in range(10):  # ~1 MB that gzip cannot shrink: more than the volume holds
            deployment.store.put(f"big{i}", secrets.token_hex(50_000))
        error = wait_for(lambda: _last_snapshot_error(api), 30, "the failure in /v1/health")
        assert "No space left on device" in error
        for path in old:
            verify(path)  # intact
        assert not [p for p in small_volume.joinpath("snapshots").iterdir() if p.name.startswith(".")]

        for i in range(10):
            deployment.store.delete(f"big{i}")
        wait_for(lambda: _last_snapshot_error(api) is None, 30, "a snapshot once there is room again")
        subprocess.run(["mount", "-o", "remount,ro", str(small_volume)], check=True)
        deployment.store.put("small", {"fits": "still"})
        error = wait_for(lambda: _last_snapshot_error(api), 30, "the read-only failure in /v1/health")
        assert "Read-only file system" in error
        for path in deployment.snapshots():
            verify(path)
    finally:
        api.close()
        deployment.close()
