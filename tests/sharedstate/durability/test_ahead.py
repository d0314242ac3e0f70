"""ahead(): items produced by a thread in advance, in order, errors in place, stopped on early exit."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from sharedstate.durability.ahead import ahead


def test_every_item_arrives_in_order_produced_on_another_thread() -> None:
    producers: set[str] = set()

    def items() -> Iterator[int]:
        for i in range(1000):
            producers.add(threading.current_thread().name)
            yield i

    assert list(ahead(items(), depth=3)) == list(range(1000))
    assert producers == {"sharedstate-ahead"}


def test_an_error_while_producing_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    seen: list[int] = []
    with pytest.raises(OSError, match="disk gone"):
        for item in ahead(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def items() -> Iterator[int]:
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    with pytest.raises(RuntimeError, match="consumer failed"):
        for item in ahead(items(), depth=2):
            if item == 5:
                raise RuntimeError("consumer failed")
    assert closed.is_set()  # the generator's finally ran: its file would be closed
    assert len(produced) <= 5 + 1 + 2 + 1  # read ahead by the queue's depth, not to the end
    assert not [t for t in threading.enumerate() if t.name == "sharedstate-ahead"]
