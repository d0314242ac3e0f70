"""The ``sharedstate`` command: parse, dispatch, and turn errors into messages and exit codes."""

from __future__ import annotations

import argparse
import logging
import sys

from sharedstate import __version__
from sharedstate.cli import doctor, durability, inspect, services, up
from sharedstate.cli.context import err
from sharedstate.errors import ConfigurationError, SharedStateError, UsageError


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: SHAREDSTATE_NAMESPACE or 'default')")
    common.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser = argparse.ArgumentParser(
        prog="sharedstate",
        description="A shared, durable, versioned JSON store on Redis; settings: SHAREDSTATE_* variables.",
        epilog="See docs/ for the configuration table and each command.",
    )
    parser.add_argument("--version", action="version", version=f"sharedstate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    durability.register(commands, common)
    inspect.register(commands, common)
    services.register(commands, common)
    up.register(commands, common)
    doctor.register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except ConfigurationError as exc:
        err.print(f"configuration error: {exc}", markup=False)
        return 2
    except UsageError as exc:
        err.print(f"error: {exc}", markup=False)
        return 2
    except SharedStateError as exc:
        err.print(f"error: {exc}", markup=False)
        return 1
