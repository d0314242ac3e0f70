"""ls, get, put, history."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from sharedstate.cli.context import err, human_size, open_store, out
from sharedstate.durability.legacy import read_json_file
from sharedstate.errors import InvalidDocument
from sharedstate.jsonio import dumps_plain


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the inspection commands."""
    commands.add_parser("ls", parents=[common], help="list documents").set_defaults(handler=ls)

    cmd = commands.add_parser("get", parents=[common], help="print a document as JSON")
    cmd.add_argument("name")
    cmd.set_defaults(handler=get)

    cmd = commands.add_parser(
        "put", parents=[common], help="replace a document with a JSON file ('-': stdin)"
    )
    cmd.add_argument("name")
    cmd.add_argument("file")
    cmd.add_argument("--expected-version", type=int, default=None, help="write only if at this version")
    cmd.set_defaults(handler=put)

    cmd = commands.add_parser("history", parents=[common], help="a document's last changes")
    cmd.add_argument("name")
    cmd.add_argument("--limit", type=int, default=20)
    cmd.set_defaults(handler=history)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def ls(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        infos = store.infos()
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
    out.print(dumps_plain(doc.data, indent=2), markup=False)
    err.print(
        f"version {doc.version}, updated {_when(doc.updated_at)} UTC by {doc.updated_by}"
        + (" (STALE)" if doc.stale else "")
    )
    return 0


def put(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            import json

            data = json.loads(sys.stdin.read())
        else:
            data = read_json_file(Path(args.file))
    except (OSError, ValueError) as exc:
        raise InvalidDocument(f"{args.file}: {exc}") from None
    with open_store(args) as store:
        version = store.put(args.name, data, expected_version=args.expected_version)
    out.print(f"{args.name}: version {version}")
    return 0


def history(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        changes = store.history(args.name, args.limit)
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
