"""A tiny tmpfs mounted for one test: a volume that really fills up (needs root, else skips)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(mount: Path, size: str, why_skip: str = "") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (e.g. ``"256k"``) on ``mount`` for the block; skip without root."""
    mount.mkdir(parents=True, exist_ok=True)
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root){why_skip}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
