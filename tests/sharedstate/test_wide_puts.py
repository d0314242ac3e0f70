"""Puts of very wide objects: staged in chunks, swapped in by one script, exactly like any put."""

from __future__ import annotations

from typing import Any

import pytest

from sharedstate import InvalidDocument, SharedStateError, SharedStore, VersionConflict
from sharedstate._core import STAGE_CHUNK, STAGE_FIELDS

WIDE = STAGE_FIELDS + STAGE_CHUNK + 7  # staged, in more than one chunk


def _wide(tag: str = "") -> dict[str, Any]:
    return {f"k{i}": f"{tag}{i}" for i in range(WIDE)}


def _stages(raw: Any) -> list[bytes]:
    return list(raw.scan_iter(match="*sys:put:*"))


def test_a_wide_put_reads_back_and_leaves_nothing_staged(store: Any, raw: Any) -> None:
    first = store.put("wide", _wide())
    assert store.get("wide").data == _wide()
    second = store.put("wide", {**_wide("x"), "extra": {1, 2}})
    assert second > first
    doc = store.get("wide")
    assert doc.data == {**_wide("x"), "extra": {1, 2}} and doc.version == second
    assert store.info("wide").size > 0
    change = store.history("wide", 1)[0]
    assert (change.op, change.version, change.omitted, change.fields) == ("put", second, True, None)
    assert store.put("wide", {"small": 1}) > second  # back to an ordinary put over it
    assert store.get("wide").data == {"small": 1}
    assert _stages(raw) == []


def test_a_wide_put_with_a_stale_version_writes_nothing(store: Any, raw: Any) -> None:
    version = store.put("wide", {"a": 1})
    with pytest.raises(VersionConflict):
        store.put("wide", _wide(), expected_version=version + 1)
    assert store.get("wide").data == {"a": 1} and _stages(raw) == []
    assert store.put("wide", _wide(), expected_version=version) > version


def test_a_wide_put_over_the_size_limit_writes_nothing(make_store: Any, raw: Any) -> None:
    small = make_store(max_document_bytes=100_000)
    with pytest.raises(InvalidDocument):
        small.put("wide", _wide())
    assert _stages(raw) == []


def test_a_resent_staged_put_is_applied_once(make_store: Any) -> None:
    if make_store.backend != "real" or make_store.flavour != "sync":
        pytest.skip("drives the calls of one sync store on a real server")
    store: SharedStore = make_store()
    call = store._core.put("wide", _wide(), None)
    assert call.before, "a wide put is staged"
    first = store._run(call)
    again = store._run(call)  # a re-send after a lost answer: the write id says it is done
    assert again.version == first.version and store.history("wide", 5)[0].version == first.version
    assert len(store.history("wide", 5)) == 1 and _stages(store.redis) == []


def test_staged_fields_lost_before_the_swap_write_nothing(make_store: Any) -> None:
    if make_store.backend != "real" or make_store.flavour != "sync":
        pytest.skip("drives the calls of one sync store on a real server")
    store: SharedStore = make_store()
    store.put("wide", {"a": 1})
    call = store._core.put("wide", _wide(), None)
    for command in call.before:
        store.redis.execute_command(*command)
    for key in _stages(store.redis):
        store.redis.delete(key)  # as an eviction would
    with pytest.raises(SharedStateError, match="write it again"):
        call.parse(store.redis.execute_command(*call.command))
    assert store.get("wide").data == {"a": 1}
