"""The Lua scripts, loaded once from package files and shared by the sync and async clients."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script: run with EVALSHA, re-sent with EVAL when the server forgot it."""

    name: str
    source: str
    sha: str


def _read(name: str) -> str:
    return (resources.files("sharedstate") / "scripts" / f"{name}.lua").read_text(encoding="utf-8")


def _load(name: str) -> Script:
    """A script, with each line ``--#include <other>`` replaced by that file."""
    lines = [
        _read(line.split()[1]) if line.startswith("--#include ") else line
        for line in _read(name).splitlines(keepends=True)
    ]
    source = "".join(lines)
    return Script(name, source, hashlib.sha1(source.encode("utf-8")).hexdigest())


WRITE = _load("write")
READ = _load("read")
LEASE = _load("lease")
FLOOR = _load("floor")
DUMP = _load("dump")
RESTORE = _load("restore")
HISTORY = _load("history")
VERSIONS = _load("versions")
RELIST = _load("relist")
PRESENCE = _load("presence")
