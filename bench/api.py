"""GET /v1/docs/{name} under load from a second process, next to a bare FastAPI endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bench.common import Row
from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess, free_port

TOKEN = "bench-read-token"
WRITE_TOKEN = "bench-write-token"
STREAMS = 500
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


def _load(port: int, seconds: float, concurrency: int = CONCURRENCY) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", "127.0.0.1", str(port), "/v1/docs/config", TOKEN, str(seconds),
         str(concurrency)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    return result


def _rss(process: subprocess.Popen[bytes]) -> int:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _with_streams(
    api: subprocess.Popen[bytes], port: int, seconds: float, count: int
) -> tuple[dict[str, float], float]:
    """GET under load while ``count`` event streams are open; and the API's memory per stream."""
    before = _rss(api)
    holder = subprocess.Popen(
        [sys.executable, "-m", "bench.streams", "127.0.0.1", str(port), TOKEN, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ready"
        per_stream = (_rss(api) - before) / count
        measured = _load(port, seconds)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    return measured, per_stream


def _stall(store: SharedStore, port: int, quick: bool) -> dict[str, float]:
    """The longest a small GET waited while a ~16 MiB PUT (hundreds of thousands of keys) went in."""
    keys = 40_000 if quick else 380_000
    body = json.dumps({f"k{i:07d}": f"value {i:07d} of the big document" for i in range(keys)}).encode()
    result: dict[str, float] = {}
    load = threading.Thread(target=lambda: result.update(_load(port, 6.0, concurrency=4)))
    load.start()
    time.sleep(1.0)  # the load has started
    started = time.perf_counter()
    written = httpx.put(
        f"http://127.0.0.1:{port}/v1/docs/big", content=body, timeout=120,
        headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    put_seconds = time.perf_counter() - started
    load.join()
    assert written.status_code == 200, written.text[:300]
    store.delete("big")
    return {**result, "put_seconds": put_seconds, "body_bytes": len(body), "keys": keys}


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
         "SHAREDSTATE_API_TOKENS": f"read:{TOKEN},write:{WRITE_TOKEN}",
         "SHAREDSTATE_API_ACCESS_LOG": "false"},
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
        with_streams, per_stream = _with_streams(ours, ours_port, seconds, 100 if quick else STREAMS)
        stall = _stall(store, ours_port, quick)
    finally:
        for process in (ours, bare):
            process.terminate()
            process.wait(15)
        client.close()
    assert measured_ours["errors"] == 0 and measured_bare["errors"] == 0

    def show(m: dict[str, float]) -> str:
        return f"{m['ops']:,.0f} req/s (p50 {m['p50_ms']:.2f} ms, p99 {m['p99_ms']:.2f} ms)"

    streams = 100 if quick else STREAMS
    return [
        Row(f"GET /v1/docs/{{name}}, {CONCURRENCY} connections", show(measured_ours),
            f"bare FastAPI {show(measured_bare)}", measured_ours["ops"] / measured_bare["ops"], 0.6,
            figures={"ours": measured_ours, "bare": measured_bare, "body_bytes": len(body.content)}),
        Row(f"GET p99 with {streams} open event streams", show(with_streams),
            f"without: {show(measured_ours)}",
            with_streams["p99_ms"] / measured_ours["p99_ms"], 2.0, at_most=True,
            note=f"API memory per stream: {per_stream / 1024:.1f} KiB",
            figures={"with": with_streams, "without": measured_ours, "bytes_per_stream": per_stream}),
        Row("small GETs during a 16 MiB PUT: longest wait", f"{stall['max_ms']:.0f} ms",
            f"p50 {stall['p50_ms']:.2f} ms", stall["max_ms"], 200.0, at_most=True, unit="ms",
            figures=stall),
    ]  # fmt: skip
