"""The ``sharedstate`` command: parse, dispatch, and turn errors into messages and exit codes.

A user error (bad input, a missing or existing file, bad configuration) is one line on stderr
and exit 2; Redis or data trouble is one line and exit 1; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from typing import NoReturn

from sharedstate import __version__
from sharedstate.cli import doctor, durability, inspect, services, telegram, up
from sharedstate.cli.context import err
from sharedstate.errors import ConfigurationError, InvalidDocument, SharedStateError, UsageError

NOISY = ("httpx", "httpcore", "rq.worker", "rq.scheduler", "rq.cron")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (the usage itself is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # SUPPRESS as the default: an option given before the subcommand is not reset by the
    # subcommand's parser, where it was not given again
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "-u", "--url", default=default, help="Redis URL (default: SHAREDSTATE_REDIS_URL or REDIS_URL)"
    )
    parser.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: SHAREDSTATE_NAMESPACE or 'default')"
    )
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log at DEBUG")
    parser.add_argument("--debug", action="store_true", default=default, help="print tracebacks of errors")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; global options go before or after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    _globals(common, suppress=True)
    parser = _Parser(
        prog="sharedstate",
        description="A shared, durable, versioned JSON store on Redis; settings: SHAREDSTATE_* variables.",
        epilog="See docs/ for the configuration table and each command.",
    )
    parser.add_argument("--version", action="version", version=f"sharedstate {__version__}")
    _globals(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    durability.register(commands, common)
    inspect.register(commands, common)
    services.register(commands, common)
    up.register(commands, common)
    doctor.register(commands, common)
    telegram.register(commands, common)
    return parser


def _log_level(verbose: bool) -> int:
    if verbose:
        return logging.DEBUG
    wanted = os.environ.get("SHAREDSTATE_LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(wanted)
    return level if isinstance(level, int) else logging.INFO  # Settings reports a bad value


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    level = _log_level(bool(args.verbose))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for name in NOISY:  # a line per request or per poll, at INFO: only when asked for
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except BrokenPipeError:  # `sharedstate get big | head`: the reader is satisfied
        _quiet_stdout()
        return 0
    except Exception as exc:
        code, message = _describe(exc)
        err.print(message, markup=False)
        if args.debug:
            err.print("".join(traceback.format_exception(exc)), markup=False)
        return code


def _describe(exc: Exception) -> tuple[int, str]:
    """The exit code and one line for an error."""
    if isinstance(exc, ConfigurationError):
        return 2, f"configuration error: {exc}"
    if isinstance(exc, UsageError | InvalidDocument):
        return 2, f"error: {exc}"
    if isinstance(exc, SharedStateError):
        return 1, f"error: {exc}"
    if isinstance(
        exc, FileNotFoundError | FileExistsError | IsADirectoryError | NotADirectoryError | PermissionError
    ):
        where = f": {exc.filename}" if exc.filename else ""
        return 2, f"error: {exc.strerror or type(exc).__name__}{where}"
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return 2, f"error: not valid JSON: {exc}"
    if isinstance(exc, OSError):
        return 1, f"error: {exc.strerror or exc}"
    return (
        1,
        f"unexpected error: {type(exc).__name__}: {exc} (a bug: please report it with the output of --debug)",
    )


def _quiet_stdout() -> None:
    # Python would report the broken pipe again when it flushes stdout at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
