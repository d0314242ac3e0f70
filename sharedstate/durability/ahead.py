"""Overlap two halves of a bulk operation: a thread produces the next items while the caller
works on the current one (Redis answering one side while Python encodes or decodes the other)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_POLL = 0.1  # seconds between two looks at the stop flag while the queue is full


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def ahead(items: Iterable[T], depth: int = 2, name: str = "sharedstate-ahead") -> Iterator[T]:
    """Iterate ``items``, produced by a thread at most ``depth`` items in advance.

    An error raised while producing is raised here, in order, after the items produced before
    it. Leaving the loop early (break, error) stops the thread and closes ``items``.
    """
    handoff: queue.Queue[T | _End] = queue.Queue(depth)
    stop = threading.Event()

    def offer(item: T | _End) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            end = _End(None)
            try:
                for item in source:
                    if not offer(item):
                        return
            except BaseException as exc:  # handed to the consumer, which raises it
                end = _End(exc)
            offer(end)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
