"""Real `sharedstate worker` processes against a real redis-server (the fixture is in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess, free_port

ROOT = Path(__file__).parents[1]
_namespaces = itertools.count()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def processes_of(supervisor_pid: int) -> list[int]:
    """Pids of live processes started by a supervisor (they carry its pid in their environment)."""
    marker = f"SHAREDSTATE_SUPERVISOR_PID={supervisor_pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class WorkerProcess:
    """A `sharedstate worker` subprocess in its own session (so its process group can be signalled)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sharedstate", "worker"], env=env, cwd=ROOT,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate(self, group: bool = False, timeout: float = 60) -> int:
        if group:
            os.killpg(self.pid, signal.SIGTERM)
        else:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in processes_of(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


class Deployment:
    """A namespace with its data dir, and the workers started for it."""

    def __init__(self, server: RedisProcess, tmp_path: Path) -> None:
        self.server = server
        self.namespace = f"w{next(_namespaces)}"
        self.data_dir = tmp_path / "data"
        self.sample_key = f"samples:{self.namespace}"
        self.client = server.client()
        self.store = SharedStore(self.client, self.namespace, "test")
        self.workers: list[WorkerProcess] = []
        self.tmp_path = tmp_path

    def env(self, extra: dict[str, str] | None = None, **settings: object) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SHAREDSTATE_")}
        env.update(extra or {})
        env.update(
            SHAREDSTATE_REDIS_URL=self.server.url,
            SHAREDSTATE_NAMESPACE=self.namespace,
            SHAREDSTATE_DATA_DIR=str(self.data_dir),
            SHAREDSTATE_SHUTDOWN_GRACE="10",
            SAMPLE_KEY=self.sample_key,
            PYTHONPATH=str(ROOT),
        )
        env.update({f"SHAREDSTATE_{key.upper()}": str(value) for key, value in settings.items()})
        return env

    def start(self, extra: dict[str, str] | None = None, **settings: object) -> WorkerProcess:
        """A `sharedstate worker` with ``settings`` as SHAREDSTATE_ variables (and ``extra`` ones)."""
        worker = WorkerProcess(self.env(extra, **settings), self.tmp_path / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        """Kill what is left of its workers and close its Redis connections."""
        for worker in self.workers:
            worker.cleanup()
        self.client.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def runs(self, job: str) -> list[dict[str, Any]]:
        return [
            json.loads(item) for item in self.client.lrange(f"ss:{{{self.namespace}}}:sys:runs:{job}", 0, -1)
        ]

    def samples(self) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.client.lrange(self.sample_key, 0, -1)]

    def snapshots(self) -> list[Path]:
        directory = self.data_dir / "snapshots"
        return (
            sorted(p for p in directory.iterdir() if not p.name.startswith(".")) if directory.exists() else []
        )


class Server:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_api(server: RedisProcess, tmp_path: Path, *args: str, **env: str) -> Server:
    """`sharedstate api` on a free port (namespace "served" unless ``env`` says otherwise)."""
    port = free_port()
    log = tmp_path / f"api-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SHAREDSTATE_")}
    environment.update(
        SHAREDSTATE_REDIS_URL=server.url, SHAREDSTATE_NAMESPACE="served", SHAREDSTATE_API_PORT=str(port)
    )
    environment.update(env)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sharedstate", "api", *args], env=environment, cwd=ROOT,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_serving(server: Server, url: str | None = None) -> None:
    def up() -> bool:
        assert server.process.poll() is None, server.output()
        try:
            return httpx.get(f"{url or server.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, 30, "uvicorn to serve")
