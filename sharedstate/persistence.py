"""What Redis's persistence settings mean for the store: one assessment for /v1/health and doctor."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

EVICTING = frozenset(
    {
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    }
)


@dataclass
class Assessment:
    """Figures taken from INFO (and CONFIG GET save), with warnings; ``degraded`` when data is at risk now."""

    figures: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    degraded: bool = False


JOURNAL_SILENT_AFTER = 30.0
"""Seconds without a report from a running worker's journal before it counts as stopped."""


def journal_live(record: dict[str, Any] | None, worker_alive: bool, now: float) -> bool:
    """Whether the worker's journal (its published state ``record``) is following the feed."""
    if record is None or not worker_alive:
        return False
    return now - float(record.get("updated_at") or 0) <= JOURNAL_SILENT_AFTER


def aof_off(journaled: bool) -> str:
    """What AOF off costs: with a live journal, only the changes not yet on the backup target."""
    if journaled:
        return (
            "Redis AOF is off: a Redis restart loses the last second or so of writes, which the "
            "worker's journal had not yet put on the backup target (appendonly yes keeps those too; "
            "see docs/durability.md)"
        )
    return (
        "Redis AOF is off: a Redis restart loses the writes since the last snapshot or RDB save "
        "(turn on appendonly yes, appendfsync everysec; see docs/durability.md)"
    )


def assess(info: dict[str, Any], save: str | None, journaled: bool = False) -> Assessment:
    """Judge INFO's persistence and memory settings (keys missing when INFO is restricted);
    ``journaled``: the worker's journal is live (see ``journal_live``)."""
    last_save = info.get("rdb_last_save_time")
    figures = {
        "version": info.get("redis_version"),
        "used_memory": info.get("used_memory"),
        "maxmemory": info.get("maxmemory"),
        "maxmemory_policy": info.get("maxmemory_policy"),
        "aof_enabled": bool(info["aof_enabled"]) if "aof_enabled" in info else None,
        "rdb_last_save_age": round(time.time() - last_save) if last_save else None,
        "rdb_changes_since_last_save": info.get("rdb_changes_since_last_save"),
        "save": save,
    }
    result = Assessment(figures)
    if figures["aof_enabled"] is False:
        result.warnings.append(aof_off(journaled))
    if figures["maxmemory_policy"] in EVICTING:
        result.degraded = True
        result.warnings.append(
            f"Redis maxmemory-policy is {figures['maxmemory_policy']}: documents can be evicted silently "
            "(use noeviction)"
        )
    return result
