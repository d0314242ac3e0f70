"""What every command needs: settings, a store, consoles, progress bars, confirmations."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sharedstate.errors import UsageError
from sharedstate.jsonio import iter_plain
from sharedstate.settings import Settings
from sharedstate.store import SharedStore

# Piped, rich would cut tables to 80 columns: a pipe gets every character of every cell.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: object) -> None:
    """``value`` as indented JSON on stdout (sets as sorted lists), written as it is encoded."""
    write = sys.stdout.write
    for piece in iter_plain(value, indent=2):
        write(piece)
    write("\n")
    sys.stdout.flush()


def settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the command line's --namespace and --url on top."""
    overrides: dict[str, object] = {}
    if getattr(args, "namespace", None):
        overrides["namespace"] = args.namespace
    if getattr(args, "url", None):
        overrides["redis_url"] = args.url
    return Settings.load(**overrides)


def open_store(args: argparse.Namespace, client_name: str = "cli") -> SharedStore:
    """The store the settings describe (no client cache: a command reads each document once)."""
    return SharedStore.from_settings(settings(args), client_name=client_name, cache=False)


@contextmanager
def progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (only on a terminal); yields ``update(done, total)``."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    with bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def confirm(question: str, assume_yes: bool, flag: str = "--yes") -> bool:
    """For a command that would replace or delete newer data: ask on a terminal (False: the user
    said no); without one it needs ``--yes``, else UsageError (exit 2, nothing changed)."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: refused without a terminal; add {flag} to confirm")
    try:
        answer = input(f"{question} [y/N] ").strip().lower()
    except EOFError:
        return False
    return answer in ("y", "yes")


def human_size(size: int | None) -> str:
    """1.2 MB style."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
