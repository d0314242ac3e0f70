"""Drop-in replacements for the JSON-file helpers of legacy code.

    from sharedstate.compat import load_json_file, save_json_file
    data = load_json_file("/app/data/config.json")     # document "config"
    save_json_file("/app/data/config.json", data)

A path maps to the document named by its file stem. The store is ``SharedStore.from_env()``,
created once on first use (thread-safe); ``configure(store)`` sets another one.
"""

from __future__ import annotations

import os
import threading
from pathlib import PurePath
from typing import Any

from sharedstate.keys import validate_name
from sharedstate.store import SharedStore

_lock = threading.Lock()
_store: SharedStore | None = None


def get_store() -> SharedStore:
    """The store the helpers use, created from the environment on first use."""
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = SharedStore.from_env()
    return _store


def configure(store: SharedStore | None) -> None:
    """Use ``store`` for the helpers (None: go back to ``SharedStore.from_env()`` on next use)."""
    global _store
    with _lock:
        _store = store


def document_name(path: str | os.PathLike[str]) -> str:
    """The document a legacy path maps to: its file stem (``/app/data/config.json`` -> ``config``)."""
    return validate_name(PurePath(os.fspath(path)).stem)


def load_json_file(path: str | os.PathLike[str], default: Any = None) -> Any:
    """The data of the path's document; ``default`` (``{}`` when None) if it does not exist."""
    return get_store().load(document_name(path), {} if default is None else default)


def save_json_file(path: str | os.PathLike[str], data: Any) -> int:
    """Replace the path's document with ``data``; returns the new version."""
    return get_store().put(document_name(path), data)
