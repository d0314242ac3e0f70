"""Drop-in replacements for the JSON-file helpers of legacy code.

    from sharedstate.compat import load_json_file, save_json_file
    data = load_json_file("/app/data/config.json")     # document "config"
    save_json_file("/app/data/config.json", data)

A path maps to the document named by its file stem. The store is ``SharedStore.from_env()``,
created once on first use (thread-safe); ``configure(store)`` sets another one.

``save_json_file`` is not a whole-document overwrite: it writes only what this process
changed since the copy it last loaded or saved (keys added, changed or removed at any
depth, appends to lists), on top of the document as it is now, so two services running the
same load -> modify -> save code never lose each other's changes. See ``docs/migration.md``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from sharedstate import _diff
from sharedstate._core import Core
from sharedstate.errors import DocumentNotFound, VersionConflict
from sharedstate.keys import validate_name
from sharedstate.store import SharedStore

log = logging.getLogger("sharedstate.compat")

OnConflict = Literal["overwrite", "raise"]
SAVE_RETRIES = 50
DIFF_RETRIES = 5  # another thread of the bot may change the data while it is compared

_lock = threading.Lock()
_store: SharedStore | None = None


@dataclass
class _Copy:
    """The copy of a document this process last loaded or saved (normalised as ``json`` would).

    ``synced``: Redis holds exactly this data at ``version`` (so a save may write on top of it
    without reading the document first).
    """

    data: Any
    version: int
    synced: bool


_copies: dict[str, _Copy] = {}
_copies_lock = threading.Lock()
_saving: dict[str, threading.Lock] = {}  # one save of a document at a time in this process
_overwrites: dict[str, int] = {}


def get_store() -> SharedStore:
    """The store the helpers use, created from the environment on first use."""
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = SharedStore.from_env()
    return _store


def configure(store: SharedStore | None) -> None:
    """Use ``store`` for the helpers (None: go back to ``SharedStore.from_env()`` on next use).

    Forgets the copies loaded so far (the next save of each document writes it whole) and the
    ``overwrites()`` counts.
    """
    global _store
    with _lock:
        _store = store
    with _copies_lock:
        _copies.clear()
        _overwrites.clear()


def document_name(path: str | os.PathLike[str]) -> str:
    """The document a legacy path maps to: its file stem (``/app/data/config.json`` -> ``config``)."""
    return _name_of(os.fspath(path))


@functools.lru_cache(maxsize=4096)
def _name_of(path: str | bytes) -> str:
    # cached: parsing the path costs more than a load from the client cache
    return validate_name(PurePath(os.fsdecode(path)).stem)


def overwrites() -> dict[str, int]:
    """Per document, how many paths a save of this process overwrote although another process
    had changed them since this one loaded them (each also logged at WARNING)."""
    with _copies_lock:
        return dict(_overwrites)


def load_json_file(path: str | os.PathLike[str], default: Any = None) -> Any:
    """The data of the path's document; ``default`` (``{}`` when None) if it does not exist.

    What it returns is the caller's own: ``save_json_file`` later compares it with the copy
    kept here to find what changed.
    """
    name = document_name(path)
    try:
        doc = get_store().get(name)
    except DocumentNotFound:
        empty = {} if default is None else default
        _remember(name, _Copy({}, 0, synced=True))
        return empty
    _remember(name, _Copy(_diff.copy(doc.data), doc.version, synced=not doc.stale))
    return doc.data


def save_json_file(path: str | os.PathLike[str], data: Any, on_conflict: OnConflict = "overwrite") -> int:
    """Write what changed in ``data`` since this process last loaded or saved the document.

    Changes are applied atomically on top of the document as it is now (compare-and-set,
    retried), so another process's changes to other keys or paths survive; lists both sides
    only appended to keep both appends. Where both changed the same path this save wins
    (logged at WARNING, counted in ``overwrites()``), or with ``on_conflict="raise"``
    VersionConflict is raised and nothing is written. Without an earlier load the whole
    document is written. Keys and values follow ``json``: non-string keys become their JSON
    form, tuples lists; anything ``json`` cannot write raises InvalidDocument first.

    Returns the document's version after the save.
    """
    if on_conflict not in ("overwrite", "raise"):
        raise ValueError(f"on_conflict must be 'overwrite' or 'raise', not {on_conflict!r}")
    name = document_name(path)
    store = get_store()
    with _copies_lock:
        lock = _saving.setdefault(name, threading.Lock())
    with lock:
        return _save(store, name, data, on_conflict)


def _save(store: SharedStore, name: str, data: Any, on_conflict: OnConflict) -> int:
    with _copies_lock:
        copy = _copies.get(name)
    if copy is None:
        clean = _diff.normalise(data, f"document {name!r}")
        version = store.put(name, clean)
        _remember(name, _Copy(clean, version, synced=True))
        return version
    ops = _changes(copy.data, data, name)
    if not ops:
        return copy.version
    if copy.synced and _diff.is_object_patch(copy.data, ops):
        saved = _save_on_copy(store, name, copy, ops)
        if saved is not None:
            return saved
    return _save_on_current(store, name, copy, ops, on_conflict)


def _changes(baseline: Any, data: Any, name: str) -> list[_diff.Op]:
    for attempt in range(DIFF_RETRIES):
        try:
            return _diff.diff(baseline, data, f"document {name!r}")
        except RuntimeError:  # "dictionary changed size during iteration": another thread
            if attempt == DIFF_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def _remember(name: str, copy: _Copy) -> None:
    with _copies_lock:
        _copies[name] = copy


def _save_on_copy(store: SharedStore, name: str, copy: _Copy, ops: list[_diff.Op]) -> int | None:
    """Redis still holds our copy: write the touched fields of the copy with the changes
    applied, expecting its version. None if someone wrote meanwhile (nothing changed here)."""
    undo = _diff.apply(copy.data, ops)
    try:
        version = _write_touched(store, name, copy.data, ops, copy.version)
    except VersionConflict:
        _diff.undo(undo)
        return None
    except BaseException:
        _diff.undo(undo)
        raise
    copy.version = version
    return version


def _write_touched(
    store: SharedStore, name: str, data: dict[str, Any], ops: list[_diff.Op], expected: int
) -> int:
    """Write the top-level fields ``ops`` touched, as ``data`` holds them, expecting ``expected``."""
    fields, removed = _diff.touched(data, ops)
    return store._run(store._core.patch(name, fields, removed, expected, trusted=True)).version


def _save_on_current(
    store: SharedStore, name: str, copy: _Copy, ops: list[_diff.Op], on_conflict: OnConflict
) -> int:
    """Read the document as it is, apply our changes on top, write it back expecting its version."""
    version = copy.version
    for attempt in range(1, SAVE_RETRIES + 1):
        if attempt > 1:
            time.sleep(Core.backoff(attempt))  # let the other writer finish, as update() does
        try:
            current = store.get(name)
        except DocumentNotFound:
            current = None
        base = current.data if current is not None else None
        version = current.version if current is not None else 0
        result = _diff.merge_onto(base, ops, copy.data)
        if result.conflicts and on_conflict == "raise":
            raise VersionConflict(name, copy.version, version)
        try:
            if result.whole is not _diff.MISSING:
                new_version = store.put(name, result.whole, expected_version=version)
            else:
                new_version = _write_touched(store, name, result.data, ops, version)
        except VersionConflict:
            continue
        if result.conflicts:
            _count_overwrites(name, result.conflicts)
        copy.data = _diff.replay(copy.data, ops)
        copy.version = new_version
        copy.synced = False  # Redis also holds the other process's changes, which our copy lacks
        return new_version
    raise VersionConflict(name, copy.version, version)


def _count_overwrites(name: str, conflicts: list[_diff.Conflict]) -> None:
    with _copies_lock:
        _overwrites[name] = _overwrites.get(name, 0) + len(conflicts)
    for conflict in conflicts[:10]:
        log.warning(
            "save_json_file(%r): %s was also changed by another process since this one loaded "
            "it; this save wins (it overwrote %s)",
            name,
            conflict.path,
            conflict.theirs,
        )
    if len(conflicts) > 10:
        log.warning("save_json_file(%r): %d more paths overwritten", name, len(conflicts) - 10)
