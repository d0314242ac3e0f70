"""Entry point of the ``sharedstate`` command (subcommands are added as they are built)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    print(f"sharedstate: {' '.join(args) or '(no command)'}: not built yet", file=sys.stderr)
    return 2
