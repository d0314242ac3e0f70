"""snapshot, snapshots, restore, verify, import, export."""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from sharedstate.cli.context import confirm, err, human_size, open_store, out, print_json, progress, settings
from sharedstate.durability import legacy
from sharedstate.durability.format import verify
from sharedstate.durability.journal import segments_of
from sharedstate.durability.points import window
from sharedstate.durability.restore import RestoreReport, restore_newest, restore_snapshot
from sharedstate.durability.snapshots import (
    apply_retention,
    clean_temp_files,
    list_snapshots,
    take_snapshot,
)
from sharedstate.durability.target import SNAPSHOTS, Source
from sharedstate.errors import SnapshotError, UsageError
from sharedstate.settings import parse_keep


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the durability commands."""
    cmd = commands.add_parser("snapshot", parents=[common], help="take a snapshot now")
    cmd.add_argument("--force", action="store_true", help="snapshot even if Redis lost the namespace")
    cmd.set_defaults(handler=snapshot)

    cmd = commands.add_parser("snapshots", parents=[common], help="list snapshots")
    cmd.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")
    cmd.add_argument("--verify", action="store_true", help="verify every snapshot (reads them whole)")
    cmd.set_defaults(handler=snapshots)

    cmd = commands.add_parser(
        "restore", parents=[common], help="restore a snapshot (the newest valid one by default)"
    )
    cmd.add_argument("file", nargs="?", help="snapshot file or id (file name in the snapshots directory)")
    cmd.add_argument("--doc", action="append", metavar="NAME", help="restore only this document (repeatable)")
    cmd.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    cmd.add_argument(
        "--force", action="store_true",
        help="roll back: replace newer documents too and delete those the snapshot does not hold",
    )  # fmt: skip
    cmd.add_argument(
        "--at", metavar="TIME", type=parse_time,
        help="roll back to the state at TIME (ISO 8601 such as 2026-12-01T10:30:00Z, or epoch seconds): "
        "the newest snapshot complete by then plus the journal up to it",
    )  # fmt: skip
    cmd.add_argument("-y", "--yes", action="store_true", help="confirm --force or --at without a terminal")
    cmd.set_defaults(handler=restore)

    cmd = commands.add_parser("verify", parents=[common], help="check a snapshot file")
    cmd.add_argument("file", help="snapshot file or id")
    cmd.set_defaults(handler=verify_command)

    cmd = commands.add_parser(
        "import", parents=[common], help="load a directory of legacy JSON files (or split one file)"
    )
    cmd.add_argument("directory", type=Path, nargs="?", help="a directory of <name>.json files")
    cmd.add_argument(
        "--split", type=Path, metavar="FILE",
        help="make each top-level key of this one JSON file its own document",
    )  # fmt: skip
    cmd.add_argument(
        "--overwrite",
        action="store_true",
        help="replace documents that already exist (asks; --yes without a terminal)",
    )
    cmd.add_argument("-y", "--yes", action="store_true", help="confirm --overwrite without a terminal")
    cmd.set_defaults(handler=import_command)

    cmd = commands.add_parser("export", parents=[common], help="write every document as a JSON file")
    cmd.add_argument("directory", type=Path)
    cmd.set_defaults(handler=export_command)


FUTURE_SLACK = 300.0  # seconds: a clock a little ahead of the worker's is not an error


def parse_time(text: str) -> float:
    """A point in time: epoch seconds, or ISO 8601 (a time without a zone is UTC)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text[:40]!r} is not a time: give ISO 8601 (2026-12-01T10:30:00Z) or epoch seconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        value = moment.timestamp()
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a time")
    if value > time.time() + FUTURE_SLACK:  # no state is known there: the newest is what it would give
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is in the future: give a past time, or leave out --at for the newest state"
        )
    return value


def _snapshot_path(args: argparse.Namespace, given: str) -> Source:
    """A snapshot file given as a path, or as an id on the backup target; UsageError if neither."""
    path = Path(given)
    if path.exists() or path.is_symlink():
        return path
    if path.parent == Path("."):
        target = settings(args).backup_target()
        if any(item.name == given for item in target.list(SNAPSHOTS)):
            return target.source(SNAPSHOTS, given)
    raise UsageError(f"{given}: no such snapshot file (a path, or an id that `sharedstate snapshots` lists)")


def snapshot(args: argparse.Namespace) -> int:
    config = settings(args)
    directory = config.backup_target()
    with open_store(args) as store:
        clean_temp_files(directory)
        with progress("snapshot") as update:
            result = take_snapshot(
                store, directory, progress=update, allow_unmarked=args.force, key=config.signing_key
            )
        removed = apply_retention(directory, store.namespace, parse_keep(config.snapshot_keep), result.path)
    out.print(
        f"snapshot {result.path} : {result.header.documents} documents, "
        f"{human_size(result.size)}, {result.seconds:.2f} s"
    )
    for source in removed:
        out.print(f"retention removed {source.name}")
    for name, reason in result.skipped:
        err.print(f"left out undecodable document {name!r}: {reason}", markup=False)
    return 1 if result.skipped else 0


def snapshots(args: argparse.Namespace) -> int:
    config = settings(args)
    target = config.backup_target()
    entries = list_snapshots(target, config.namespace)
    table = Table("id", "created (UTC)", "documents", "size", "status")
    rows = []
    for entry in entries:
        status = "corrupt: " + entry.error if entry.error else "unverified"
        if entry.error is None and args.verify:
            try:
                verify(entry.path, config.signing_key)
                status = "ok"
            except SnapshotError as exc:
                status = "corrupt: " + exc.reason
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.created_at))
        documents = str(entry.header.documents) if entry.header else "?"
        table.add_row(entry.id, created, documents, human_size(entry.size), status)
        rows.append({"id": entry.id, "created_at": entry.created_at, "size": entry.size, "status": status,
                     "documents": entry.header.documents if entry.header else None})  # fmt: skip
    if args.json:
        print_json(rows)
        return 0
    if not entries:
        err.print(f"no snapshots of namespace {config.namespace!r} in {target.description}")
        return 0
    out.print(table)
    reach = window(target, entries, segments_of(target, config.namespace), config.signing_key)
    if reach.start is not None and reach.end is not None:
        stamp = "%Y-%m-%d %H:%M:%S"
        out.print(
            f"restorable (restore --at): {time.strftime(stamp, time.gmtime(reach.start))} to "
            f"{time.strftime(stamp, time.gmtime(reach.end))} UTC; journal: {reach.segments} segment(s)"
        )
    return 0


def _print_report(report: RestoreReport) -> None:
    for snapshot_id, reason in report.skipped:
        out.print(f"skipped {snapshot_id}: {reason}")
    would = "would " if report.dry_run else ""
    head = f"dry run of {report.description}: " if report.dry_run else f"{report.description}: "
    replaced = "replaced (a roll-back)" if report.force else "older in Redis"
    out.print(
        f"{head}{would}restore {len(report.restored)} documents ({len(report.created)} missing, "
        f"{len(report.changed)} {replaced}), {would}delete {len(report.deleted)}; "
        f"kept {len(report.kept)} that Redis has at the snapshot's version or newer, "
        f"left {len(report.gone)} deleted since" + ("" if report.dry_run else f" ({report.seconds:.2f} s)")
    )
    if report.dry_run:
        for name in report.created:
            out.print(f"  missing  {name}")
        for name in report.changed:
            out.print(f"  {'replace' if report.force else 'older  '}  {name}")
        for name in report.deleted:
            out.print(f"  delete   {name}")
        for name in report.unchanged:
            out.print(f"  same     {name}")


def restore(args: argparse.Namespace) -> int:
    config = settings(args)
    target = config.backup_target()
    if args.at is not None and args.file:
        raise UsageError("restore: give a snapshot FILE or --at TIME, not both")
    with open_store(args) as store:
        what = f"snapshot {args.file}" if args.file else f"the newest valid snapshot in {target.description}"
        if args.at is not None:
            what = "the state at " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(args.at))
        scope = f"documents {', '.join(args.doc)}" if args.doc else f"all of namespace {store.namespace!r}"
        question = f"Roll back {scope} to {what}, replacing newer data?"
        rolls_back = args.force or args.at is not None
        if rolls_back and not args.dry_run and not confirm(question, args.yes, "--yes"):
            err.print("restore cancelled")
            return 1
        with progress("restore") as update:
            if args.file:
                report = restore_snapshot(
                    store,
                    _snapshot_path(args, args.file),
                    only=args.doc,
                    dry_run=args.dry_run,
                    force=args.force,
                    progress=update,
                    lease_ttl=config.restore_lease_ttl,
                    key=config.signing_key,
                )
            else:
                found = restore_newest(
                    store,
                    target,
                    only=args.doc,
                    dry_run=args.dry_run,
                    force=rolls_back,
                    at=args.at,
                    progress=update,
                    on_skip=lambda snapshot_id, reason: out.print(f"skipping {snapshot_id}: {reason}"),
                    lease_ttl=config.restore_lease_ttl,
                    key=config.signing_key,
                )
                if found is None:
                    err.print(f"no snapshots of namespace {store.namespace!r} in {target.description}")
                    return 1
                report = found
                report.skipped = []  # already printed as they were skipped
    _print_report(report)
    return 0


def verify_command(args: argparse.Namespace) -> int:
    path = _snapshot_path(args, args.file)
    try:
        verified = verify(path, settings(args).signing_key)
    except SnapshotError as exc:
        err.print(f"BAD {path}: {exc.reason}")
        return 1
    header = verified.header
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(header.created_at))
    out.print(
        f"OK {path}: namespace {header.namespace!r}, {header.documents} documents, created {created} UTC, "
        f"{human_size(verified.size)}"
    )
    return 0


def import_command(args: argparse.Namespace) -> int:
    if (args.directory is None) == (args.split is None):
        raise UsageError("import: give either a DIRECTORY or --split FILE")
    source = args.split or args.directory
    if args.directory is not None and not args.directory.is_dir():
        raise UsageError(f"{args.directory}: no such directory")
    if args.split is not None and not args.split.is_file():
        raise UsageError(f"{args.split}: no such file")
    if args.overwrite and not confirm(f"Replace existing documents with those of {source}?", args.yes):
        err.print("import cancelled")
        return 1
    with open_store(args) as store, progress("import") as update:
        if args.split is not None:
            report = legacy.import_split(store, args.split, progress=update, overwrite=args.overwrite)
        else:
            report = legacy.import_directory(store, args.directory, progress=update, overwrite=args.overwrite)
    out.print(f"imported {len(report.documents)} documents from {source}: {', '.join(report.documents)}")
    if report.mismatched:
        err.print(f"the store does not match the files for: {', '.join(report.mismatched)}")
        return 1
    out.print("verified: the store matches the files")
    return 0


def export_command(args: argparse.Namespace) -> int:
    with open_store(args) as store, progress("export") as update:
        written, skipped = legacy.export_directory(store, args.directory, progress=update)
    out.print(f"exported {len(written)} documents to {args.directory}")
    for name, reason in skipped:
        err.print(f"left out undecodable document {name!r}: {reason}", markup=False)
    return 1 if skipped else 0
