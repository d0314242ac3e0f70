"""Documents through HTTP: reads, conditional writes, history, bad input."""

from __future__ import annotations

import json

from sharedstate import SharedStore
from tests.api.conftest import READ, Api


def test_put_get_with_etag(api: Api) -> None:
    response = api.put("/v1/docs/config", json={"a": 1, "b": [1, 2]})
    assert response.status_code == 200
    version = response.json()["version"]
    assert response.json() == {"name": "config", "version": version} and isinstance(version, int)
    assert response.headers["etag"] == f'"{version}"'
    response = api.get("/v1/docs/config")
    assert response.status_code == 200 and response.headers["etag"] == f'"{version}"'
    body = response.json()
    assert body["data"] == {"a": 1, "b": [1, 2]} and body["version"] == version
    assert set(body) == {"name", "version", "updated_at", "updated_by", "data"}
    assert api.get("/v1/docs/config", headers={"If-None-Match": f'"{version}"'}).status_code == 304


def test_any_json_value_is_a_document(api: Api) -> None:
    for value in [[1, "x", None], "text", 42, 1.5, True, None, {}]:
        assert (
            api.put(
                "/v1/docs/value", content=json.dumps(value), headers={"Content-Type": "application/json"}
            ).status_code
            == 200
        )
        assert api.get("/v1/docs/value").json()["data"] == value


def test_sets_come_out_as_sorted_lists(api: Api, store: SharedStore) -> None:
    store.put("ids", {"contacted": {5, 3, 9, 1}, "mixed": {"b", "a"}})
    assert api.get("/v1/docs/ids").json()["data"] == {"contacted": [1, 3, 5, 9], "mixed": ["a", "b"]}
    assert api.get("/v1/export").json()["ids"]["contacted"] == [1, 3, 5, 9]


def test_if_match_makes_writes_conditional(api: Api, store: SharedStore) -> None:
    first = api.put("/v1/docs/config", json={"a": 1}).json()["version"]
    second = store.merge("config", {"other": "writer"})
    for response in (
        api.put("/v1/docs/config", json={"a": 2}, headers={"If-Match": f'"{first}"'}),
        api.patch("/v1/docs/config", json={"a": 2}, headers={"If-Match": f'"{first}"'}),
        api.delete("/v1/docs/config", headers={"If-Match": f'"{first}"'}),
    ):
        assert response.status_code == 412
        assert response.json()["error"] == "version_mismatch"
        assert response.json()["detail"]["current_version"] == second
        assert response.headers["etag"] == f'"{second}"'
    assert store.get("config").data == {"a": 1, "other": "writer"}
    response = api.put("/v1/docs/config", json={"a": 3}, headers={"If-Match": f'"{second}"'})
    third = response.json()["version"]
    assert response.status_code == 200 and third > second
    response = api.patch("/v1/docs/config", json={"b": 4}, headers={"If-Match": f'W/"{third}"'})
    assert response.status_code == 200 and store.get("config").data == {"a": 3, "b": 4}
    assert api.put("/v1/docs/config", json={}, headers={"If-Match": "*"}).status_code == 200
    assert api.put("/v1/docs/absent", json={}, headers={"If-Match": "*"}).status_code == 404
    assert api.put("/v1/docs/config", json={}, headers={"If-None-Match": "*"}).status_code == 412
    assert api.put("/v1/docs/created", json={}, headers={"If-None-Match": "*"}).status_code == 200
    # a condition that cannot hold is a 412 (RFC 9110), malformed or contradictory ones too
    for headers in ({"If-Match": "banana"}, {"If-Match": '"1", "2"'}, {"If-Match": "*", "If-None-Match": "*"},
                    {"If-None-Match": "null"}):  # fmt: skip
        response = api.put("/v1/docs/config", json={"x": 1}, headers=headers)
        assert response.status_code == 412 and response.json()["error"] == "precondition_failed", headers
    current = store.info("config").version
    assert api.put("/v1/docs/config", json={}, headers={"If-None-Match": f'"{current}"'}).status_code == 412
    assert api.put("/v1/docs/config", json={"y": 1}, headers={"If-None-Match": '"1"'}).status_code == 200
    assert store.get("config").data == {"y": 1}


def test_patch_merges_top_level_fields(api: Api) -> None:
    first = api.put("/v1/docs/config", json={"a": 1}).json()["version"]
    response = api.patch("/v1/docs/config", json={"b": {"nested": True}, "c": None})
    assert response.status_code == 200 and response.json()["version"] > first
    assert api.get("/v1/docs/config").json()["data"] == {"a": 1, "b": {"nested": True}, "c": None}
    created = api.patch("/v1/docs/new", json={"x": 1})
    assert created.status_code == 200 and api.get("/v1/docs/new").json()["data"] == {"x": 1}  # creates
    bad = api.patch("/v1/docs/config", json=[1, 2])
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_document"
    api.put("/v1/docs/list", json=[1, 2])
    conflict = api.patch("/v1/docs/list", json={"a": 1})
    assert conflict.status_code == 409 and conflict.json()["error"] == "not_an_object"


def test_delete(api: Api) -> None:
    api.put("/v1/docs/config", json={"a": 1})
    response = api.delete("/v1/docs/config")
    assert response.status_code == 204 and response.content == b""
    response = api.delete("/v1/docs/config")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert api.get("/v1/docs/config").status_code == 404


def test_list_and_history(api: Api) -> None:
    api.put("/v1/docs/b", json={"x": 1})
    api.put("/v1/docs/a", json=[1])
    b_version = api.patch("/v1/docs/b", json={"y": 2}).json()["version"]
    api.delete("/v1/docs/a")
    api.put("/v1/docs/a", json=[2])
    listed = api.get("/v1/docs").json()
    assert [row["name"] for row in listed] == ["a", "b"]
    assert (
        listed[1]["version"] == b_version and listed[1]["kind"] == "object" and listed[0]["kind"] == "value"
    )
    assert all({"name", "version", "updated_at", "updated_by"} <= set(row) for row in listed)
    history = api.get("/v1/docs/a/history").json()
    assert [change["op"] for change in history] == ["put", "delete", "put"]
    assert history[0]["fields"] == [2] and history[1]["fields"] is None
    assert len(api.get("/v1/docs/b/history", params={"limit": 1}).json()) == 1
    assert api.get("/v1/docs/b/history", params={"limit": 0}).status_code == 422
    assert api.get("/v1/docs/never/history").json() == []


def test_bad_names_and_bodies_get_json_errors(api: Api) -> None:
    for path in ("/v1/docs/bad name", "/v1/docs/" + "x" * 201, "/v1/docs/ünï", "/v1/docs/a%2Fb"):
        response = api.get(path)
        assert response.status_code in (404, 422), path
        assert "error" in response.json()
    cases = [
        (b"{not json", "application/json", 422, "invalid_json"),
        (b"", "application/json", 422, "invalid_json"),
        (b'{"a": NaN}', "application/json", 422, "invalid_json"),
        (b"\xff\xfe", "application/json", 422, "invalid_json"),
        (b"[" * 100000, "application/json", 422, "invalid_json"),
        (b'{"a": 1}', "multipart/form-data; boundary=x", 415, "unsupported_media_type"),
    ]
    for body, content_type, status, code in cases:
        response = api.put("/v1/docs/config", content=body, headers={"Content-Type": content_type})
        assert (response.status_code, response.json()["error"]) == (status, code), body[:20]
    assert api.get("/v1/docs").json() == []
    # curl -d sends form-encoded bodies: accepted when they are JSON
    response = api.put(
        "/v1/docs/curl", content=b'{"a": 1}', headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200


def test_documents_over_the_limits(api: Api, settings: object) -> None:
    huge = b'"' + b"x" * (32 * 1024 * 1024) + b'"'
    response = api.put("/v1/docs/huge", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "error" in response.json()
    over_document_limit = b'"' + b"x" * (16 * 1024 * 1024 + 10) + b'"'
    response = api.put(
        "/v1/docs/big", content=over_document_limit, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and "limit" in response.json()["detail"]
    assert api.get("/v1/docs/big").status_code == 404


def test_not_found(api: Api) -> None:
    response = api.get("/v1/docs/missing")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "document 'missing' does not exist"}
    assert api.get("/v1/nothing-here").json()["error"] == "not_found"


def test_reads_need_only_the_read_role(api: Api) -> None:
    api.put("/v1/docs/x", json=1)
    assert api.get("/v1/docs/x", token=READ).status_code == 200


def test_reads_always_see_writes_made_outside_the_api(api: Api, store: SharedStore) -> None:
    store.put("config", {"v": 1})
    assert api.get("/v1/docs/config").json()["data"] == {"v": 1}
    assert api.get("/v1/docs/config").json()["data"] == {"v": 1}  # served from the rendered copy
    version = store.merge("config", {"v": 2})
    response = api.get("/v1/docs/config")
    assert response.json()["data"] == {"v": 2} and response.headers["etag"] == f'"{version}"'
    store.delete("config")
    assert api.get("/v1/docs/config").status_code == 404
    store.put("config", [1])
    assert api.get("/v1/docs/config").json()["data"] == [1]


def test_the_list_pages_with_limit_and_after(api: Api, store: SharedStore) -> None:
    names = [f"doc{i:04d}" for i in range(2500)]
    store.put_all(dict.fromkeys(names, 1))
    assert [doc["name"] for doc in api.get("/v1/docs").json()] == names  # all, across info batches
    seen: list[str] = []
    url: str | None = "/v1/docs?limit=1000"
    while url:
        response = api.get(url)
        seen += [doc["name"] for doc in response.json()]
        link = response.headers.get("link")
        url = link.split(";")[0].strip("<>") if link else None
    assert seen == names
    assert [doc["name"] for doc in api.get("/v1/docs?limit=2&after=doc0100").json()] == ["doc0101", "doc0102"]
    assert api.get("/v1/docs?limit=0").status_code == 422
