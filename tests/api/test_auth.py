"""Every /v1 route and /metrics needs a token with the right role; secrets never leak."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from sharedstate.api.main import create_app
from sharedstate.redis_server import RedisProcess
from sharedstate.settings import Settings
from tests.api.conftest import ADMIN, READ, TOKENS, WRITE, Api, settings_for

PUBLIC = {"/healthz", "/readyz", "/openapi.json"}
STREAMS = {"/v1/events"}  # never end, so in-process clients can't read them: test_uvicorn does
ADMIN_ROUTES = {
    ("POST", "/v1/snapshots"),
    ("POST", "/v1/snapshots/{snapshot_id}/restore"),
    ("POST", "/v1/restore"),
}
SAMPLE = {"name": "config", "snapshot_id": "default-20260101T000000000Z-abcdef.jsonl.gz", "job_id": "abc"}


def protected_routes(api: Api) -> Iterator[tuple[str, str, str]]:
    """(method, path, least role) of every operation the app declares, so new routes are covered."""
    for path, operations in api.app.openapi()["paths"].items():
        if path in PUBLIC:
            continue
        for method in operations:
            method = method.upper()
            if (method, path) in ADMIN_ROUTES:
                role = "admin"
            elif method == "GET":
                role = "read"
            else:
                role = "write"
            yield method, path.format(**SAMPLE), role


def test_the_app_has_the_routes_of_the_contract(api: Api) -> None:
    paths = {(method, path) for method, path, _ in protected_routes(api)}
    for expected in [
        ("GET", "/v1/health"), ("GET", "/v1/docs"), ("GET", "/v1/docs/config"), ("PUT", "/v1/docs/config"),
        ("PATCH", "/v1/docs/config"), ("DELETE", "/v1/docs/config"), ("GET", "/v1/docs/config/history"),
        ("GET", "/v1/export"), ("POST", "/v1/import"), ("GET", "/v1/snapshots"), ("POST", "/v1/snapshots"),
        ("GET", "/v1/jobs"), ("GET", "/v1/jobs/abc"), ("GET", "/metrics"),
        ("POST", f"/v1/snapshots/{SAMPLE['snapshot_id']}/restore"),
    ]:  # fmt: skip
        assert expected in paths


def test_every_protected_route_rejects_missing_and_unknown_tokens(api: Api) -> None:
    for method, path, _ in protected_routes(api):
        for token in (None, "wrong-token", READ + "x", ""):
            response = api.request(method, path, token=token)
            assert response.status_code == 401, (method, path, token)
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        response = api.request(method, path, token=None, headers={"Authorization": f"Basic {READ}"})
        assert response.status_code == 401


def test_roles_read_write_admin(api: Api) -> None:
    rank = {"read": 1, "write": 2, "admin": 3}
    for method, path, needed in protected_routes(api):
        for token, role in ((READ, "read"), (WRITE, "write"), (ADMIN, "admin")):
            if path in STREAMS and rank[role] >= rank[needed]:
                continue
            response = api.request(method, path, token=token)
            if rank[role] < rank[needed]:
                assert response.status_code == 403, (method, path, role)
                assert response.json()["error"] == "forbidden"
            else:
                assert response.status_code not in (401, 403), (method, path, role, response.text)


def test_public_endpoints(api: Api) -> None:
    assert api.get("/healthz", token=None).json() == {"status": "alive"}
    assert api.get("/readyz", token=None).json() == {"status": "ready"}
    assert api.get("/openapi.json", token=None).status_code == 200


def test_tokens_are_never_logged_or_echoed(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        api.put("/v1/docs/config", json={"a": 1})
        api.patch("/v1/docs/config", json={"b": 1}, token=ADMIN)
        api.delete("/v1/docs/config")
        api.post("/v1/import", json={"x": 1})
        api.get("/v1/docs/x", token="not-a-real-token-zzzz")
        bodies = [api.get(path).text for path in ("/v1/health", "/metrics", "/v1/docs")]
    audit = [r.getMessage() for r in caplog.records if r.name == "sharedstate.audit"]
    assert len(audit) == 4
    assert re.search(r"role=write token=[0-9a-f]{8} action=put doc=config old=0 new=\d+", audit[0])
    assert re.search(r"role=admin token=[0-9a-f]{8} action=merge doc=config fields=b new=\d+", audit[1])
    everything = "\n".join([*(r.getMessage() for r in caplog.records), *bodies])
    for secret in (READ, WRITE, ADMIN, "not-a-real-token-zzzz", TOKENS):
        assert secret not in everything


def test_the_openapi_schema_declares_bearer_auth_and_responses(api: Api) -> None:
    schema = api.get("/openapi.json", token=None).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operation = schema["paths"]["/v1/docs/{name}"]["get"]
    assert operation["security"] == [{"bearer": []}]
    assert {"200", "401", "403", "404", "422"} <= set(operation["responses"])
    assert "DocumentOut" in schema["components"]["schemas"]


def test_a_streamed_body_over_the_limit_is_refused(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit must count
        yield b'"'
        for _ in range(40):
            yield b"x" * (1024 * 1024)
        yield b'"'

    response = api.put("/v1/docs/huge", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "content_too_large"
    assert api.get("/v1/docs/huge").status_code == 404


def test_without_tokens_web_pages_cannot_drive_the_api(
    redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path
) -> None:
    open_api = Api(create_app(settings_for(redis_server, tmp_path, api_tokens=None)))
    try:
        local = {"Host": "127.0.0.1:8080"}
        assert open_api.get("/v1/docs", token=None, headers=local).status_code == 200
        assert open_api.get("/v1/docs", token=None, headers={"Host": "localhost"}).status_code == 200
        same = {**local, "Origin": "http://127.0.0.1:8080"}
        assert open_api.put("/v1/docs/x", token=None, headers=same, json=1).status_code == 200
        for headers in (
            {"Host": "evil.example:8080"},  # DNS rebinding: a foreign name resolving to 127.0.0.1
            {**local, "Origin": "https://evil.example"},  # a cross-site form or fetch
            {**local, "Origin": "null"},
        ):
            for method, path in (("POST", "/v1/import"), ("POST", "/v1/snapshots"), ("GET", "/v1/export")):
                response = open_api.request(
                    method, path, token=None, headers={**headers, "Content-Type": "text/plain"}, content="{}"
                )
                assert response.status_code == 403, (headers, path)
                assert response.json()["error"] == "forbidden_origin"
        listed = open_api.get("/v1/docs", token=None, headers=local).json()
        assert [doc["name"] for doc in listed] == ["x"]  # nothing imported
    finally:
        open_api.close()


def test_readyz_names_no_internal_address(tmp_path: Path) -> None:
    api = Api(create_app(Settings.load(redis_url="redis://10.9.8.7:6399/0", api_tokens=TOKENS,
                                       data_dir=tmp_path, timeout=0.5)))  # fmt: skip
    try:
        response = api.get("/readyz", token=None)
        assert response.status_code == 503
        assert "10.9.8.7" not in response.text and "6399" not in response.text
    finally:
        api.close()
