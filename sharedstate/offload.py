"""Which values and replies are large enough to encode or decode off the event loop.

Encoding a document with a million keys takes a second of pure Python; done on the event loop
it stalls every other coroutine of the process (an API serving other requests, a bot). The
asyncio client hands such work to a thread; the GIL is then released every few milliseconds,
so other coroutines keep running.
"""

from __future__ import annotations

from typing import Any

LARGE_NODES = 20_000  # containers and items walked before a value counts as large (~1 ms)
LARGE_BYTES = 512 * 1024  # reply bytes from which decoding goes to a thread


def is_large(value: Any, budget: int = LARGE_NODES) -> bool:
    """True if ``value`` holds more than ``budget`` items (nested ones counted), cheaply: the walk
    stops as soon as the budget is spent."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            budget -= len(item) + 1
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            budget -= len(item) + 1
            stack.extend(item)
        elif isinstance(item, str | bytes):
            budget -= len(item) >> 16  # a long string costs a copy, not a walk
        if budget < 0:
            return True
    return False


def reply_bytes(raw: Any, depth: int = 2) -> int:
    """Roughly how many bytes a Redis reply holds (bytes items of its first ``depth`` levels)."""
    if isinstance(raw, bytes | str):
        return len(raw)
    if depth and isinstance(raw, list | tuple):
        return sum(reply_bytes(item, depth - 1) for item in raw)
    if depth and isinstance(raw, dict):
        return sum(reply_bytes(k, 0) + reply_bytes(v, depth - 1) for k, v in raw.items())
    return 0
