"""worker (and, as they are built, api, up, doctor)."""

from __future__ import annotations

import argparse
from typing import Any

from sharedstate.cli.context import settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the service commands."""
    cmd = commands.add_parser(
        "worker",
        parents=[common],
        help="RQ workers + cron scheduler + snapshotter (the service with the volume)",
    )
    cmd.set_defaults(handler=worker)


def worker(args: argparse.Namespace) -> int:
    from worker.supervisor import run

    return run(settings(args))
