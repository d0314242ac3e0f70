"""ls, get, put, delete, history, watch."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from rich.table import Table

from sharedstate.cli.context import confirm, err, human_size, open_store, out, print_json
from sharedstate.durability.legacy import read_json_file
from sharedstate.errors import DocumentNotFound, FeedTrimmed, InvalidDocument, StoreUnavailable, UsageError
from sharedstate.jsonio import dumps_plain
from sharedstate.models import Change
from sharedstate.store import SharedStore, Watch

RESUME_EVERY = 1.0  # seconds between tries while Redis is away


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the inspection commands."""
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")

    commands.add_parser("ls", parents=[common, as_json], help="list documents").set_defaults(handler=ls)

    cmd = commands.add_parser(
        "get", parents=[common, as_json], help="print a document's data as JSON (--json: with its metadata)"
    )
    cmd.add_argument("name")
    cmd.set_defaults(handler=get)

    cmd = commands.add_parser(
        "put", parents=[common], help="replace a document with a JSON file ('-': stdin)"
    )
    cmd.add_argument("name")
    cmd.add_argument("file")
    cmd.add_argument("--expected-version", type=int, default=None, help="write only if at this version")
    cmd.set_defaults(handler=put)

    cmd = commands.add_parser("delete", parents=[common], help="delete a document (its history stays)")
    cmd.add_argument("name")
    cmd.add_argument("--expected-version", type=int, default=None, help="delete only if at this version")
    cmd.add_argument("-y", "--yes", action="store_true", help="confirm without a terminal")
    cmd.set_defaults(handler=delete)

    cmd = commands.add_parser("history", parents=[common, as_json], help="a document's last changes")
    cmd.add_argument("name")
    cmd.add_argument("--limit", type=int, default=20)
    cmd.set_defaults(handler=history)

    cmd = commands.add_parser(
        "watch", parents=[common], help="print changes as they happen, one JSON line each (Ctrl-C stops)"
    )
    cmd.add_argument("names", nargs="*", help="only these documents (default: all)")
    cmd.add_argument("--after", help="start after this feed position (a change's id) instead of now")
    cmd.add_argument("--timeout", type=float, default=None, help="stop after this many idle seconds")
    cmd.set_defaults(handler=watch)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def ls(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        infos = store.infos()
    if args.json:
        print_json([
            {"name": i.name, "version": i.version, "updated_at": i.updated_at, "updated_by": i.updated_by,
             "kind": i.kind, "size": i.size}
            for i in infos
        ])  # fmt: skip
        return 0
    table = Table("name", "version", "updated (UTC)", "by", "kind", "size")
    for info in infos:
        table.add_row(
            info.name,
            str(info.version),
            _when(info.updated_at),
            info.updated_by,
            info.kind,
            human_size(info.size),
        )
    if infos:
        out.print(table)
    else:
        err.print("no documents")
    return 0


def get(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        doc = store.get(args.name)
    if args.json:
        print_json({"name": doc.name, "version": doc.version, "updated_at": doc.updated_at,
                    "updated_by": doc.updated_by, "stale": doc.stale, "data": doc.data})  # fmt: skip
        return 0
    print_json(doc.data)
    err.print(
        f"version {doc.version}, updated {_when(doc.updated_at)} UTC by {doc.updated_by}"
        + (" (STALE)" if doc.stale else "")
    )
    return 0


def put(args: argparse.Namespace) -> int:
    try:
        data = json.loads(sys.stdin.read()) if args.file == "-" else read_json_file(Path(args.file))
    except FileNotFoundError:
        raise UsageError(f"{args.file}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InvalidDocument(f"{args.file}: {exc}") from None
    with open_store(args) as store:
        version = store.put(args.name, data, expected_version=args.expected_version)
    out.print(f"{args.name}: version {version}")
    return 0


def delete(args: argparse.Namespace) -> int:
    if not confirm(f"delete {args.name}?", args.yes):
        err.print("cancelled: nothing deleted")
        return 1
    with open_store(args) as store:
        existed = store.delete(args.name, expected_version=args.expected_version)
    if not existed:
        raise DocumentNotFound(args.name)
    out.print(f"deleted {args.name}")
    return 0


def _change(change: Change) -> dict[str, Any]:
    return {
        "id": change.id, "name": change.name, "version": change.version, "op": change.op,
        "fields": change.fields, "removed": list(change.removed), "writer": change.writer,
        "time": change.time, "omitted": change.omitted,
    }  # fmt: skip


def history(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        changes = store.history(args.name, args.limit)
    if args.json:
        print_json([_change(change) for change in changes])
        return 0
    table = Table("version", "time (UTC)", "op", "by", "fields")
    for change in changes:
        if change.op == "delete_field":
            fields = "removed " + ", ".join(change.removed)
        elif change.op == "delete":
            fields = ""
        else:
            fields = dumps_plain(change.fields)
            fields = fields if len(fields) <= 60 else fields[:57] + "..."
        table.add_row(str(change.version), _when(change.time), change.op, change.writer, fields)
    out.print(table)
    return 0


def watch(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        names = args.names or None
        changes = store.watch(names, timeout=args.timeout, after=args.after)  # from now on
        err.print(
            "watching (Ctrl-C stops)" if args.timeout is None else f"watching until {args.timeout} s idle"
        )
        try:
            for change in _follow(store, changes, names, args.timeout):
                sys.stdout.write(dumps_plain(_change(change)) + "\n")
                sys.stdout.flush()
        except KeyboardInterrupt:  # how a watch is meant to stop
            return 0
    return 0


def _follow(
    store: SharedStore, changes: Watch, names: list[str] | None, timeout: float | None
) -> Iterator[Change]:
    """``changes``, outliving Redis going away: it says so on stderr, waits, and resumes where it
    was. With a timeout, an outage counts as idle time. If Redis came back without the changes
    after that position (it lost its data), or lost them while it answered, it says so and goes
    on from now."""
    idle_since = time.monotonic()
    while True:
        try:
            for change in changes:
                idle_since = time.monotonic()
                yield change
            return
        except StoreUnavailable as exc:
            deadline = None if timeout is None else idle_since + timeout
            if _too_late(deadline):
                raise
            err.print(f"{exc}; waiting for it to come back (Ctrl-C stops)", markup=False)
            changes = _resume(store, names, changes.position, deadline, exc)
            err.print("Redis is back; watching again", markup=False)
        except FeedTrimmed as trimmed:  # Redis lost the feed while it answered (flushed, evicted)
            err.print(f"{trimmed}; watching from now", markup=False)
            idle_since = time.monotonic()
            changes = store.watch(names, timeout=timeout)


def _resume(
    store: SharedStore, names: list[str] | None, position: str | None, deadline: float | None, exc: Exception
) -> Watch:
    """A watch from ``position`` once Redis answers again; ``exc`` again past the deadline."""
    while True:
        time.sleep(RESUME_EVERY)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            store.redis.ping()  # a watch from the feed's start asks Redis nothing until it reads
            try:
                return store.watch(names, timeout=left, after=position)
            except FeedTrimmed as trimmed:
                err.print(f"{trimmed}; watching from now", markup=False)
                return store.watch(names, timeout=left)
        except (redis.RedisError, StoreUnavailable):
            if _too_late(deadline):
                raise exc from None


def _too_late(deadline: float | None) -> bool:
    """Whether the next try would come after ``deadline`` (never, without one)."""
    return deadline is not None and time.monotonic() + RESUME_EVERY > deadline
