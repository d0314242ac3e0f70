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

    cmd = commands.add_parser("api", parents=[common], help="the operator API under uvicorn")
    cmd.add_argument("--host", help="bind address (default SHAREDSTATE_API_HOST or 127.0.0.1; '::' for IPv6)")
    cmd.add_argument("--port", type=int, help="port (default SHAREDSTATE_API_PORT, PORT or 8080)")
    cmd.set_defaults(handler=api)


def api(args: argparse.Namespace) -> int:
    from sharedstate.api.server import serve
    from sharedstate.worker.process import supervised_child

    supervised_child()  # started by `sharedstate up`: stop with it
    config = settings(args)
    overrides = {"api_host": args.host, "api_port": args.port}
    config = config.model_copy(update={key: value for key, value in overrides.items() if value is not None})
    return serve(config)


def worker(args: argparse.Namespace) -> int:
    from sharedstate.worker.process import supervised_child
    from sharedstate.worker.supervisor import run

    supervised_child()  # started by `sharedstate up`: stop with it
    return run(settings(args))
