"""Which snapshots survive: the newest N plus the newest of each recent hour, day and week.

``select_kept`` is pure: given creation times it returns those to keep. Always kept as well:
the newest snapshot known to be good, whatever its age or rank.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def _iso_week(timestamp: float) -> tuple[int, ...]:
    year, week, _ = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isocalendar()
    return (year, week)


_BUCKETS: dict[str, Callable[[float], tuple[int, ...]]] = {
    "hourly": lambda t: tuple(time.gmtime(t)[:4]),
    "daily": lambda t: tuple(time.gmtime(t)[:3]),
    "weekly": _iso_week,
}


def select_kept(
    items: Iterable[T], created_at: Callable[[T], float], keep: dict[str, int], always: T | None = None
) -> list[T]:
    """The items to keep under ``keep`` (``{"last": 10, "hourly": 24, "daily": 7, "weekly": 4}``)."""
    newest_first = sorted(items, key=created_at, reverse=True)
    kept: list[T] = newest_first[: keep.get("last", 0)]
    for period, bucket_of in _BUCKETS.items():
        wanted = keep.get(period, 0)
        seen: set[tuple[int, ...]] = set()
        for item in newest_first:
            if len(seen) >= wanted:
                break
            bucket = bucket_of(created_at(item))
            if bucket not in seen:
                seen.add(bucket)
                if item not in kept:
                    kept.append(item)
    if always is not None and always not in kept:
        kept.append(always)
    return sorted(kept, key=created_at, reverse=True)
