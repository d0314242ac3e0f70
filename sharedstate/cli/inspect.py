"""ls, get, put, delete, history, watch."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from sharedstate.cli.context import confirm, err, human_size, open_store, out, print_json
from sharedstate.durability.legacy import read_json_file
from sharedstate.errors import DocumentNotFound, InvalidDocument, UsageError
from sharedstate.jsonio import dumps_plain
from sharedstate.models import Change


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
        changes = store.watch(args.names or None, timeout=args.timeout, after=args.after)
        err.print(
            "watching (Ctrl-C stops)" if args.timeout is None else f"watching until {args.timeout} s idle"
        )
        try:
            for change in changes:
                sys.stdout.write(dumps_plain(_change(change)) + "\n")
                sys.stdout.flush()
        except KeyboardInterrupt:  # how a watch is meant to stop
            return 0
    return 0
