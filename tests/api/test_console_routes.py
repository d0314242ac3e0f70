"""The console's page, assets and routes through HTTP (the browser tests are in tests/console)."""

from __future__ import annotations

import re

from sharedstate import SharedStore
from tests.api.conftest import ADMIN, READ, WRITE, Api


def test_the_page_loads_without_a_token_under_a_strict_policy(api: Api) -> None:
    page = api.get("/", token=None)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # everything it loads is served here: no CDN, no inline script
    assets = [url for url in re.findall(r'(?:src|href)="([^"]+)"', page.text) if not url.startswith("#")]
    assert assets and all(asset.startswith("/static/") for asset in assets), assets
    assert "<script>" not in page.text
    for asset in assets:
        assert api.get(asset, token=None).status_code == 200, asset


def test_static_files_stay_in_their_directory(api: Api) -> None:
    for path in ("/static/../routes/console.py", "/static/%2e%2e/main.py", "/static/nope.js"):
        assert api.get(path, token=None).status_code == 404, path


def test_whoami_names_the_role_and_never_the_token(api: Api, store: SharedStore) -> None:
    for token, role in ((READ, "read"), (WRITE, "write"), (ADMIN, "admin")):
        body = api.get("/v1/whoami", token=token).json()
        assert body["role"] == role and body["namespace"] == store.namespace
        assert token not in str(body) and re.fullmatch(r"[0-9a-f]{8}", body["token_id"])
    assert api.get("/v1/whoami", token=None).status_code == 401


def test_events_after_a_trimmed_position_end_with_an_error_event(api: Api, store: SharedStore) -> None:
    store.put("config", {"a": 1})  # the feed's oldest entry is now after 1-0
    response = api.get("/v1/events", params={"after": "1-0"})
    assert response.status_code == 200
    assert response.text.startswith(": connected\n\n")
    assert "event: error\n" in response.text and '"error": "FeedTrimmed"' in response.text
    assert "event: change" not in response.text


def test_events_refuse_a_malformed_position(api: Api) -> None:
    response = api.get("/v1/events", params={"after": "yesterday"})
    assert response.status_code == 422
    response = api.get("/v1/events", headers={"Last-Event-ID": "x"})
    assert response.status_code == 422
