"""`sharedstate api` as a real uvicorn process: serving, refusing to serve without auth off loopback,
stopping on SIGTERM; and schemathesis over the served OpenAPI schema."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from sharedstate.redis_server import RedisProcess
from tests.api.conftest import ADMIN, READ, TOKENS, WRITE
from tests.deployments import Server, start_api, wait_serving

ROOT = Path(__file__).parents[2]


@pytest.fixture
def served(redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path) -> Iterator[Server]:
    server = start_api(redis_server, tmp_path, SHAREDSTATE_API_TOKENS=TOKENS)
    wait_serving(server)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_served_by_uvicorn(served: Server) -> None:
    headers = {"Authorization": f"Bearer {WRITE}"}
    response = httpx.put(f"{served.url}/v1/docs/config", json={"a": {1: "x"}}, headers=headers)
    assert response.status_code == 200 and response.headers["etag"] == f'"{response.json()["version"]}"'
    response = httpx.get(f"{served.url}/v1/docs/config", headers={"Authorization": f"Bearer {READ}"})
    assert response.json()["data"] == {"a": {"1": "x"}}
    assert "server" not in response.headers
    assert httpx.get(f"{served.url}/v1/docs/config").status_code == 401
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(15) == 0


def test_refuses_to_serve_off_loopback_without_tokens(redis_server: RedisProcess, tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "10.1.2.3"):
        server = start_api(redis_server, tmp_path, "--host", host)
        assert server.process.wait(30) == 2
        output = server.output()
        assert "SHAREDSTATE_API_TOKENS" in output and len(output.strip().splitlines()) == 1, output


def test_serves_on_loopback_without_tokens(
    redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path
) -> None:
    server = start_api(redis_server, tmp_path)
    try:
        wait_serving(server)
        assert httpx.get(f"{server.url}/v1/docs").status_code == 200
        assert "open to every process on this machine" in server.output()
    finally:
        server.process.terminate()
        server.process.wait(15)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_binds_ipv6(redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path) -> None:
    server = start_api(redis_server, tmp_path, "--host", "::", SHAREDSTATE_API_TOKENS=TOKENS)
    ipv6 = f"http://[::1]:{server.url.rsplit(':', 1)[1]}"
    try:
        wait_serving(server, ipv6)
        response = httpx.get(f"{ipv6}/v1/docs", headers={"Authorization": f"Bearer {READ}"})
        assert response.status_code == 200
    finally:
        server.process.terminate()
        server.process.wait(15)


# -- schemathesis -------------------------------------------------------------------------------

# Every default check applies; schemathesis.toml lets the positive-data check accept 412 (a
# stale If-Match). tests/reliability/test_schemathesis.py runs every check, more examples.


def test_schemathesis_finds_no_server_error_and_no_schema_violation(served: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/v1/events":
            continue  # an endless stream, not a request/response: test_events_stream covers it

        @given(operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate])  # fmt: skip
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN}"})

        try:
            check()
        except Exception as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_events_stream(served: Server, real_redis: redis.Redis) -> None:
    from sharedstate import SharedStore

    store = SharedStore(real_redis, "served", "outside")
    headers = {"Authorization": f"Bearer {READ}"}
    with httpx.stream(
        "GET", f"{served.url}/v1/events", params={"names": "config"}, headers=headers, timeout=30
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = (line for line in response.iter_lines() if line)  # blank lines end each event
        assert next(lines) == ": connected"
        store.put("other", 1)  # filtered out
        store.put("config", {"a": {1, 2}})
        event = [next(lines) for _ in range(3)]
    assert event[1] == "event: change" and event[0].startswith("id: ")
    change = json.loads(event[2].removeprefix("data: "))
    assert (change["name"], change["op"], change["fields"], change["writer"]) == (
        "config",
        "put",
        {"a": [1, 2]},
        "outside",
    )
    # resume after that event: the next change, nothing twice
    store.put("config", {"b": 2})
    resume = {**headers, "Last-Event-ID": event[0].removeprefix("id: ")}
    with httpx.stream("GET", f"{served.url}/v1/events", headers=resume, timeout=30) as response:
        lines = (line for line in response.iter_lines() if line)
        next(lines)
        again = [next(lines) for _ in range(3)]
    assert json.loads(again[2].removeprefix("data: "))["fields"] == {"b": 2}
    assert httpx.get(f"{served.url}/v1/events").status_code == 401


def test_sigterm_ends_open_event_streams_cleanly(served: Server) -> None:
    """A stream never ends by itself: stopping must end it (its client resumes with Last-Event-ID)
    rather than wait out the graceful timeout and cancel it with a traceback."""
    headers = {"Authorization": f"Bearer {READ}"}
    with httpx.stream("GET", f"{served.url}/v1/events", headers=headers, timeout=30) as response:
        lines = response.iter_lines()
        assert next(lines) == ": connected"
        served.process.send_signal(signal.SIGTERM)
        rest = list(lines)  # the server closes the stream: the iteration ends, no error event
    assert not any(line.startswith("event: error") for line in rest), rest
    assert served.process.wait(15) == 0
    output = served.output()
    assert "Traceback" not in output and "graceful shutdown exceeded" not in output, output
