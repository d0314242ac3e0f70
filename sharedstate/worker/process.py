"""Process plumbing for the worker's children: die with the supervisor, run as its child."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

SUPERVISOR_PID = "SHAREDSTATE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


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
