"""Foreign bytes in Redis, re-sent writes, and the public surface."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

import sharedstate
from sharedstate import InvalidDocument, SharedStore


def test_garbage_written_by_something_else_names_the_field(store: Any, raw: Any) -> None:
    store.put("doc", {"good": 1, "bad": 2})
    raw.hset(f"ss:{{{store.namespace}}}:d:doc", "bad", b"\xc1\xff not msgpack")
    with pytest.raises(InvalidDocument, match="'bad'"):
        store.get("doc")
    with pytest.raises(InvalidDocument, match="'bad'"):
        store.get_field("doc", "bad")
    assert store.get_field("doc", "good") == 1
    raw.hset(f"ss:{{{store.namespace}}}:d:doc", b"\xff\xfe", b"\x01")
    store.delete_field("doc", "bad")
    with pytest.raises(InvalidDocument, match="UTF-8"):
        store.get("doc")


def test_a_resent_write_applies_once(store: Any) -> None:
    """redis-py re-sends a script that timed out; the write id makes the second send a no-op."""
    store.put("doc", {"n": 0})
    call = store._core.merge("doc", {"n": 1}, None)
    runner = store if isinstance(store, SharedStore) else store.astore
    first = _run(store, runner, call)
    again = _run(store, runner, call)
    assert first == again
    assert store.get("doc").version == first
    assert len(store.history("doc")) == 2


def _run(store: Any, runner: Any, call: Any) -> Any:
    if isinstance(store, SharedStore):
        return runner._run(call)
    return store.loop.run(runner._run(call))


def test_a_resent_conditional_write_reports_success_not_conflict(store: Any) -> None:
    v = store.put("doc", {"n": 0})
    call = store._core.put("doc", {"n": 1}, v)
    runner = store if isinstance(store, SharedStore) else store.astore
    first = _run(store, runner, call)
    again = _run(store, runner, call)  # not VersionConflict(expected=v, actual=v+1)
    assert (again.version, again.feed_id, again.time) == (first.version, first.feed_id, first.time)


def test_public_surface() -> None:
    assert set(sharedstate.__all__) == {
        "AsyncSharedStore",
        "AsyncStoreMapping",
        "Change",
        "ConfigurationError",
        "Document",
        "DocumentInfo",
        "DocumentNotFound",
        "FeedTrimmed",
        "InvalidDocument",
        "SharedStateError",
        "SharedStore",
        "SnapshotError",
        "StoreMapping",
        "StoreUnavailable",
        "VersionConflict",
        "Written",
        "__version__",
    }
    for name in sharedstate.__all__:
        assert hasattr(sharedstate, name)
    errors = [
        sharedstate.VersionConflict,
        sharedstate.DocumentNotFound,
        sharedstate.StoreUnavailable,
        sharedstate.InvalidDocument,
        sharedstate.FeedTrimmed,
        sharedstate.ConfigurationError,
    ]
    assert all(issubclass(error, sharedstate.SharedStateError) for error in errors)
    for method in (
        "from_url",
        "from_env",
        "get",
        "load",
        "put",
        "merge",
        "set_field",
        "get_field",
        "delete_field",
        "delete",
        "update",
        "names",
        "history",
        "watch",
        "mapping",
        "close",
    ):
        assert hasattr(sharedstate.SharedStore, method)
        assert hasattr(sharedstate.AsyncSharedStore, method)


def test_errors_pickle() -> None:
    import pickle

    error = sharedstate.VersionConflict("doc", 1, 2)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.name, copy.expected, copy.actual) == ("doc", 1, 2)
    assert pickle.loads(pickle.dumps(sharedstate.DocumentNotFound("x"))).name == "x"


def test_document_and_change_are_immutable() -> None:
    store = SharedStore(fakeredis.FakeRedis())
    store.put("d", 1)
    doc = store.get("d")
    with pytest.raises(AttributeError):
        doc.version = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        store.history("d")[0].op = "x"  # type: ignore[misc]


def test_an_unanswered_write_says_its_outcome_is_unknown_whatever_its_action_is_called() -> None:
    from sharedstate import SharedStore, StoreUnavailable
    from sharedstate.durability import batch
    from sharedstate.redis_server import free_port

    store = SharedStore.from_url(f"redis://127.0.0.1:{free_port()}/0", "gone", timeout=0.5, stale_reads=False)
    core = store._core
    restore = batch.restore_calls(core, [], batch.Target(True, "", "w"), ["a"])
    writes = [
        ([core.delete("a", None)], "delete documents"),
        ([call for _, call in restore], "restore documents"),
        (core.put_all({"a": 1}), "import documents"),
    ]
    for calls, action in writes:
        with pytest.raises(StoreUnavailable, match="outcome is unknown"):
            store._run_many(calls, action)
    with pytest.raises(StoreUnavailable) as info:
        store._run_many([core.get("a", stale=False)], "read documents")
    assert "outcome" not in str(info.value)  # a read has no outcome to be unsure of
    store.close()
