"""?format=tagged: values keep their type through HTTP (sets, ints beyond 2^53, floats)."""

from __future__ import annotations

import json

from sharedstate import SharedStore
from tests.api.conftest import Api

EXACT = {
    "ids": {3, 1, 2},
    "frozen": frozenset({"a"}),
    "big": 12345678901234567890123,
    "discord": 1234567890123456789,
    "ratio": 1.0,
    "looks_like_a_tag": {"$set": [1]},
    "nested": [{"inner": {7}}],
}
TAGGED = {"Content-Type": "application/json"}


def test_a_tagged_read_written_back_unchanged_keeps_every_type(api: Api, store: SharedStore) -> None:
    store.put("exact", EXACT)
    body = api.get("/v1/docs/exact?format=tagged")
    assert body.status_code == 200
    text = body.text
    assert '"big":12345678901234567890123' in text and '"ratio":1.0' in text and '{"$set":[1,2,3]}' in text
    data = json.loads(text)["data"]
    written = api.put("/v1/docs/exact?format=tagged", content=json.dumps(data), headers=TAGGED)
    assert written.status_code == 200
    back = store.get("exact").data
    assert back == EXACT
    assert type(back["ratio"]) is float and type(back["ids"]) is set and type(back["frozen"]) is frozenset
    assert back["looks_like_a_tag"] == {"$set": [1]}  # the user's own object, not a set


def test_plain_is_still_the_default(api: Api, store: SharedStore) -> None:
    store.put("exact", {"ids": {2, 1}})
    assert api.get("/v1/docs/exact").json()["data"] == {"ids": [1, 2]}
    api.put("/v1/docs/exact", json={"ids": {"$set": [1]}})
    assert store.get("exact").data == {"ids": {"$set": [1]}}  # plain JSON takes objects as they are


def test_patch_in_the_tagged_dialect(api: Api, store: SharedStore) -> None:
    store.put("exact", {"keep": 1.0, "ids": {1}})
    response = api.patch("/v1/docs/exact?format=tagged", content='{"ids": {"$set": [1, 2]}}', headers=TAGGED)
    assert response.status_code == 200
    assert store.get("exact").data == {"keep": 1.0, "ids": {1, 2}}


def test_export_and_import_in_the_tagged_dialect(api: Api, store: SharedStore) -> None:
    store.put("exact", EXACT)
    exported = api.get("/v1/export?format=tagged")
    assert exported.status_code == 200
    store.delete("exact")
    imported = api.post("/v1/import?format=tagged", content=exported.content, headers=TAGGED)
    assert imported.status_code == 200, imported.text
    assert store.get("exact").data == EXACT


def test_malformed_tags_are_422(api: Api, store: SharedStore) -> None:
    for body in (
        '{"a": {"$set": 5}}',
        '{"a": {"$set": [[1]]}}',
        '{"a": {"$dict": 3}}',
        '{"a": {"$set": [{}]}}',
    ):
        response = api.put("/v1/docs/exact?format=tagged", content=body, headers=TAGGED)
        assert response.status_code == 422, body
        assert response.json()["error"] == "invalid_json"
    assert api.get("/v1/docs/exact?format=yaml").status_code == 422
    assert store.names() == []


def test_tagged_text_indented_by_hand_or_by_a_tool(api: Api, store: SharedStore) -> None:
    body = '{\n  "ids": {\n    "$set": [1, 2]\n  },\n  "keep": { "$dict": { "$set": 1 } }\n}'
    assert api.put("/v1/docs/exact?format=tagged", content=body, headers=TAGGED).status_code == 200
    assert store.get("exact").data == {"ids": {1, 2}, "keep": {"$set": 1}}


def test_large_bodies_decode_the_same_off_the_loop(api: Api, store: SharedStore) -> None:
    big = {f"k{i}": {"n": i, "ratio": 1.0, "id": 12345678901234567890 + i} for i in range(20_000)}
    body = json.dumps(big)
    assert len(body) > 256 * 1024
    assert api.put("/v1/docs/big", content=body, headers=TAGGED).status_code == 200
    assert store.get("big").data == big
    tagged = json.dumps({**big, "ids": {"$set": [1, 2]}, "own": {"$dict": {"$set": 1}}})
    assert api.put("/v1/docs/big?format=tagged", content=tagged, headers=TAGGED).status_code == 200
    assert store.get("big").data == {**big, "ids": {1, 2}, "own": {"$set": 1}}
    whole_tag = json.dumps({"$set": list(range(60_000))})
    assert api.put("/v1/docs/set?format=tagged", content=whole_tag, headers=TAGGED).status_code == 200
    assert store.get("set").data == set(range(60_000))
    for bad in (body[:-1], body + "x", body.replace(":", " ", 1), body.replace('"k1"', "1", 1)):
        response = api.put("/v1/docs/big", content=bad, headers=TAGGED)
        assert response.status_code == 422 and response.json()["error"] == "invalid_json"


def test_large_documents_render_the_same(api: Api, store: SharedStore) -> None:
    big = {f"k{i}": {"n": i, "ids": {i, i + 1}} for i in range(25_000)}
    big["$own"] = 1
    store.put("big", big)
    plain = api.get("/v1/docs/big").json()
    assert plain["data"]["k7"] == {"n": 7, "ids": [7, 8]} and plain["version"] == store.info("big").version
    tagged = api.get("/v1/docs/big?format=tagged")
    written = api.put(
        "/v1/docs/big?format=tagged", content=json.dumps(json.loads(tagged.text)["data"]), headers=TAGGED
    )
    assert written.status_code == 200 and store.get("big").data == big
