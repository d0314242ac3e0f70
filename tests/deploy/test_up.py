"""`sharedstate up --demo` end to end: embedded Redis, worker, API and bot, then a clean stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from sharedstate.redis_server import free_port
from tests.deployments import processes_of, wait_for


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_demo(tmp_path: Path) -> None:
    port = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("SHAREDSTATE_", "REDIS_URL"))
    }
    env.update(
        SHAREDSTATE_DATA_DIR=str(tmp_path / "data"), SHAREDSTATE_VERIFY_INTERVAL="2", PYTHONUNBUFFERED="1"
    )
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "sharedstate", "up", "--demo", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        banner = wait_for(
            lambda: re.search(r"token\s+(\S+)\s+\(role admin", log.read_text()), 60, "the banner"
        )
        redis_port = int(re.search(r"Redis\s+redis://127\.0\.0\.1:(\d+)", log.read_text()).group(1))  # type: ignore[union-attr]
        headers = {"Authorization": f"Bearer {banner.group(1)}"}
        api = f"http://127.0.0.1:{port}"

        def verified_bot_state(since: float = 0.0) -> dict[str, object] | None:
            runs = httpx.get(f"{api}/v1/jobs", params={"runs": 5}, headers=headers).json()
            verify = next((job for job in runs if job["name"] == "verify"), None)
            for run in verify["last_runs"] if verify else []:
                if run["status"] == "ok" and run["result"]["interested"] >= 1 and run["started_at"] > since:
                    return run
            return None

        run = wait_for(verified_bot_state, 60, "a verification run that sees the bot's writes")
        assert run["result"]["interested"] >= 1  # type: ignore[index]
        names = [doc["name"] for doc in httpx.get(f"{api}/v1/docs", headers=headers).json()]
        assert {"buildings", "interest_pool", "verification_tokens", "contacted"} <= set(names)
        health = wait_for(
            lambda: (h := httpx.get(f"{api}/v1/health", headers=headers).json())["status"] == "ok" and h, 60,
            "health ok",
        )  # fmt: skip
        assert health["redis"]["aof_enabled"] is True and health["worker"]["alive"] is True
        assert banner.group(1) not in str(health)
        assert _listening(redis_port)

        # The embedded Redis crashes (an OOM kill): `up` starts it again on its port, from its AOF.
        crashed_at = time.time()
        with redis.Redis(port=redis_port) as client:
            before = client.hgetall("ss:{default}:m:buildings")
            os.kill(int(client.info("server")["process_id"]), signal.SIGKILL)
        wait_for(lambda: "embedded redis-server is back" in log.read_text(), 60, "Redis started again")
        with redis.Redis(port=redis_port) as client:
            assert int(client.hget("ss:{default}:m:buildings", "v") or 0) >= int(before[b"v"])
        wait_for(lambda: verified_bot_state(crashed_at), 60, "a verification run after the crash")
    finally:
        up.send_signal(signal.SIGINT)  # Ctrl-C
        code = up.wait(90)
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "final snapshot" in output and "Traceback" not in output
    assert processes_of(up.pid) == []
    assert not _listening(port) and not _listening(redis_port)
    assert list((tmp_path / "data" / "snapshots").glob("default-*.jsonl.gz"))
    assert list((tmp_path / "data" / "redis").glob("appendonly*"))  # the embedded Redis kept its AOF there
