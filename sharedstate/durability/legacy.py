"""Legacy JSON files in and out: one ``<name>.json`` file per document, or one file whose
top-level keys are each a document (``import --split``: one file holding many registries)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sharedstate import codec
from sharedstate._core import Call
from sharedstate.durability import batch, state
from sharedstate.errors import InvalidDocument, SharedStateError, VersionConflict
from sharedstate.jsonio import dumps_plain
from sharedstate.keys import validate_name
from sharedstate.store import SharedStore

log = logging.getLogger("sharedstate.durability")
T = TypeVar("T")

Progress = Callable[[int, int], None]


class LegacyImportError(InvalidDocument):
    """Some files of an import directory are not valid documents; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:  # one line, as a user error should be
            message = f"{problems[0]}: cannot be imported, nothing was written"
        else:
            listed = "\n  ".join(problems)
            message = f"{len(problems)} files cannot be imported, nothing was written:\n  {listed}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import wrote and whether the store matched the files afterwards."""

    documents: list[str]
    mismatched: list[str]


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def read_json_file(path: Path) -> Any:
    """Parse one JSON file strictly (no NaN/Infinity); ValueError naming the line."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def load_directory(directory: Path, max_bytes: int) -> dict[str, Any]:
    """Every ``*.json`` file of ``directory`` as {document name: data}, all validated first.

    LegacyImportError lists every bad file (name, line, reason); nothing is returned then.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise LegacyImportError([f"{directory}: not a directory"])
    documents: dict[str, Any] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.json")):
        try:
            name = validate_name(path.stem)
            data = read_json_file(path)
            size = codec.encode_document(data, name).size
            if size > max_bytes:
                raise ValueError(f"{size} bytes encoded, over the limit of {max_bytes}")
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        documents[name] = data
    if problems:
        raise LegacyImportError(problems)
    if not documents:
        raise LegacyImportError([f"{directory}: no *.json files"])
    return documents


def load_split(path: Path, max_bytes: int) -> dict[str, Any]:
    """The top-level keys of one JSON object file as {document name: data}, all validated first.

    LegacyImportError lists every problem (not an object, keys that are not document names,
    values over the size limit); nothing is returned then.
    """
    path = Path(path)
    try:
        data = read_json_file(path)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise LegacyImportError([f"{path.name}: {exc}"]) from None
    if not isinstance(data, dict) or not data:
        raise LegacyImportError([f"{path.name}: --split needs a JSON object with at least one key"])
    problems: list[str] = []
    for key, value in data.items():
        try:
            name = validate_name(key)
            size = codec.encode_document(value, name).size
            if size > max_bytes:
                raise ValueError(f"{size} bytes encoded, over the limit of {max_bytes}")
        except (ValueError, InvalidDocument) as exc:
            problems.append(f"{path.name}: key {key!r}: {exc}")
    if problems:
        raise LegacyImportError(problems)
    return dict(data)


class ExistingDocuments(SharedStateError):
    """An import would replace documents that already exist (allowed with ``overwrite``)."""


def import_directory(
    store: SharedStore, directory: Path, progress: Progress | None = None, overwrite: bool = False
) -> ImportReport:
    """Load a directory of legacy JSON files (validated first), then check the store matches them."""
    documents = load_directory(directory, store._core.max_document_bytes)
    return import_documents(store, documents, progress, overwrite)


def import_split(
    store: SharedStore, path: Path, progress: Progress | None = None, overwrite: bool = False
) -> ImportReport:
    """Make each top-level key of one legacy JSON file its own document, then verify."""
    return import_documents(store, load_split(path, store._core.max_document_bytes), progress, overwrite)


def import_documents(
    store: SharedStore, documents: dict[str, Any], progress: Progress | None = None, overwrite: bool = False
) -> ImportReport:
    """Write already validated documents in batches, then check the store matches them.

    Without ``overwrite`` nothing is written if any of them exists already (ExistingDocuments),
    and each is created only if still absent when written, so a document created meanwhile is
    never replaced (reported as mismatched).
    """
    bulk = store.bulk()
    names = sorted(documents)
    if not overwrite:
        existing = sorted(set(bulk.names()) & set(names))
        if existing:
            shown = ", ".join(existing[:10]) + (
                f" and {len(existing) - 10} more" if len(existing) > 10 else ""
            )
            raise ExistingDocuments(
                f"{len(existing)} document(s) already exist and would be replaced: {shown}; nothing was "
                "written (add --overwrite to replace them)"
            )
    expected = None if overwrite else 0
    for start in range(0, len(names), 100):
        chunk = names[start : start + 100]
        calls = [_conflict_as_none(bulk._core.put(name, documents[name], expected)) for name in chunk]
        bulk._run_many(calls, "import documents")
        if progress is not None:
            progress(start + len(chunk), len(names))
    if state.get_marker(bulk) is None:
        state.set_marker(bulk)
    mismatched = [
        name
        for name, doc in zip(
            names,
            bulk._run_many([bulk._core.get(name, stale=False) for name in names], "verify"),
            strict=True,
        )
        if doc is None or _canonical(doc.data) != _canonical(documents[name])
    ]
    return ImportReport(names, mismatched)


def _conflict_as_none(call: Call[T]) -> Call[T | None]:
    """``call``, answering None where it met a VersionConflict (created meanwhile: left alone)."""

    def parse(raw: Any) -> T | None:
        try:
            return call.parse(raw)
        except VersionConflict:
            return None

    return Call(call.command, parse, call.action, call.script, writes=call.writes)


def _canonical(value: Any) -> str:
    # Type-exact comparison (1, 1.0 and True differ) through JSON text with sorted keys.
    return json.dumps(value, sort_keys=True, default=sorted)


def export_directory(
    store: SharedStore, directory: Path, progress: Progress | None = None
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Write every document to ``<directory>/<name>.json`` (pretty UTF-8, atomically); returns the
    files written and the documents left out because their stored bytes do not decode."""
    bulk = store.bulk()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = bulk.names()
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for start in range(0, len(names), 100):
        chunk = names[start : start + 100]
        for found in bulk._run_many([batch.dump(bulk._core, chunk)], "export documents")[0]:
            if isinstance(found, batch.Unreadable):
                log.error("export: skipping document %r: %s", found.name, found.reason)
                skipped.append((found.name, found.reason))
            elif found is not None:  # None: deleted since the listing
                written.append(write_json_atomically(directory / f"{found.name}.json", found.data))
        if progress is not None:
            progress(start + len(chunk), len(names))
    return written, skipped


def write_json_atomically(path: Path, data: Any) -> Path:
    """Pretty JSON (sets as sorted lists) to a temporary file, fsynced, then renamed over ``path``."""
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as out:
            out.write(dumps_plain(data, indent=2) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


__all__ = [
    "ImportReport",
    "InvalidDocument",
    "LegacyImportError",
    "export_directory",
    "import_directory",
    "import_documents",
    "import_split",
]
