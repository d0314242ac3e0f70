"""How much Redis memory a namespace takes, and how full its feed and history budget is.

Pure: ``sample_commands`` and ``usage_of`` build and read the commands, which the sync
(``doctor``) and async (``/v1/health``) callers send in one pipeline each. Document memory is
estimated from a random sample of documents (``MEMORY USAGE`` of their keys), so it stays
cheap for any number of documents.
"""

from __future__ import annotations

from typing import Any

from sharedstate.keys import Keys

SAMPLE = 20  # documents whose keys are measured


def first_commands(keys: Keys) -> list[tuple[Any, ...]]:
    """Round one: the counts, the budget counter, the feed's memory and a sample of names."""
    return [
        ("SCARD", keys.names),
        ("GET", keys.feed_bytes),
        ("XLEN", keys.feed),
        ("MEMORY", "USAGE", keys.feed),
        ("SRANDMEMBER", keys.names, SAMPLE),
    ]


def sample_commands(keys: Keys, first: list[Any]) -> list[tuple[Any, ...]]:
    """Round two, from round one's answers: the memory of each sampled document's keys."""
    commands: list[tuple[Any, ...]] = []
    for raw in first[-1] or []:
        name = raw.decode("utf-8", "replace")
        commands += [
            ("MEMORY", "USAGE", key) for key in (keys.data(name), keys.meta(name), keys.history(name))
        ]
    return commands


def usage_of(first: list[Any], sampled: list[Any], budget: int) -> dict[str, Any]:
    """The figures: documents, their estimated memory, the feed's, and the budget's use."""
    documents, counted, entries, feed_memory, names = first
    per_document = sum(int(size or 0) for size in sampled) / max(1, len(names or []))
    history_bytes = int(counted or 0)
    return {
        "documents": int(documents or 0),
        "documents_memory_estimate": round(per_document * int(documents or 0)),
        "feed_entries": int(entries or 0),
        "feed_memory": int(feed_memory or 0),
        "history_bytes": history_bytes,
        "history_budget": budget,
        "history_budget_used": round(history_bytes / budget, 3) if budget else None,
    }
