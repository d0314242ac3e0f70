"""The codec's per-thread packer: threads packing at once (sets re-enter it) get their own bytes."""

from __future__ import annotations

import json
import threading
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharedstate import codec
from sharedstate.jsonio import dumps_plain, encode_entries, loads_entries, loads_tagged


def _value(i: int) -> Any:
    return {"i": i, "s": {i, i + 1}, "f": frozenset({str(i)}), "big": 2**70 + i, "l": [i] * (i % 7)}


def test_threads_packing_at_once_each_get_their_own_bytes() -> None:
    expected = {i: msgpack.packb(_value(i), default=codec._default, use_bin_type=True) for i in range(3000)}
    wrong: list[int] = []
    start = threading.Barrier(4)

    def pack(offset: int) -> None:
        start.wait()
        for i in range(offset, 3000, 4):
            if codec._pack(_value(i)) != expected[i]:
                wrong.append(i)

    threads = [threading.Thread(target=pack, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert codec.decode_value(codec._pack(_value(5))) == _value(5)


def test_a_failed_pack_leaves_the_packer_clean() -> None:
    with pytest.raises(TypeError):
        codec._pack([1, object()])
    assert codec._pack([2]) == msgpack.packb([2])


JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)


def test_loads_entries_is_json_loads() -> None:
    values = st.recursive(
        JSON_SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20
    )

    @settings(max_examples=300, deadline=None)
    @given(values, st.sampled_from([None, 1]))
    def check(value: object, indent: int | None) -> None:
        text = json.dumps(value, indent=indent)
        assert loads_entries(text) == json.loads(text)

    check()
    for bad in ("{", '{"a" 1}', '{"a": 1,}', '{"a": 1} x', "{1: 2}", '{"a": NaN}', ""):
        try:
            loads_entries(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_encode_entries_is_the_whole_encoding() -> None:
    keys = st.text() | st.sampled_from(["$set", "$dict", "$x"])
    values = st.recursive(
        JSON_SCALARS | st.frozensets(st.integers()) | st.sets(st.text()),
        lambda inner: st.lists(inner) | st.dictionaries(keys, inner),
        max_leaves=20,
    )

    @settings(max_examples=300, deadline=None)
    @given(values)
    def check(value: object) -> None:
        assert json.loads(encode_entries(value)) == json.loads(dumps_plain(value))
        assert loads_tagged(encode_entries(value, tagged=True)) == value

    check()
