"""Encoding of JSON values (plus sets) to the msgpack bytes stored in Redis.

A value must be something JSON can hold: dict with str keys, list/tuple, str, int (any
size), finite float, bool, None; plus ``set``/``frozenset`` of hashable JSON scalars, which
come back as sets. Anything else raises InvalidDocument naming the path of the bad value
(``$.users["42"].joined``). msgpack keeps ints, floats and bools apart, so values round-trip
exactly; three ext types carry sets, frozensets and ints beyond 64 bits.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from sharedstate.errors import InvalidDocument
from sharedstate.keys import KIND_OBJECT, KIND_VALUE, VALUE_FIELD

EXT_SET = 1
EXT_FROZENSET = 2
EXT_BIGINT = 3
MAX_DEPTH = 500  # msgpack refuses nesting deeper than 511; fail earlier with a clear message

_SCALARS = frozenset({str, int, bool, type(None)})
_SET_ITEMS = (str, int, float, bool, type(None), frozenset)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[object] = []


def format_path(parts: Iterable[object]) -> str:
    """Render a path as ``$.a["b c"][3]``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _IDENT.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{_quote(part)}]"
    return out


def _quote(part: object) -> str:
    if isinstance(part, str):
        return '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(part)


def _describe(value: object) -> str:
    return f"a {type(value).__module__}.{type(value).__qualname__}".replace("a builtins.", "a ")


def _check(value: Any, depth: int) -> None:
    kind = type(value)
    if kind in _SCALARS:
        return
    if depth > MAX_DEPTH:
        raise _Bad(f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"{value!r}, which JSON cannot hold")
    elif isinstance(value, dict):
        if kind is not dict:
            _same_contents(value)
        for key, item in value.items():
            if not isinstance(key, str):
                bad = _Bad(f"a key of type {type(key).__name__} ({key!r}); JSON object keys are strings")
                raise bad
            try:
                _check(item, depth + 1)
            except _Bad as exc:
                exc.path.append(key)
                raise
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                _check(item, depth + 1)
            except _Bad as exc:
                exc.path.append(index)
                raise
    elif isinstance(value, set | frozenset):
        for item in value:
            if not isinstance(item, _SET_ITEMS) or (isinstance(item, float) and not math.isfinite(item)):
                raise _Bad(f"a set holding {_describe(item)} ({item!r}); sets may hold JSON scalars only")
            if isinstance(item, frozenset):
                _check(item, depth + 1)
    elif not isinstance(value, str | int | bool):
        raise _Bad(f"{_describe(value)}, which JSON cannot hold")


def _same_contents(mapping: dict[Any, Any]) -> None:
    """A dict subclass is stored by what it holds; one whose ``len()`` or ``items()`` say otherwise
    (overridden) cannot be encoded faithfully, so it is refused rather than stored corrupt."""
    items = list(mapping.items())
    if len(items) != len(mapping) or items != list(dict.items(mapping)):
        raise _Bad(
            f"{_describe(mapping)} whose len() ({len(mapping)}) or items() ({len(items)} pairs) disagree "
            "with what it holds; pass a plain dict"
        )


def check_value(value: Any, where: str = "value", prefix: tuple[object, ...] = ()) -> None:
    """Raise InvalidDocument naming the path of the first value JSON cannot hold."""
    try:
        _check(value, len(prefix))
    except _Bad as exc:
        exc.path.reverse()
        raise InvalidDocument(f"{where} at {format_path([*prefix, *exc.path])} is {exc.reason}") from None


def _default(obj: Any) -> msgpack.ExtType:
    # a packer of its own: this runs inside the thread's packer, which must not be re-entered
    if isinstance(obj, frozenset):
        return msgpack.ExtType(EXT_FROZENSET, msgpack.packb(list(obj), default=_default, use_bin_type=True))
    if isinstance(obj, set):
        return msgpack.ExtType(EXT_SET, msgpack.packb(list(obj), default=_default, use_bin_type=True))
    if isinstance(obj, int):
        return msgpack.ExtType(EXT_BIGINT, str(int(obj)).encode())
    raise TypeError(f"cannot encode {_describe(obj)}")


_local = threading.local()


def _pack(value: Any) -> bytes:
    # One Packer per thread: packb builds a new one per call, which costs more than packing a
    # small value. Packer.pack resets its buffer when it raises.
    try:
        packer: msgpack.Packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(default=_default, use_bin_type=True)
    packed: bytes = packer.pack(value)
    return packed


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_SET:
        return set(_unpack(data))
    if code == EXT_FROZENSET:
        return frozenset(_unpack(data))
    if code == EXT_BIGINT:
        return int(data.decode("ascii"))
    raise ValueError(f"unknown ext type {code}")


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, ext_hook=_ext_hook, raw=False, strict_map_key=True, use_list=True)


def encode_value(value: Any, where: str = "value", prefix: tuple[object, ...] = ()) -> bytes:
    """Validate and encode one value; InvalidDocument (with its path) if JSON can't hold it."""
    check_value(value, where, prefix)
    try:
        return _pack(value)
    except (ValueError, TypeError, OverflowError, UnicodeError) as exc:
        # check_value passed, so this is a string that UTF-8 cannot encode (a lone surrogate).
        path = _find_unencodable(value, list(prefix))
        raise InvalidDocument(
            f"{where} at {format_path(path or prefix)} cannot be encoded as UTF-8: {exc}"
        ) from None


def _find_unencodable(value: Any, path: list[object]) -> list[object] | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_unencodable(key, path) or _find_unencodable(item, [*path, key])
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            found = _find_unencodable(item, [*path, index])
            if found is not None:
                return found
    return None


def decode_value(raw: bytes, where: str = "value") -> Any:
    """Decode bytes written by ``encode_value``; InvalidDocument if they are not ours."""
    try:
        return _unpack(raw)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise InvalidDocument(f"{where} holds bytes that are not a sharedstate value ({exc})") from None


def pack_plain(value: Any) -> bytes:
    """msgpack of internal, already-valid values (lists of names, small records)."""
    return _pack(value)


@dataclass(frozen=True, slots=True)
class EncodedDocument:
    """A document ready for the write script: kind, hash fields, their size, and the feed blob."""

    kind: str
    fields: list[tuple[str, bytes]]
    size: int
    blob: bytes


def _map_header(count: int) -> bytes:
    if count < 16:
        return bytes([0x80 | count])
    if count < 2**16:
        return b"\xde" + count.to_bytes(2, "big")
    return b"\xdf" + count.to_bytes(4, "big")


def encode_fields(fields: Iterable[tuple[str, Any]], name: str) -> EncodedDocument:
    """Encode top-level fields of an object document (for put, merge and set_field)."""
    where = f"document {name!r}"
    encoded: list[tuple[str, bytes]] = []
    parts: list[bytes] = []
    size = 0
    for key, value in fields:
        if not isinstance(key, str):
            raise InvalidDocument(
                f"{where} at $ has a key of type {type(key).__name__} ({key!r}); JSON object keys are strings"
            )
        try:
            key_size = len(key.encode("utf-8"))
        except UnicodeError:
            raise InvalidDocument(f"{where} has a key that UTF-8 cannot encode: {key!r}") from None
        data = encode_value(value, where, (key,))
        encoded.append((key, data))
        size += key_size + len(data)  # the same sum the write script keeps in meta "s"
        parts += (_pack(key), data)
    blob = _map_header(len(encoded)) + b"".join(parts)
    return EncodedDocument(KIND_OBJECT, encoded, size, blob)


def encode_document(data: Any, name: str) -> EncodedDocument:
    """Encode a whole document: an object becomes one field per key, anything else one value."""
    if isinstance(data, dict):
        if type(data) is not dict:
            try:
                _same_contents(data)
            except _Bad as exc:
                raise InvalidDocument(f"document {name!r} at $ is {exc.reason}") from None
        return encode_fields(data.items(), name)
    raw = encode_value(data, f"document {name!r}")
    return EncodedDocument(KIND_VALUE, [(VALUE_FIELD, raw)], len(raw), raw)


def encode_parsed(data: Any, name: str) -> EncodedDocument:
    """``encode_document`` for data parsed from JSON (a snapshot): such data holds only what
    JSON can, so the checking walk is skipped and msgpack runs once per field and once for the
    feed blob. Anything msgpack refuses is handed to ``encode_document`` for its error."""
    try:
        blob = _pack(data)  # the same bytes as the map header + packed pairs of encode_fields
        if isinstance(data, dict):
            fields = [(key, _pack(value)) for key, value in data.items()]
            size = sum(len(key.encode("utf-8")) + len(raw) for key, raw in fields)
            return EncodedDocument(KIND_OBJECT, fields, size, blob)
    except (ValueError, TypeError, OverflowError, UnicodeError, AttributeError):
        return encode_document(data, name)
    return EncodedDocument(KIND_VALUE, [(VALUE_FIELD, blob)], len(blob), blob)


def encode_trusted_fields(fields: Iterable[tuple[str, Any]], name: str) -> EncodedDocument:
    """``encode_fields`` for values already checked (the drop-in's normalised copies): msgpack
    runs once per field without the checking walk. Anything msgpack refuses (a lone surrogate)
    goes to ``encode_fields`` for its error."""
    items = list(fields)
    try:
        encoded = [(key, _pack(value)) for key, value in items]
        size = sum(len(key.encode("utf-8")) + len(raw) for key, raw in encoded)
    except (ValueError, TypeError, OverflowError, UnicodeError):
        return encode_fields(items, name)
    return EncodedDocument(KIND_OBJECT, encoded, size, b"")


def decode_flat(kind: str, flat: list[bytes], name: str) -> Any:
    """Rebuild a document from HGETALL's flat field/value list (the fast path of snapshots)."""
    try:
        if kind == KIND_OBJECT:
            return {flat[i].decode("utf-8"): _unpack(flat[i + 1]) for i in range(0, len(flat), 2)}
    except (ValueError, TypeError, msgpack.UnpackException):
        pass  # decode_document below names the field at fault
    fields = {}
    for i in range(0, len(flat), 2):
        try:
            fields[flat[i].decode("utf-8")] = flat[i + 1]
        except UnicodeDecodeError:
            raise InvalidDocument(f"document {name!r} has a field name that is not UTF-8") from None
    return decode_document(kind, fields, name)


def decode_document(kind: str, fields: Mapping[str, bytes], name: str) -> Any:
    """Rebuild a document from its hash fields."""
    if kind == KIND_VALUE:
        raw = fields.get(VALUE_FIELD)
        if raw is None:
            raise InvalidDocument(f"document {name!r} is a plain value but its data is missing")
        return decode_value(raw, f"document {name!r}")
    return {field: decode_value(raw, f"document {name!r} field {field!r}") for field, raw in fields.items()}


def pack_document(kind: str, fields: Mapping[str, bytes]) -> bytes:
    """A document's hash fields as one msgpack value (a map for an object), without re-encoding
    any value: ``unpack_document`` rebuilds the data in one call."""
    if kind == KIND_VALUE:
        return fields[VALUE_FIELD]
    parts = [_map_header(len(fields))]
    for name, raw in fields.items():
        parts.append(_pack(name))
        parts.append(raw)
    return b"".join(parts)


def unpack_document(blob: bytes, name: str) -> Any:
    """The data ``pack_document`` packed, as new objects."""
    try:
        return _unpack(blob)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise InvalidDocument(f"document {name!r} holds bytes that are not sharedstate's ({exc})") from None
