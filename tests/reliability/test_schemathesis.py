"""Schemathesis with every check, against the served API with tokens and without (loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from sharedstate.redis_server import RedisProcess
from tests.api.conftest import ADMIN, TOKENS
from tests.deployments import Server, start_api, wait_serving

pytestmark = pytest.mark.reliability
EXAMPLES = 100  # per operation
ALL_CHECKS = list(HealthCheck)


@pytest.fixture(params=["tokens", "no tokens"])
def served(
    request: pytest.FixtureRequest, redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path
) -> Iterator[tuple[Server, dict[str, str]]]:
    env = {"SHAREDSTATE_API_TOKENS": TOKENS} if request.param == "tokens" else {}
    server = start_api(redis_server, tmp_path, **env)
    wait_serving(server)
    yield server, ({"Authorization": f"Bearer {ADMIN}"} if request.param == "tokens" else {})
    server.process.terminate()
    server.process.wait(15)


def test_every_check_passes_on_every_operation(served: tuple[Server, dict[str, str]]) -> None:
    server, headers = served
    # schemathesis.toml (at the repository's root, found from the working directory) lets the
    # positive-data check accept 412: a stale If-Match is well formed and refused by design
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/v1/events":
            continue  # an endless stream, not a request/response: tests/api/test_streams.py

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=ALL_CHECKS,
                  phases=[Phase.explicit, Phase.generate])  # fmt: skip
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        try:
            check()
        except Exception as exc:  # every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
