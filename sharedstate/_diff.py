"""What a legacy load -> modify -> save changed, and how to apply it on top of another copy.

Pure functions for ``compat``: ``normalise`` makes data what ``json.dump`` + ``json.load``
would have made of it; ``diff`` finds the paths changed between the copy a process loaded
and what it saves; ``apply`` replays them on that copy (with an undo log); ``merge_onto``
replays them on the document as it is now, noting where another process changed the same
path. Paths go through object keys only: any list change but an append replaces the list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sharedstate import codec
from sharedstate.errors import InvalidDocument


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Set:
    """``path`` now holds ``new`` (normalised); it held ``old`` (or MISSING) in the loaded copy."""

    path: Path
    new: Any
    old: Any


@dataclass(frozen=True, slots=True)
class Delete:
    """``path``, which held ``old``, was removed."""

    path: Path
    old: Any


@dataclass(frozen=True, slots=True)
class Append:
    """The list at ``path`` (``old`` in the loaded copy) got ``items`` at its end."""

    path: Path
    old: list[Any]
    items: list[Any]


Op = Set | Delete | Append


@dataclass(frozen=True, slots=True)
class Conflict:
    """A path both processes changed: ``theirs`` is the other process's value it overwrote."""

    path: str
    theirs: Any


@dataclass(slots=True)
class Merged:
    """``merge_onto``'s answer: the changed document (``data``), or a ``whole`` replacement."""

    data: Any
    whole: Any = MISSING
    conflicts: list[Conflict] = field(default_factory=list)


# -- json semantics ------------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.path: list[object] = []


def _key(key: object) -> str:
    """The key ``json.dumps`` writes for ``key``."""
    if isinstance(key, str):
        return str(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        if math.isnan(key):
            return "NaN"
        if math.isinf(key):
            return "Infinity" if key > 0 else "-Infinity"
        return float.__repr__(key)
    raise _Bad(f"a key of type {type(key).__name__} ({key!r}), which json cannot write")


def _norm(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _Bad(f"{value!r}, which JSON cannot hold")
        return value
    if depth > codec.MAX_DEPTH:
        raise _Bad(f"nesting deeper than {codec.MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            try:
                out[_key(key)] = _norm(item, depth + 1)
            except _Bad as exc:
                exc.path.append(key if isinstance(key, str) else repr(key))
                raise
        return out
    if isinstance(value, list | tuple):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_norm(item, depth + 1))
            except _Bad as exc:
                exc.path.append(index)
                raise
        return items
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _norm(float(value), depth)
    if isinstance(value, set | frozenset):
        raise _Bad("a set, which json cannot write (convert it to a list, or keep it with the native API)")
    raise _Bad(f"a {type(value).__qualname__}, which json cannot write")


def normalise(value: Any, where: str, prefix: Path = ()) -> Any:
    """A fresh copy of ``value`` as ``json`` would write and read it back; InvalidDocument
    (naming the path) for what ``json`` cannot write."""
    try:
        return _norm(value, len(prefix))
    except _Bad as exc:
        exc.path.reverse()
        at = codec.format_path([*prefix, *exc.path])
        raise InvalidDocument(f"{where} at {at} is {exc.reason}") from None


def copy(value: Any) -> Any:
    """A deep copy of data read from the store (msgpack round trip, at C speed)."""
    return codec.decode_value(codec.pack_plain(value))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


# -- diff ----------------------------------------------------------------------------------


def diff(baseline: Any, data: Any, where: str) -> list[Op]:
    """The changes that turn ``baseline`` (normalised) into ``data``, normalised."""
    ops: list[Op] = []
    _walk(baseline, data, (), ops, where)
    return ops


def _walk(old: Any, new: Any, path: Path, ops: list[Op], where: str) -> None:
    if isinstance(new, dict) and type(old) is dict:
        get = old.get
        # Which keys differ, at C speed: in a registry of 10,000 entries most are equal. (Inside
        # a value, == decides: 1 -> 1.0 or True deep in an entry reads as no change, as in Python.)
        changed = [
            key
            for key, value in new.items()
            if (was := get(key, MISSING)) != value or type(was) is not type(value)
        ]
        present = len(new) - len(changed)
        converted = False  # a key json writes as a string: two keys of `new` may be one key
        for raw_key in changed:
            try:
                key = raw_key if type(raw_key) is str else _key(raw_key)
            except _Bad as exc:
                raise InvalidDocument(f"{where} at {codec.format_path(path)} has {exc.reason}") from None
            converted = converted or key is not raw_key
            before = get(key, MISSING)
            if before is MISSING:
                ops.append(Set((*path, key), normalise(new[raw_key], where, (*path, key)), MISSING))
            else:
                present += 1
                _walk(before, new[raw_key], (*path, key), ops, where)
        if present < len(old) or converted:
            keys = {key if type(key) is str else _key(key) for key in new}
            ops.extend(Delete((*path, key), value) for key, value in old.items() if key not in keys)
        return
    if isinstance(new, list | tuple) and type(old) is list:
        count = len(old)
        if len(new) > count and list(new[:count]) == old:
            items = [normalise(item, where, (*path, str(count + i))) for i, item in enumerate(new[count:])]
            ops.append(Append(path, old, items))
            return
    value = normalise(new, where, path)
    if not _same(value, old):
        ops.append(Set(path, value, old))


def is_object_patch(baseline: Any, ops: list[Op]) -> bool:
    """True if ``ops`` change fields of an object document (none replaces the whole document)."""
    return type(baseline) is dict and all(op.path for op in ops)


# -- applying ------------------------------------------------------------------------------

Undo = list[tuple[Any, Any, Any]]


def _parent(root: dict[str, Any], path: Path, create: bool) -> dict[str, Any] | None:
    node: Any = root
    for key in path[:-1]:
        child = node.get(key, MISSING) if type(node) is dict else MISSING
        if type(child) is not dict:
            if not create:
                return None
            child = {}
            node[key] = child
        node = child
    return node if type(node) is dict else None


def get_path(root: Any, path: Path) -> Any:
    """The value at ``path`` (MISSING if a key on the way is absent or not an object)."""
    node = root
    for key in path:
        if type(node) is not dict:
            return MISSING
        node = node.get(key, MISSING)
        if node is MISSING:
            return MISSING
    return node


def apply(root: dict[str, Any], ops: list[Op]) -> Undo:
    """Replay ``ops`` on ``root`` in place (its paths exist: ops were diffed from it); returns
    what ``undo`` needs to put it back."""
    undo: Undo = []
    for op in ops:
        parent = _parent(root, op.path, create=True)
        assert parent is not None
        key = op.path[-1]
        if isinstance(op, Append):
            target = parent[key]
            undo.append((target, None, len(target)))
            target.extend(op.items)
        else:
            undo.append((parent, key, parent.get(key, MISSING)))
            if isinstance(op, Set):
                parent[key] = op.new
            else:
                parent.pop(key, None)
    return undo


def replay(baseline: Any, ops: list[Op]) -> Any:
    """``baseline`` with ``ops`` replayed: in place when they patch an object, else a new value."""
    if is_object_patch(baseline, ops):
        apply(baseline, ops)
        return baseline
    return _replay_root(baseline, ops)


def undo(log: Undo) -> None:
    """Reverse ``apply``."""
    for container, key, before in reversed(log):
        if key is None:
            del container[before:]
        elif before is MISSING:
            container.pop(key, None)
        else:
            container[key] = before


def touched(root: dict[str, Any], ops: list[Op]) -> tuple[dict[str, Any], list[str]]:
    """The top-level fields the ops changed, as ``root`` now holds them, and those removed."""
    fields: dict[str, Any] = {}
    removed: list[str] = []
    for key in dict.fromkeys(op.path[0] for op in ops):
        if key in root:
            fields[key] = root[key]
        else:
            removed.append(key)
    return fields, removed


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def merge_onto(current: Any, ops: list[Op], baseline: Any) -> Merged:
    """Replay ``ops`` (diffed from ``baseline``) on ``current`` (the document as it is now,
    a fresh copy, None if absent), in place; a conflict wherever ``current`` changed a path
    since ``baseline`` to something other than what this save writes."""
    if len(ops) == 1 and isinstance(ops[0], Append) and not ops[0].path:
        root = ops[0]  # a document that is a list, appended to: keep the other side's appends
        if type(current) is list and _only_grew(root.old, current):
            return Merged(current, [*current, *root.items])
    if type(current) is not dict or not is_object_patch(baseline, ops):
        whole = replay(copy(baseline), ops)
        conflicts = []
        if not (current is None and baseline in ({}, None)) and not _same(current, baseline):
            conflicts.append(Conflict("$", _shown(current)))
        return Merged(current, whole, conflicts)
    merged = Merged(current)
    for op in ops:
        at = codec.format_path(op.path)
        now = get_path(current, op.path)
        if isinstance(op, Append):
            if type(now) is list and _only_grew(op.old, now):
                now.extend(op.items)
                continue
            if now is not MISSING or op.old:
                merged.conflicts.append(Conflict(at, _shown(now)))
            parent = _parent(current, op.path, create=True)
            assert parent is not None
            parent[op.path[-1]] = [*op.old, *op.items]
            continue
        if now is MISSING and isinstance(op, Delete):
            continue
        if isinstance(op, Set) and op.old is MISSING and now is not MISSING:
            _add(now, op.new, op.path, current, merged.conflicts)  # both sides added this path
            continue
        if not _same(now, op.old) and not (isinstance(op, Set) and _same(now, op.new)):
            merged.conflicts.append(Conflict(at, _shown(now)))
        parent = _parent(current, op.path, create=True)
        assert parent is not None
        if isinstance(op, Set):
            parent[op.path[-1]] = op.new
        else:
            parent.pop(op.path[-1], None)
    return merged


def _add(now: Any, new: Any, path: Path, root: dict[str, Any], conflicts: list[Conflict]) -> None:
    """Both sides added ``path`` since the copy was loaded: objects are merged key by key and
    lists keep both sides' items (each side appended to nothing); otherwise this save wins."""
    if type(now) is dict and type(new) is dict:
        for key, value in new.items():
            there = now.get(key, MISSING)
            if there is MISSING:
                now[key] = value
            else:
                _add(there, value, (*path, key), root, conflicts)
        return
    if type(now) is list and type(new) is list:
        now.extend(new)
        return
    if not _same(now, new):
        conflicts.append(Conflict(codec.format_path(path), _shown(now)))
        parent = _parent(root, path, create=True)
        assert parent is not None
        parent[path[-1]] = new


def _only_grew(old: list[Any], now: list[Any]) -> bool:
    """True if ``now`` is ``old`` with items added (the other side appended, maybe between
    items this side appended before): ``old`` is a subsequence of ``now``."""
    if now[: len(old)] == old:
        return True
    items = iter(now)
    return all(any(_same(item, mine) for item in items) for mine in old)


def _replay_root(whole: Any, ops: list[Op]) -> Any:
    for op in ops:
        if op.path:
            continue
        if isinstance(op, Append):
            whole = [*whole, *op.items] if isinstance(whole, list) else [*op.old, *op.items]
        elif isinstance(op, Set):
            whole = copy(op.new)
    return whole
