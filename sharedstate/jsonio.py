"""JSON text of store values, in two dialects.

* **tagged** (snapshots): lossless. A set is ``{"$set": [...]}``, a frozenset
  ``{"$frozenset": [...]}``, and a user's own one-key object whose key starts with ``$`` is
  wrapped as ``{"$dict": {...}}`` so it is never mistaken for a tag.
* **plain** (exports, the HTTP API): what other JSON tools expect; sets become sorted lists.
"""

from __future__ import annotations

import json
import math
from typing import Any

_TAG_MARK = '{"$'  # only a one-key object with a $-key (or a tag) prints this


def _sort_key(item: Any) -> tuple[int, Any]:
    if item is None:
        return (0, 0)
    if isinstance(item, bool):
        return (1, item)
    if isinstance(item, int | float):
        return (2, item)
    if isinstance(item, str):
        return (3, item)
    return (4, dumps_plain(item))


def sorted_items(items: set[Any] | frozenset[Any]) -> list[Any]:
    """A set's items in a stable order, also for mixed types."""
    return sorted(items, key=_sort_key)


def _plain_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted_items(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_plain(value: Any, *, indent: int | None = None) -> str:
    """Standard JSON; sets as sorted lists."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        value,
        default=_plain_default,
        ensure_ascii=False,
        allow_nan=False,
        indent=indent,
        separators=separators,
    )


def _tagged_default(value: Any) -> Any:
    if isinstance(value, frozenset):
        return {"$frozenset": sorted_items(value)}
    if isinstance(value, set):
        return {"$set": sorted_items(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _escape(value: Any) -> Any:
    if isinstance(value, dict):
        out = {key: _escape(item) for key, item in value.items()}
        if len(out) == 1 and next(iter(out)).startswith("$"):
            return {"$dict": out}
        return out
    if isinstance(value, list | tuple):
        return [_escape(item) for item in value]
    if isinstance(value, frozenset):
        return {"$frozenset": [_escape(item) for item in sorted_items(value)]}
    if isinstance(value, set):
        return {"$set": [_escape(item) for item in sorted_items(value)]}
    return value


# Built once: json.dumps with options builds an encoder per call, a third of a small dump.
_TAGGED = json.JSONEncoder(
    default=_tagged_default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
)
_ESCAPED = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps_tagged(value: Any) -> str:
    """Lossless JSON text of a store value (one line)."""
    text = _TAGGED.encode(value)
    if _TAG_MARK in text and _needs_escape(value):
        text = _ESCAPED.encode(_escape(value))
    return text


def _needs_escape(value: Any) -> bool:
    """True if a user object looks like a tag (the fast path above only saw the text)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            return True
        return any(_needs_escape(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_needs_escape(item) for item in value)
    return False


def _untag(value: Any) -> Any:
    # Top-down: an escaped user object {"$dict": {"$set": [1]}} must keep its inner object.
    if isinstance(value, dict):
        if len(value) == 1:
            key, item = next(iter(value.items()))
            if key == "$set":
                return {_untag(member) for member in item}
            if key == "$frozenset":
                return frozenset(_untag(member) for member in item)
            if key == "$dict":
                return {name: _untag(member) for name, member in item.items()}
        return {name: _untag(member) for name, member in value.items()}
    if isinstance(value, list):
        return [_untag(member) for member in value]
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON a store value can hold")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of a float's range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def loads_tagged(text: str | bytes) -> Any:
    """Inverse of ``dumps_tagged``; ValueError on numbers it never writes (NaN, Infinity, 1e999)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    value = _DECODER.decode(text)
    return _untag(value) if _TAG_MARK in text else value
