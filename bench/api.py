"""GET /v1/docs/{name} under load from a second process, next to a bare FastAPI endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import Row
from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess, free_port

TOKEN = "bench-read-token"
CONCURRENCY = 32


def _serve(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(
                    f"http://127.0.0.1:{port}/v1/docs/config", headers={"Authorization": f"Bearer {TOKEN}"}
                ).status_code
                == 200
            ):
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling the server's readiness
    process.kill()
    raise RuntimeError(f"{argv} did not serve")


def _load(port: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", "127.0.0.1", str(port), "/v1/docs/config", TOKEN, str(seconds),
         str(CONCURRENCY)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    return result


def run(server: RedisProcess, workdir: Path, quick: bool) -> list[Row]:
    seconds = 2.0 if quick else 10.0
    client = server.client()
    client.flushall()
    store = SharedStore(client, "bench-api", "bench")
    document = {f"field{i}": {"id": i, "name": f"entry {i}", "tags": ["a", "b"]} for i in range(20)}
    store.put("config", document)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREDSTATE_")}
    ours_port, bare_port = free_port(), free_port()
    ours = _serve(
        [sys.executable, "-m", "sharedstate", "api", "--port", str(ours_port)],
        {**env, "SHAREDSTATE_REDIS_URL": server.url, "SHAREDSTATE_NAMESPACE": "bench-api",
         "SHAREDSTATE_API_TOKENS": f"read:{TOKEN}", "SHAREDSTATE_API_ACCESS_LOG": "false"},
        ours_port,
    )  # fmt: skip
    body = httpx.get(
        f"http://127.0.0.1:{ours_port}/v1/docs/config", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    (workdir / "body.json").write_bytes(body.content)
    bare = _serve(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
        ],
        {**env, "BENCH_BODY_FILE": str(workdir / "body.json")},
        bare_port,
    )
    try:
        _load(ours_port, 1.0)  # warm both up
        _load(bare_port, 1.0)
        measured_bare = _load(bare_port, seconds)
        measured_ours = _load(ours_port, seconds)
    finally:
        for process in (ours, bare):
            process.terminate()
            process.wait(15)
        client.close()
    assert measured_ours["errors"] == 0 and measured_bare["errors"] == 0

    def show(m: dict[str, float]) -> str:
        return f"{m['ops']:,.0f} req/s (p50 {m['p50_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms)"

    return [
        Row(f"GET /v1/docs/{{name}}, {CONCURRENCY} connections", show(measured_ours),
            f"bare FastAPI {show(measured_bare)}", measured_ours["ops"] / measured_bare["ops"], 0.6,
            figures={"ours": measured_ours, "bare": measured_bare, "body_bytes": len(body.content)}),
    ]  # fmt: skip
