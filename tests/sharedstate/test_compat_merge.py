"""save_json_file writes what this process changed, on top of what the other process wrote."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from sharedstate import InvalidDocument, SharedStore, VersionConflict, _diff, compat
from sharedstate.redis_server import RedisProcess

PATH = "/app/data/database.json"


@pytest.fixture
def other(redis_server: RedisProcess, real_redis: redis.Redis) -> Iterator[SharedStore]:
    """The other service, writing the same namespace; the drop-in's store is our own."""
    real_redis.delete(*real_redis.keys("ss:{compat}:*") or ["-"])
    mine = SharedStore.from_url(redis_server.url, "compat", "bot")
    compat.configure(mine)
    yield SharedStore(real_redis, "compat", "cron")
    compat.configure(None)
    mine.close()


def test_changes_to_other_keys_and_paths_survive(other: SharedStore) -> None:
    other.put("database", {"buildings": {"1": {"floors": 3}, "2": {"floors": 5}}, "tokens": {}, "seen": [1]})
    data = compat.load_json_file(PATH)
    other.merge("database", {"tokens": {"t-cron": 1}})
    other.update("database", lambda d: d["buildings"]["2"].update(floors=6))
    other.update("database", lambda d: d["seen"].append(2))
    data["buildings"]["1"]["floors"] = 4
    data["buildings"]["3"] = {"floors": 1}
    data["seen"].append(3)
    data["new"] = True
    compat.save_json_file(PATH, data)
    assert other.load("database") == {
        "buildings": {"1": {"floors": 4}, "2": {"floors": 6}, "3": {"floors": 1}},
        "tokens": {"t-cron": 1},
        "seen": [1, 2, 3],
        "new": True,
    }
    assert compat.overwrites().get("database", 0) == 0


def test_removals_remove_only_what_this_process_removed(other: SharedStore) -> None:
    other.put("database", {"a": 1, "b": 2, "c": {"x": 1, "y": 2}})
    data = compat.load_json_file(PATH)
    other.merge("database", {"d": 4})
    del data["a"]
    del data["c"]["x"]
    compat.save_json_file(PATH, data)
    assert other.load("database") == {"b": 2, "c": {"y": 2}, "d": 4}
    # the next save still only writes this process's changes
    data["b"] = 3
    compat.save_json_file(PATH, data)
    assert other.load("database") == {"b": 3, "c": {"y": 2}, "d": 4}


def test_the_same_path_changed_by_both_this_save_wins_and_says_so(
    other: SharedStore, caplog: pytest.LogCaptureFixture
) -> None:
    other.put("database", {"owner": "ada", "n": 1})
    data = compat.load_json_file(PATH)
    other.merge("database", {"owner": "bob"})
    data["owner"] = "cy"
    with caplog.at_level(logging.WARNING, "sharedstate.compat"):
        compat.save_json_file(PATH, data)
    assert other.load("database") == {"owner": "cy", "n": 1}
    assert compat.overwrites()["database"] == 1
    assert "$.owner" in caplog.text and "'bob'" in caplog.text


def test_on_conflict_raise_writes_nothing(other: SharedStore) -> None:
    other.put("database", {"owner": "ada", "n": 1})
    data = compat.load_json_file(PATH)
    version = other.merge("database", {"owner": "bob"})
    data["owner"] = "cy"
    data["n"] = 2
    with pytest.raises(VersionConflict):
        compat.save_json_file(PATH, data, on_conflict="raise")
    doc = other.get("database")
    assert (doc.data, doc.version) == ({"owner": "bob", "n": 1}, version)


def test_a_save_without_a_load_writes_the_whole_document(other: SharedStore) -> None:
    other.put("database", {"old": 1})
    compat.save_json_file(PATH, {"fresh": 1})
    assert other.load("database") == {"fresh": 1}


def test_json_semantics_keys_tuples_and_refusals(other: SharedStore) -> None:
    data = compat.load_json_file(PATH)
    data.update({42: {"name": "Ada"}, 1.5: "x", True: "t", None: "n", "pair": (1, 2)})
    compat.save_json_file(PATH, data)
    expected = {"42": {"name": "Ada"}, "1.5": "x", "true": "t", "null": "n", "pair": [1, 2]}
    assert other.load("database") == expected
    assert compat.load_json_file(PATH) == expected
    before = other.get("database").version
    for bad, where in [({"when": object()}, "$.when"), ({"ids": {1, 2}}, "$.ids"), ({(1, 2): 3}, "$")]:
        data = compat.load_json_file(PATH)
        data.update(bad)
        with pytest.raises(InvalidDocument, match=_escape(where)):
            compat.save_json_file(PATH, data)
    assert other.get("database").version == before  # nothing was written


def test_a_save_writes_only_the_changed_entry(other: SharedStore) -> None:
    other.put("database", {f"user{i}": {"n": i} for i in range(1000)})
    data = compat.load_json_file(PATH)
    data["user7"]["n"] = -7
    version = compat.save_json_file(PATH, data)
    change = other.history("database")[0]
    assert (change.op, change.fields, change.removed, change.version) == (
        "merge",
        {"user7": {"n": -7}},
        (),
        version,
    )
    assert compat.save_json_file(PATH, data) == version  # nothing changed: nothing written


def test_documents_that_are_lists_keep_both_sides_appends(other: SharedStore) -> None:
    other.put("contacted", [1, 2])
    ids = compat.load_json_file("contacted.json")
    other.update("contacted", lambda d: [*d, 3])
    ids.append(4)
    compat.save_json_file("contacted.json", ids)
    assert other.load("contacted") == [1, 2, 3, 4]


def _escape(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"a": 1}, {"a": 1.0}),
        ({"a": [1, 2]}, {"a": [1, 2, 3]}),
        ({"a": [1, 2]}, {"a": [2]}),
        ({"a": {"b": {"c": 1}}}, {"a": {"b": {}}}),
        ([1], {"x": 1}),
        ({"x": 1}, "text"),
        ({}, {"k": (1, [2])}),
    ],
)
def test_diff_then_apply_gives_the_new_data(old: Any, new: Any) -> None:
    baseline = _diff.normalise(old, "doc")
    ops = _diff.diff(baseline, new, "doc")
    expected = _diff.normalise(new, "doc")
    if _diff.is_object_patch(baseline, ops):
        undo = _diff.apply(baseline, ops)
        assert baseline == expected and all(type(baseline[k]) is type(expected[k]) for k in expected)
        _diff.undo(undo)
        assert baseline == _diff.normalise(old, "doc")
    merged = _diff.merge_onto(_diff.copy(baseline), ops, baseline)
    result = merged.data if merged.whole is _diff.MISSING else merged.whole
    assert result == expected and not merged.conflicts


def test_both_sides_keep_appending_to_one_list(other: SharedStore) -> None:
    other.put("database", {"audit": []})
    data = compat.load_json_file(PATH)
    for i in range(5):
        data["audit"].append(f"bot {i}")
        compat.save_json_file(PATH, data)
        other.update("database", lambda d, i=i: d["audit"].append(f"cron {i}"))
    audit = other.load("database")["audit"]
    assert sorted(audit) == sorted([f"bot {i}" for i in range(5)] + [f"cron {i}" for i in range(5)])
    assert compat.overwrites().get("database", 0) == 0


def test_threads_of_one_process_saving_one_document_lose_nothing(other: SharedStore) -> None:
    import threading

    other.put("database", {})
    data = compat.load_json_file(PATH)
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(50):
            with lock:
                data[f"t{n}-{i}"] = i
            compat.save_json_file(PATH, data)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert other.load("database") == {f"t{n}-{i}": i for n in range(4) for i in range(50)}
