"""The served API's edges: slow clients are cut off, and clients cannot add metric series."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from sharedstate.redis_server import RedisProcess
from tests.api.conftest import ADMIN, TOKENS
from tests.deployments import Server, start_api, wait_serving


@pytest.fixture
def served(redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path) -> Iterator[Server]:
    server = start_api(
        redis_server, tmp_path, SHAREDSTATE_API_TOKENS=TOKENS,
        SHAREDSTATE_API_HEADER_TIMEOUT="1", SHAREDSTATE_API_BODY_TIMEOUT="2",
    )  # fmt: skip
    wait_serving(server)
    yield server
    server.process.terminate()
    server.process.wait(15)


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """True if the server closes the connection within ``seconds`` while ``trickle`` goes a byte at a time."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    for byte in [trickle[i : i + 1] for i in range(len(trickle))] + [b""] * 10_000:
        if time.monotonic() > deadline:
            return False
        try:
            if byte:
                sock.sendall(byte)
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_silent_and_slowloris_connections_are_closed(served: Server) -> None:
    with _connect(served) as silent:
        assert _closed_within(silent, 15)
    with _connect(served) as slow:  # headers a byte every 0.2 s would take minutes
        assert _closed_within(
            slow, 15, b"GET /v1/docs HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Pad: " + b"a" * 500
        )
    with _connect(served) as body:  # headers done, the body never comes
        body.sendall(
            f"PUT /v1/docs/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode()
        )
        assert _closed_within(body, 15)
    # a well-behaved client is still served on a kept-alive connection
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        for _ in range(3):
            assert client.get("/v1/docs").status_code == 200


def test_oversized_headers_are_refused(served: Server) -> None:
    response = httpx.get(f"{served.url}/healthz", headers={"X-Big": "a" * 40_000})
    assert response.status_code == 431 and response.json()["error"] == "headers_too_large"
    with _connect(served) as endless:  # headers that never end are cut off, not buffered
        endless.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 100_000)
        assert _closed_within(endless, 15)


def _series(server: Server) -> set[str]:
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {ADMIN}"}).text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_random_methods_and_paths_add_no_metric_series(served: Server) -> None:
    rng = random.Random(7)
    with httpx.Client(base_url=served.url) as client:

        def warm() -> None:
            for method in ("GET", "POST", "BREW"):
                client.request(method, "/nowhere")
                client.request(method, "/v1/docs/x", headers={"Authorization": "Bearer wrong"})

        warm()
        _series(served)  # /metrics counts itself once it has answered
        before = _series(served)
        for _ in range(10_000 // 20):
            method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 9)))
            path = "/" + "/".join(str(rng.randrange(10**9)) for _ in range(rng.randint(1, 4)))
            for _ in range(20):
                client.request(method, path)
        warm()
    after = _series(served)
    assert after == before, sorted(after - before)[:10]
