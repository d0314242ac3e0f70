"""The public contract ("Public Python API" and "Semantics that tests hold the code to" of the
project's DESIGN.md, summarised for contributors in docs/design.md), on fakeredis and real
Redis, sync and async."""

from __future__ import annotations

import copy
import datetime
import decimal
import math
from typing import Any

import pytest

from sharedstate import Change, Document, DocumentNotFound, InvalidDocument, VersionConflict

# -- values -------------------------------------------------------------------------------

ROUND_TRIP = [
    {"a": 1},
    {"int": 7, "neg": -3, "zero": 0, "big": 2**200, "negbig": -(2**100), "i64": 2**63 - 1, "u64": 2**64 - 1},
    {"float": 1.5, "tiny": 5e-324, "huge": 1.7976931348623157e308, "negzero": -0.0, "one": 1.0},
    {"unicode": "héllo wörld ✓ 日本 🎉", "empty": "", "nul": "a\x00b"},
    {"nested": {"list": [1, [2, [3, {"deep": None}]]], "dict": {"x": {"y": {"z": True}}}}},
    {"none": None, "true": True, "false": False, "list_of_bools": [True, False, 1, 0]},
    {"set": {1, 2, 3}, "strs": {"a", "b"}, "frozen": frozenset({1.5, "x", None}), "empty_set": set()},
    {"": "empty key", "key with spaces": 1, "ключ": 2, "a.b:c": 3},
    {},
    [1, "two", 3.0, None, {"x": [1]}],
    [],
    "just a string",
    "",
    42,
    2**70,
    3.25,
    True,
    False,
    None,
    {"only_set": {frozenset({1, 2}), frozenset()}},
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_values_round_trip_exactly(store: Any, value: Any) -> None:
    store.put("doc", value)
    got = store.get("doc").data
    assert got == value
    assert _types(got) == _types(value)


def _types(value: Any) -> Any:
    """The value's shape with types, so 1 != 1.0 != True and set != list."""
    if isinstance(value, dict):
        return ("dict", {k: _types(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return ("list", [_types(v) for v in value])
    if isinstance(value, set | frozenset):
        return (type(value).__name__, sorted(map(repr, value)))
    if isinstance(value, float) and math.copysign(1, value) < 0 and value == 0:
        return ("float", "-0.0")
    return (type(value).__name__, value)


def test_tuples_are_stored_as_lists(store: Any) -> None:
    store.put("doc", {"t": (1, 2)})
    assert store.get("doc").data == {"t": [1, 2]}


class Thing:
    pass


@pytest.mark.parametrize(
    ("value", "path", "what"),
    [
        ({"when": datetime.datetime(2026, 1, 1)}, "$.when", "datetime"),
        ({"a": {"b": [1, 2, Thing()]}}, "$.a.b[2]", "Thing"),
        ({"a": [{"x": 1}, {"y": b"bytes"}]}, "$.a[1].y", "bytes"),
        ({"n": float("nan")}, "$.n", "nan"),
        ({"n": [float("inf")]}, "$.n[0]", "inf"),
        ({"d": decimal.Decimal("1.5")}, "$.d", "Decimal"),
        ({"k": {1: "int key"}}, "$.k", "int"),
        ({"weird key": {"x": object()}}, '$["weird key"].x', "object"),
        ({"s": {(1, 2)}}, "$.s", "tuple"),
        ({"u": "\ud800"}, "$.u", "UTF-8"),
        (datetime.date(2026, 1, 1), "$", "date"),
    ],
)
def test_values_json_cannot_hold_are_refused_naming_the_path(
    store: Any, raw: Any, value: Any, path: str, what: str
) -> None:
    version = store.put("doc", {"keep": "me"})
    before = sorted(raw.keys("*"))
    with pytest.raises(InvalidDocument) as info:
        store.put("doc", value)
    assert path in str(info.value)
    assert what in str(info.value)
    assert store.get("doc").data == {"keep": "me"}
    assert store.get("doc").version == version
    assert sorted(raw.keys("*")) == before


def test_invalid_values_in_field_writes_are_refused(store: Any) -> None:
    version = store.put("doc", {"keep": "me"})
    with pytest.raises(InvalidDocument, match=r"\$\.f\.when"):
        store.set_field("doc", "f", {"when": datetime.time()})
    with pytest.raises(InvalidDocument, match=r"\$\.ok|\$\.bad"):
        store.merge("doc", {"ok": 1, "bad": {1, 2, object()}})
    assert store.get("doc").data == {"keep": "me"}
    assert store.get("doc").version == version


def test_nesting_too_deep_is_refused(store: Any) -> None:
    value: Any = 1
    for _ in range(600):
        value = [value]
    with pytest.raises(InvalidDocument, match="nesting"):
        store.put("doc", value)


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", "a" * 201, "with space", "slash/ed", "ünï", "tab\t", "new\nline", "{brace}", "*", None, 5]
)
def test_invalid_names_are_refused_before_touching_redis(store: Any, raw: Any, name: Any) -> None:
    for call in (
        lambda: store.put(name, 1),
        lambda: store.get(name),
        lambda: store.load(name),
        lambda: store.merge(name, {"a": 1}),
        lambda: store.set_field(name, "a", 1),
        lambda: store.get_field(name, "a"),
        lambda: store.delete_field(name, "a"),
        lambda: store.delete(name),
        lambda: store.update(name, lambda d: d),
        lambda: store.history(name),
    ):
        with pytest.raises(InvalidDocument, match="name"):
            call()
    assert raw.keys("*") == []


@pytest.mark.parametrize("name", ["a", "a" * 200, "config", "user_data", "a.b-c:d_E9", "-", "..."])
def test_valid_names(store: Any, name: str) -> None:
    store.put(name, {"ok": True})
    assert store.load(name) == {"ok": True}
    assert name in store.names()


# -- versions and compare-and-set -----------------------------------------------------------


def test_versions_are_positive_and_increase_with_each_write(store: Any) -> None:
    versions = [store.put("doc", {"a": 1}), store.merge("doc", {"b": 2}), store.set_field("doc", "c", 3)]
    versions.append(store.delete_field("doc", "c"))
    assert versions[0] >= 1 and versions == sorted(set(versions))
    assert all(version < 2**53 for version in versions)  # JavaScript reads them exactly
    doc = store.get("doc")
    assert (doc.version, doc.data) == (versions[-1], {"a": 1, "b": 2})
    assert doc.updated_by == "tester"
    assert isinstance(doc.updated_at, float)


def test_versions_are_never_reused_after_delete_and_recreate(store: Any) -> None:
    seen = [store.put("doc", 1), store.put("doc", 2)]
    assert store.delete("doc") is True
    seen.append(store.put("doc", 3))
    assert store.delete("doc") is True
    seen.append(store.set_field("doc", "x", 1))
    assert seen == sorted(set(seen))
    assert seen[2] > seen[1] + 0 and seen[3] > seen[2]
    history = store.history("doc")
    versions = [change.version for change in history]
    assert versions == sorted(set(versions), reverse=True)


def test_compare_and_set(store: Any) -> None:
    v = store.put("config", {"a": 1})
    v2 = store.put("config", {"a": 2}, expected_version=v)
    assert v2 > v
    with pytest.raises(VersionConflict) as info:
        store.put("config", {"a": 3}, expected_version=v)
    assert (info.value.name, info.value.expected, info.value.actual) == ("config", v, v2)
    assert store.get("config").data == {"a": 2}


def test_expected_version_zero_creates_only_if_absent(store: Any) -> None:
    created = store.put("new", {"a": 1}, expected_version=0)
    with pytest.raises(VersionConflict) as info:
        store.put("new", {"a": 2}, expected_version=0)
    assert (info.value.expected, info.value.actual) == (0, created)
    with pytest.raises(VersionConflict) as info:
        store.put("absent", {"a": 2}, expected_version=3)
    assert info.value.actual == 0
    assert store.load("absent") is None


def test_every_write_takes_expected_version(store: Any) -> None:
    v = store.put("doc", {"a": 1})
    for write in (
        lambda: store.merge("doc", {"b": 1}, expected_version=v + 1),
        lambda: store.set_field("doc", "b", 1, expected_version=v + 1),
        lambda: store.delete_field("doc", "a", expected_version=v + 1),
        lambda: store.delete("doc", expected_version=v + 1),
    ):
        with pytest.raises(VersionConflict):
            write()
    assert store.get("doc") == Document("doc", {"a": 1}, v, store.get("doc").updated_at, "tester")
    v = store.merge("doc", {"b": 1}, expected_version=v)
    v = store.set_field("doc", "c", 1, expected_version=v)
    v = store.delete_field("doc", "c", expected_version=v)
    assert store.delete("doc", expected_version=v) is True


@pytest.mark.parametrize("bad", [-1, "1", 1.0, True])
def test_expected_version_must_be_a_nonnegative_int(store: Any, bad: Any) -> None:
    with pytest.raises(InvalidDocument, match="expected_version"):
        store.put("doc", 1, expected_version=bad)


# -- the other operations -------------------------------------------------------------------


def test_get_of_absent_document_raises_and_load_gives_default(store: Any) -> None:
    with pytest.raises(DocumentNotFound) as info:
        store.get("nope")
    assert info.value.name == "nope"
    assert isinstance(info.value, LookupError)
    assert store.load("nope") is None
    assert store.load("nope", default={"d": 1}) == {"d": 1}


def test_merge_and_set_field_create_an_absent_document(store: Any) -> None:
    assert store.merge("m", {"a": 1, "b": 2}) >= 1
    assert store.set_field("s", "x", [1]) >= 1
    assert store.get("m").data == {"a": 1, "b": 2}
    assert store.get("s").data == {"x": [1]}


def test_get_field_defaults(store: Any) -> None:
    store.put("doc", {"a": 1, "n": None})
    assert store.get_field("doc", "a") == 1
    assert store.get_field("doc", "n", default=5) is None
    assert store.get_field("doc", "zz") is None
    assert store.get_field("doc", "zz", default=5) == 5
    assert store.get_field("absent", "a", default="d") == "d"


def test_delete_field_of_absent_field_writes_nothing(store: Any) -> None:
    v = store.put("doc", {"a": 1})
    assert store.delete_field("doc", "zz") == v
    assert store.get("doc").version == v
    assert len(store.history("doc")) == 1
    assert store.delete_field("absent", "a") == 0
    assert "absent" not in store.names()


def test_delete(store: Any) -> None:
    store.put("doc", {"a": 1})
    assert store.delete("doc") is True
    assert store.delete("doc") is False
    assert store.load("doc") is None
    assert store.names() == []


def test_field_operations_on_a_plain_value_document_are_refused(store: Any) -> None:
    first = store.put("list", [1, 2])
    for write in (
        lambda: store.merge("list", {"a": 1}),
        lambda: store.set_field("list", "a", 1),
        lambda: store.delete_field("list", "a"),
        lambda: store.get_field("list", "a"),
    ):
        with pytest.raises(InvalidDocument, match="not an object"):
            write()
    assert store.get("list").data == [1, 2]
    second = store.put("list", {"now": "object"})
    assert first < second < store.set_field("list", "a", 1)


def test_names_are_sorted(store: Any) -> None:
    for name in ["zeta", "alpha", "Mid", "beta:1", "beta.0"]:
        store.put(name, {})
    assert store.names() == sorted(["zeta", "alpha", "Mid", "beta:1", "beta.0"])


def test_history_newest_first_with_deletes(store: Any) -> None:
    store.put("doc", {"a": 1})
    store.merge("doc", {"b": 2})
    store.set_field("doc", "c", 3)
    store.delete_field("doc", "a")
    store.delete("doc")
    store.put("doc", [9])
    history = store.history("doc")
    assert [c.op for c in history] == ["put", "delete", "delete_field", "set_field", "merge", "put"]
    assert [c.fields for c in history] == [[9], None, {}, {"c": 3}, {"b": 2}, {"a": 1}]
    assert history[2].removed == ("a",)
    assert all(isinstance(c, Change) and c.name == "doc" and c.writer == "tester" for c in history)
    assert [c.version for c in history] == sorted((c.version for c in history), reverse=True)
    assert [c.op for c in store.history("doc", limit=2)] == ["put", "delete"]
    assert store.history("never") == []


def test_history_is_capped(make_store: Any) -> None:
    store = make_store(history_limit=5)
    for i in range(12):
        store.put("doc", i)
    assert [c.fields for c in store.history("doc", limit=100)] == [11, 10, 9, 8, 7]


def test_update_increments(store: Any) -> None:
    versions = []
    for _ in range(5):
        doc = store.update("counter", lambda data: {**data, "n": data.get("n", 0) + 1})
        versions.append(doc.version)
    assert isinstance(doc, Document)
    assert doc.data == {"n": 5}
    assert versions == sorted(set(versions))  # five writes, five increasing versions
    assert store.get("counter").data == {"n": 5}


def test_update_may_mutate_in_place_and_starts_from_empty_dict(store: Any) -> None:
    seen: list[Any] = []

    def fn(data: dict[str, Any]) -> None:
        seen.append(copy.deepcopy(data))
        data.setdefault("items", []).append(len(data.get("items", [])))

    store.update("doc", fn)
    store.update("doc", fn)
    assert seen == [{}, {"items": [0]}]
    assert store.load("doc") == {"items": [0, 1]}


def test_update_retries_on_conflict_then_gives_up(make_store: Any) -> None:
    store = make_store()
    other = make_store(namespace=store.namespace, client_name="other", sync=True)
    calls = 0

    def interfering(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        other.merge("doc", {"other": calls})  # another writer gets in every time
        return {**data, "mine": True}

    with pytest.raises(VersionConflict):
        store.update("doc", interfering, retries=3)
    assert calls == 4
    assert "mine" not in store.load("doc")

    calls = 0

    def interfering_once(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            other.merge("doc", {"other": "again"})
        return {**data, "mine": True}

    doc = store.update("doc", interfering_once)
    assert calls == 2
    assert doc.data["mine"] is True and doc.data["other"] == "again"


def test_update_fn_errors_propagate_and_write_nothing(store: Any) -> None:
    version = store.put("doc", {"a": 1})

    def boom(data: Any) -> Any:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.update("doc", boom)
    assert store.get("doc").version == version


def test_update_result_is_validated(store: Any) -> None:
    with pytest.raises(InvalidDocument):
        store.update("doc", lambda data: {"x": object()})
    assert store.load("doc") is None


# -- size limit ---------------------------------------------------------------------------


def test_oversized_documents_are_refused(make_store: Any) -> None:
    store = make_store(max_document_bytes=1000)
    version = store.put("doc", {"a": "x" * 400})
    with pytest.raises(InvalidDocument, match="1000"):
        store.put("doc", {"a": "x" * 2000})
    with pytest.raises(InvalidDocument, match="limit"):
        store.merge("doc", {"b": "y" * 400, "c": "z" * 400})  # together with "a": too large
    with pytest.raises(InvalidDocument, match="limit"):
        store.set_field("doc", "b", "y" * 700)
    assert store.get("doc").data == {"a": "x" * 400}
    assert store.get("doc").version == version
    store.set_field("doc", "a", "x" * 900)  # replacing a field counts only the new value
    store.delete_field("doc", "a")
    store.set_field("doc", "b", "y" * 900)  # the freed space counts again


def test_default_limit_is_16_mib(store: Any) -> None:
    with pytest.raises(InvalidDocument, match=str(16 * 1024 * 1024)):
        store.put("big", "x" * (16 * 1024 * 1024 + 1))
    assert store.load("big") is None


# -- isolation and key layout ---------------------------------------------------------------


def test_namespaces_are_isolated(make_store: Any) -> None:
    one = make_store(namespace="one")
    two = make_store(namespace="two")
    one.put("config", {"who": "one"})
    two.put("config", {"who": "two"})
    two.put("only_two", 1)
    assert one.get("config").data == {"who": "one"}
    assert one.names() == ["config"]
    assert two.names() == ["config", "only_two"]
    one.delete("config")
    assert two.get("config").data == {"who": "two"}
    assert one.history("config")[0].op == "delete"
    assert two.history("config")[0].op == "put"


def test_all_keys_share_the_namespace_hash_tag(store: Any, raw: Any) -> None:
    store.put("a", {"x": 1})
    store.merge("b", {"y": 2})
    store.delete("a")
    list(store.watch(timeout=0))
    keys = [key.decode() for key in raw.keys("*")]
    assert keys
    assert all(key.startswith(f"ss:{{{store.namespace}}}:") for key in keys), keys
    assert not any(key.startswith("rq:") for key in keys)


# -- watch ----------------------------------------------------------------------------------


def test_watch_yields_changes_made_after_the_call(store: Any) -> None:
    store.put("config", {"before": True})
    changes = store.watch(["config"], timeout=1.0)
    versions = [store.put("config", {"a": 1})]
    store.put("other", {"ignored": True})
    versions.append(store.set_field("config", "b", 2))
    store.delete("config")
    got = list(changes)
    assert [(c.name, c.op) for c in got] == [("config", "put"), ("config", "set_field"), ("config", "delete")]
    assert got[0].fields == {"a": 1}
    assert got[1].fields == {"b": 2}
    assert got[0].writer == "tester"
    assert [c.version for c in got][:2] == versions and got[2].version > versions[1]


def test_watch_all_names_and_resume_after_a_position(store: Any) -> None:
    first = store.watch(timeout=0.5)
    store.put("a", 1)
    store.put("b", 2)
    store.put("c", 3)
    got = list(first)
    assert [c.name for c in got] == ["a", "b", "c"]
    resumed = list(store.watch(after=got[0].id, timeout=0.3))
    assert [c.name for c in resumed] == ["b", "c"]
    assert [c.name for c in store.watch(after="0-0", timeout=0.3)] == ["a", "b", "c"]


def test_watch_stops_after_timeout_without_changes(store: Any) -> None:
    assert list(store.watch(["x"], timeout=0.2)) == []


def test_watch_whose_timeout_ran_out_before_iterating_still_returns_changes_made(store: Any) -> None:
    changes = store.watch(timeout=0)  # already out of time at the first iteration
    store.put("a", 1)
    assert [c.name for c in changes] == ["a"]
    assert list(store.watch(timeout=0)) == []


def test_watch_says_when_the_feed_was_trimmed(make_store: Any) -> None:
    from sharedstate import FeedTrimmed

    store = make_store(feed_maxlen=1)
    first = store.watch(timeout=0.2)
    store.put("a", 0)
    [change] = list(first)
    old = change.id
    for i in range(300):  # MAXLEN ~ trims whole nodes of ~100 entries
        store.put("a", i)
    with pytest.raises(FeedTrimmed) as info:
        list(store.watch(after=old, timeout=0.1))
    assert info.value.after == old


@pytest.mark.parametrize("bad", ["now", "1-2-3", "", "$", "18446744073709551616-0", "1-18446744073709551616"])
def test_watch_rejects_bad_positions(store: Any, bad: str) -> None:
    with pytest.raises(InvalidDocument, match="feed position"):
        list(store.watch(after=bad, timeout=0.1))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, "5", True])
def test_watch_rejects_bad_timeouts(store: Any, bad: Any) -> None:
    with pytest.raises(InvalidDocument, match="timeout"):
        list(store.watch(timeout=bad))


def test_watch_says_when_the_feed_it_resumes_from_was_lost(store: Any, raw: Any) -> None:
    from sharedstate import FeedTrimmed

    changes = store.watch(timeout=0.2)
    store.put("a", 1)
    [change] = list(changes)
    raw.flushall()  # Redis lost everything, the feed too
    with pytest.raises(FeedTrimmed, match="empty"):
        list(store.watch(after=change.id, timeout=0.1))


def test_payloads_over_the_limit_are_omitted_from_feed_and_history(make_store: Any) -> None:
    store = make_store(payload_limit=100)
    changes = store.watch(["doc"], timeout=0.5)
    store.put("doc", {"big": "x" * 500})
    store.set_field("doc", "small", 1)
    [big, small] = store.history("doc")[::-1]
    assert (big.omitted, big.fields, big.op) == (True, None, "put")
    assert (small.omitted, small.fields) == (False, {"small": 1})
    watched = list(changes)
    assert [(c.omitted, c.fields) for c in watched] == [(True, None), (False, {"small": 1})]
    assert store.get("doc").data == {"big": "x" * 500, "small": 1}  # the document itself is whole
