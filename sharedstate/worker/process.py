"""Process plumbing for the worker's children: die with the supervisor, run as its child."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

SUPERVISOR_PID = "SHAREDSTATE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def become_subreaper() -> bool:
    """Make orphans of this process's subtree its children (not init's), so it can reap and kill
    what a SIGKILLed child leaves behind (Linux; False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def children_of(parent: int) -> dict[int, str]:
    """The processes whose parent is ``parent``: pid -> state letter (``Z`` a zombie); Linux's
    /proc, empty elsewhere."""
    found: dict[int, str] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()  # after "(command name)"
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent:
            found[int(entry)] = fields[0].decode()
    return found


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in the process group ``pgid`` (none left: nothing happens)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def supervised_child() -> None:
    """Call first in a child of the supervisor: follow it in death, and exit if it is already gone."""
    expected = os.environ.get(SUPERVISOR_PID)
    if not expected:
        return  # started by hand, not by the supervisor
    die_with_parent()
    if os.getppid() != int(expected):  # the supervisor died before prctl took effect
        sys.exit(0)


def python_module(module: str, *args: str) -> list[str]:
    """The argv of ``python -m module``, without the working directory on ``sys.path`` (``-P``),
    so a user's ``worker.py`` or ``api/`` there can never stand in for one of our modules."""
    return [sys.executable, "-P", "-m", module, *args]
