"""`sharedstate doctor`: a table of checks, exit 1 on a problem, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from sharedstate.cli import main
from sharedstate.redis_server import RedisProcess, free_port


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, str]], str]:
    code = main(["doctor", "--json"])
    captured = capsys.readouterr()
    checks = {check["name"]: check for check in json.loads(captured.out)}
    return code, checks, captured.out + captured.err


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, redis_server: RedisProcess, tmp_path: Path) -> Path:
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SHAREDSTATE_API_TOKENS", raising=False)
    return tmp_path


def test_a_working_setup_passes_with_warnings(
    configured: Path, real_redis: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    code, checks, _ = doctor(capsys)
    assert code == 0
    assert checks["redis reachable"]["status"] == "OK"
    assert checks["redis AOF"]["status"] == "WARN"  # the test server runs without AOF
    assert checks["redis eviction"]["status"] == "OK"
    assert checks["data dir writable"]["status"] == "OK"
    assert checks["worker heartbeat"]["status"] == "WARN"
    assert checks["api auth"]["status"] == "WARN"
    assert checks["namespace memory"]["status"] == "OK" and "budget" in checks["namespace memory"]["detail"]
    assert (configured / "data" / "snapshots").is_dir()


def test_problems_fail(
    configured: Path,
    real_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        code, checks, _ = doctor(capsys)
    finally:
        real_redis.config_set("maxmemory-policy", "noeviction")
    assert code == 1 and checks["redis eviction"]["status"] == "FAIL"
    (configured / "blocked").write_text("a file where the data dir should be")
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(configured / "blocked"))
    monkeypatch.setenv("SHAREDSTATE_API_HOST", "0.0.0.0")
    code, checks, _ = doctor(capsys)
    assert code == 1
    assert checks["data dir writable"]["status"] == "FAIL"
    assert checks["api auth"]["status"] == "FAIL"


def test_unreachable_redis_is_reported_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", f"redis://user:s3cret-pw@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHAREDSTATE_API_TOKENS", "admin:t0ken-value")
    code, checks, text = doctor(capsys)
    assert code == 1 and checks["redis reachable"]["status"] == "FAIL"
    assert (
        checks["redis url"]["detail"]
        == "redis://user:***@127.0.0.1:" + checks["redis url"]["detail"].split(":")[-1]
    )
    assert "s3cret-pw" not in text and "t0ken-value" not in text


def test_missing_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHAREDSTATE_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(tmp_path))
    code, checks, _ = doctor(capsys)
    assert code == 1 and "SHAREDSTATE_REDIS_URL" in checks["redis url"]["detail"]
