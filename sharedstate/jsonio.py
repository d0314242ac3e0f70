"""JSON text of store values, in two dialects.

* **tagged** (snapshots): lossless. A set is ``{"$set": [...]}``, a frozenset
  ``{"$frozenset": [...]}``, and a user's own one-key object whose key starts with ``$`` is
  wrapped as ``{"$dict": {...}}`` so it is never mistaken for a tag.
* **plain** (exports, the HTTP API): what other JSON tools expect; sets become sorted lists.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterator
from typing import Any

import orjson

_TAG_MARK_BYTES = b'{"$'  # our compact encoders print this for a one-key object with a $-key only
_KEY_MARK_BYTES = b'"$'  # text from elsewhere may put space after the brace: any string starting with $
_UNREAD = object()


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


def iter_plain(value: Any, *, indent: int | None = None) -> Iterator[str]:
    """``dumps_plain`` in pieces, for writing a large value without building its whole text."""
    separators = (",", ":") if indent is None else (",", ": ")
    encoder = json.JSONEncoder(
        default=_plain_default, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators
    )
    return encoder.iterencode(value)


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


# The stdlib encoders, built once, for what orjson refuses (ints beyond 64 bits) and escaping.
_TAGGED = json.JSONEncoder(
    default=_tagged_default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
)
_ESCAPED = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_tagged(value: Any) -> bytes:
    """Lossless JSON of a store value (one line), as UTF-8.

    orjson does the work (snapshots spend much of their time here); it refuses ints beyond
    64 bits, which the stdlib encoder then handles. Both print the same JSON values.
    """
    try:
        raw = orjson.dumps(value, default=_tagged_default)
    except orjson.JSONEncodeError:
        raw = _TAGGED.encode(value).encode()
    if b"$" in raw and _TAG_MARK_BYTES in raw and _needs_escape(value):  # memchr first: faster
        raw = _ESCAPED.encode(_escape(value)).encode()
    return raw


def dumps_tagged(value: Any) -> str:
    """``encode_tagged`` as text."""
    return encode_tagged(value).decode()


def _needs_escape(value: Any) -> bool:
    """True if a user object looks like a tag (the fast path above only saw the text)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith("$"):
            return True
        return any(_needs_escape(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_needs_escape(item) for item in value)
    return False


_MEMBERS = (str, int, float, bool, type(None), frozenset)


def _untag(value: Any) -> Any:
    # Top-down: an escaped user object {"$dict": {"$set": [1]}} must keep its inner object.
    if isinstance(value, dict):
        if len(value) == 1:
            key, item = next(iter(value.items()))
            if key in ("$set", "$frozenset"):
                if not isinstance(item, list):
                    raise ValueError(f"{key} takes a list of members, not {type(item).__name__}")
                members = [_untag(member) for member in item]
                if not all(isinstance(member, _MEMBERS) for member in members):
                    raise ValueError(f"{key} members must be JSON scalars (or frozensets)")
                return set(members) if key == "$set" else frozenset(members)
            if key == "$dict":
                if not isinstance(item, dict):
                    raise ValueError(f"$dict takes an object, not {type(item).__name__}")
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
# orjson reads ints beyond 64 bits as floats, silently: text with such a long run of digits
# (maybe just inside a string) is left to the stdlib decoder, which keeps every int exact.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19  # a run of 19 digits once every digit reads 0 (faster than a regex)


def loads_tagged(text: str | bytes, *, exact_ints: bool = True) -> Any:
    """Inverse of ``encode_tagged``; ValueError on text it never writes (NaN, Infinity, 1e999).

    ``exact_ints=False`` skips the look for long digit runs: ints beyond 64 bits may come back
    as floats, which is enough to tell whether the text is valid.
    """
    raw = text.encode("utf-8") if isinstance(text, str) else text
    value: Any = _UNREAD
    if not exact_ints or raw.translate(_DIGITS_AS_ZERO).find(_LONG_DIGITS) == -1:
        with contextlib.suppress(orjson.JSONDecodeError):  # the stdlib decoder decides, and says why
            value = orjson.loads(raw)
    if value is _UNREAD:
        value = _DECODER.decode(raw.decode("utf-8"))
    return _untag(value) if b"$" in raw and _KEY_MARK_BYTES in raw else value


_SPACE = re.compile(r"[ \t\n\r]*")
_EXACT = json.JSONDecoder(parse_constant=_no_constant)


def loads_entries(text: str, *, tagged: bool = False) -> Any:
    """``json.loads`` (``tagged``: ``loads_tagged``) that decodes a top-level object one entry at a
    time (anything else at once).

    One C call decoding megabytes holds the GIL throughout; entry by entry, a thread doing this
    lets the event loop run between entries. Ints keep every digit; NaN and Infinity are refused.
    """
    value = _entries(text)
    if not tagged or '"$' not in text:
        return value
    if isinstance(value, dict) and not (len(value) == 1 and next(iter(value)).startswith("$")):
        return {key: _untag(item) for key, item in value.items()}  # entry by entry again
    return _untag(value)  # the whole value is one tag, or not an object


def _entries(text: str) -> Any:
    at = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    if not text.startswith("{", at):
        return _EXACT.decode(text)
    result: dict[str, Any] = {}
    at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
    if text.startswith("}", at):
        at += 1
    else:
        while True:
            key, at = _EXACT.raw_decode(text, at)
            if not isinstance(key, str):
                raise ValueError(f"an object key must be a string (at offset {at})")
            at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
            if not text.startswith(":", at):
                raise ValueError(f"expected ':' at offset {at}")
            at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
            result[key], at = _EXACT.raw_decode(text, at)
            at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
            if text.startswith(",", at):
                at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
                continue
            if text.startswith("}", at):
                at += 1
                break
            raise ValueError(f"expected ',' or '}}' at offset {at}")
    if _SPACE.match(text, at).end() != len(text):  # type: ignore[union-attr]
        raise ValueError(f"extra data after the value at offset {at}")
    return result


def encode_entries(value: Any, *, tagged: bool = False) -> bytes:
    """The JSON of ``value`` (plain, or ``tagged``), a top-level object or list encoded one entry
    at a time: for a thread, which then lets the event loop run between entries (loads_entries)."""
    encode = encode_tagged if tagged else _encode_plain
    if isinstance(value, list):
        return b"[" + b",".join(encode(item) for item in value) + b"]"
    if not isinstance(value, dict) or (tagged and len(value) == 1 and next(iter(value)).startswith("$")):
        return encode(value)
    parts = [_ESCAPED.encode(key).encode() + b":" + encode(item) for key, item in value.items()]
    return b"{" + b",".join(parts) + b"}"


def _encode_plain(value: Any) -> bytes:
    return dumps_plain(value).encode()


def load_record(raw: bytes | str | None, shape: type[dict[str, Any]] | type[list[Any]] = dict) -> Any:
    """An internal record's JSON value (the worker's heartbeats, runs, catalogue, journal state)
    if it has ``shape``; None when absent, undecodable or of another shape. A garbled record
    reads as missing, never as an error: its writer writes it again, and health and listings
    must answer meanwhile."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return value if isinstance(value, shape) else None
