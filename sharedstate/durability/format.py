"""The snapshot file: gzip-compressed JSON lines with a header, one record per document, a trailer.

Decompressed, a snapshot reads::

    {"format":"sharedstate-snapshot","format_version":1,"namespace":"mybot","created_at":...,
     "documents":2,"epoch":"...","max_version":7,"floor":0,"feed_position":"1712...-0"}
    {"name":"config","version":7,"updated_at":...,"updated_by":"bot","data":{"a":1}}
    {"name":"users","version":3,"updated_at":...,"updated_by":"cron","data":{"ids":{"$set":[1,2]}}}
    {"trailer":true,"documents":2,"header_sha256":"...","records_sha256":"..."}

Data is tagged JSON (``sharedstate.jsonio``): sets survive. The two SHA-256 sums cover every
byte before the trailer, so a truncated or altered file is detected; the record count must
match the header and the trailer.

On disk the file is three gzip members (header, records, trailer), which every gzip reader
sees as one stream. The records are written first to a side file, so the header can carry
the exact count without holding the snapshot in memory; then header, records and trailer
are assembled under a temporary name (starting with ``.``), fsynced, renamed and the
directory fsynced.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import secrets
import shutil
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from sharedstate.errors import SnapshotError
from sharedstate.jsonio import encode_tagged, loads_tagged
from sharedstate.keys import NAME_RE

FORMAT = "sharedstate-snapshot"
FORMAT_VERSION = 1
SUFFIX = ".jsonl.gz"
COMPRESSLEVEL = 1  # speed over size: snapshots run every minute on a small worker
_FLUSH_BYTES = 1 << 20
_READ_BYTES = 1 << 20
_string: Callable[[str], str] = json.encoder.encode_basestring


@dataclass(frozen=True, slots=True)
class Header:
    """What a snapshot says about itself."""

    namespace: str
    created_at: float
    documents: int
    epoch: str = ""
    max_version: int = 0
    floor: int = 0
    feed_position: str = "0-0"

    def line(self) -> bytes:
        fields = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}
        fields["created_at_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at))
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    @classmethod
    def parse(cls, line: bytes, path: object) -> Header:
        try:
            fields = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise SnapshotError(path, "not a sharedstate snapshot (the first line is not JSON)") from None
        if not isinstance(fields, dict) or fields.get("format") != FORMAT:
            raise SnapshotError(path, "not a sharedstate snapshot (foreign file)")
        if fields.get("format_version") != FORMAT_VERSION:
            raise SnapshotError(path, f"unsupported snapshot format version {fields.get('format_version')!r}")
        try:
            return cls(
                namespace=str(fields["namespace"]),
                created_at=float(fields["created_at"]),
                documents=int(fields["documents"]),
                epoch=str(fields.get("epoch", "")),
                max_version=int(fields.get("max_version", 0)),
                floor=int(fields.get("floor", 0)),
                feed_position=str(fields.get("feed_position", "0-0")),
            )
        except (KeyError, TypeError, ValueError):
            raise SnapshotError(path, "the header is incomplete") from None


@dataclass(frozen=True, slots=True)
class Record:
    """One document as captured."""

    name: str
    version: int
    updated_at: float
    updated_by: str
    data: Any

    def line(self) -> bytes:
        # what json.dumps of the dict would print, without building an encoder per record
        head = (
            f'{{"name":{_string(self.name)},"version":{int(self.version)},'
            f'"updated_at":{float(self.updated_at)!r},"updated_by":{_string(self.updated_by)},"data":'
        )
        return head.encode() + encode_tagged(self.data) + b"}\n"


def snapshot_name(namespace: str, created_at: float) -> str:
    """``<namespace>-<UTC time to the millisecond>Z-<random>.jsonl.gz``; never starts with ``.``."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(created_at))
    millis = int(created_at * 1000) % 1000
    return f"{namespace}-{stamp}{millis:03d}Z-{secrets.token_hex(3)}{SUFFIX}"


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Member:
    """Lines into one gzip member of an open file, hashed as they go."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._gzip = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=COMPRESSLEVEL, mtime=0)
        self._buffer = bytearray()
        self.sha = hashlib.sha256()
        self.count = 0

    def add(self, line: bytes) -> None:
        self._buffer += line
        self.count += 1
        if len(self._buffer) >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        self.sha.update(self._buffer)  # the same sum as line by line, in far fewer calls
        self._gzip.write(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        self._flush()
        self._gzip.close()


class SnapshotWriter:
    """Write one snapshot; nothing appears under the final name unless ``commit`` succeeds.

    >>> with SnapshotWriter(directory, "mybot") as writer:
    ...     writer.add(Record("config", 3, 1712000000.0, "bot", {"a": 1}))
    ...     path = writer.commit(epoch="...", max_version=3)
    """

    def __init__(self, directory: Path, namespace: str, created_at: float | None = None) -> None:
        self.directory = Path(directory)
        self.namespace = namespace
        self.created_at = time.time() if created_at is None else created_at
        self.name = snapshot_name(namespace, self.created_at)
        self._records_path = self.directory / f".rec-{self.name}"
        self._temp_path = self.directory / f".tmp-{self.name}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._records_file: IO[bytes] = open(self._records_path, "wb")  # noqa: SIM115 - closed in commit/abort
        self._records = _Member(self._records_file)
        self._done = False

    def add(self, record: Record) -> int:
        """Append one document; returns the length of its line."""
        line = record.line()
        self._records.add(line)
        return len(line)

    @property
    def count(self) -> int:
        """Records added so far."""
        return self._records.count

    def commit(self, **header: Any) -> Path:
        """Assemble header + records + trailer, make it durable, and give it its final name."""
        self._records.close()
        self._records_file.flush()
        self._records_file.close()
        head = Header(namespace=self.namespace, created_at=self.created_at, documents=self.count, **header)
        head_line = head.line()
        trailer = {
            "trailer": True,
            "documents": self.count,
            "header_sha256": hashlib.sha256(head_line).hexdigest(),
            "records_sha256": self._records.sha.hexdigest(),
        }
        final = self.directory / self.name
        with open(self._temp_path, "wb") as out:
            member = _Member(out)
            member.add(head_line)
            member.close()
            with open(self._records_path, "rb") as records:
                shutil.copyfileobj(records, out, 1 << 20)
            member = _Member(out)
            member.add(json.dumps(trailer, separators=(",", ":")).encode() + b"\n")
            member.close()
            out.flush()
            os.fsync(out.fileno())
        os.replace(self._temp_path, final)
        fsync_dir(self.directory)
        self._records_path.unlink(missing_ok=True)
        self._done = True
        return final

    def abort(self) -> None:
        """Remove the temporary files (the final name was never created)."""
        with contextlib.suppress(Exception):
            self._records_file.close()
        for path in (self._records_path, self._temp_path):
            path.unlink(missing_ok=True)

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self._done:
            self.abort()


# -- reading --------------------------------------------------------------------------------


def read_header(path: Path) -> Header:
    """The header alone (reads only the first line)."""
    try:
        with gzip.open(path, "rb") as stream:
            line = stream.readline(1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        raise SnapshotError(path, f"unreadable: {_why(exc)}") from None
    if not line.endswith(b"\n"):
        raise SnapshotError(path, "truncated (no complete header)")
    return Header.parse(line, path)


def _why(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "truncated (the compressed data ends early)"
    if isinstance(exc, gzip.BadGzipFile):
        return f"not gzip data or altered ({exc})"
    if isinstance(exc, zlib.error):
        return f"altered compressed data ({exc})"
    return str(exc)


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines, each with its newline (the last one without, if it has none)."""
    try:
        with gzip.open(path, "rb") as stream:
            pieces: list[bytes] = []  # of a line not complete yet (it can span many chunks)
            while chunk := stream.read(_READ_BYTES):  # GzipFile's own line iteration is slower
                start = 0
                end = chunk.find(b"\n")
                if pieces:
                    if end == -1:
                        pieces.append(chunk)
                        continue
                    pieces.append(chunk[: end + 1])
                    yield b"".join(pieces)
                    pieces = []
                    start = end + 1
                    end = chunk.find(b"\n", start)
                while end != -1:
                    yield chunk[start : end + 1]
                    start = end + 1
                    end = chunk.find(b"\n", start)
                if start < len(chunk):
                    pieces.append(chunk[start:])
            if pieces:
                yield b"".join(pieces)
    except FileNotFoundError:
        raise SnapshotError(path, "no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise SnapshotError(path, _why(exc)) from None


def read_snapshot(path: Path, *, exact: bool = True) -> tuple[Header, Iterator[Record]]:
    """The header and an iterator of records that checks everything as it goes.

    The iterator raises SnapshotError on the first problem, at the latest after the last
    record (checksums, counts). Callers that must not act on a bad file verify it first.
    ``exact=False`` is for checking only: ints beyond 64 bits in the data may read as floats.
    """
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise SnapshotError(path, "empty file")
    header = Header.parse(first, path)
    return header, _records(path, header, first, lines, exact)


def _records(
    path: Path, header: Header, head_line: bytes, lines: Iterator[bytes], exact: bool
) -> Iterator[Record]:
    sha = hashlib.sha256()
    count = 0
    previous = ""
    trailer: dict[str, Any] | None = None
    for line in lines:
        if trailer is not None:
            raise SnapshotError(path, "data after the trailer")
        if line.startswith(b'{"trailer"'):
            trailer = _parse_trailer(line, path)
            continue
        if not line.endswith(b"\n"):
            raise SnapshotError(path, "truncated (a record is cut off)")
        sha.update(line)
        count += 1
        record = _parse_record(line, path, count, exact)
        if record.name <= previous:
            raise SnapshotError(path, f"record {count} ({record.name!r}) is out of order or repeated")
        previous = record.name
        yield record
    if trailer is None:
        raise SnapshotError(path, f"truncated (no trailer after {count} records)")
    if trailer.get("header_sha256") != hashlib.sha256(head_line).hexdigest():
        raise SnapshotError(path, "the header was altered (checksum mismatch)")
    if trailer.get("records_sha256") != sha.hexdigest():
        raise SnapshotError(path, "the records were altered (checksum mismatch)")
    if not count == trailer.get("documents") == header.documents:
        counts = f"the header says {header.documents} and the trailer {trailer.get('documents')}"
        raise SnapshotError(path, f"{count} records, but {counts}")


def _parse_trailer(line: bytes, path: Path) -> dict[str, Any]:
    try:
        trailer = json.loads(line)
    except ValueError:
        raise SnapshotError(path, "the trailer is damaged") from None
    if not isinstance(trailer, dict):
        raise SnapshotError(path, "the trailer is damaged")
    return trailer


def _parse_record(line: bytes, path: Path, number: int, exact: bool) -> Record:
    try:
        fields = loads_tagged(line, exact_ints=exact)
        record = Record(
            name=fields["name"],
            version=fields["version"],
            updated_at=float(fields["updated_at"]),
            updated_by=str(fields["updated_by"]),
            data=fields["data"],
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        raise SnapshotError(path, f"record {number} is damaged") from None
    if not isinstance(record.name, str) or not NAME_RE.fullmatch(record.name):
        raise SnapshotError(path, f"record {number} has an invalid document name")
    if isinstance(record.version, bool) or not isinstance(record.version, int) or record.version < 1:
        raise SnapshotError(path, f"record {number} has an invalid version")
    return record


@dataclass(frozen=True, slots=True)
class Verified:
    """A snapshot that passed every check."""

    path: Path
    header: Header
    size: int


def verify(path: Path) -> Verified:
    """Check header, every record, counts and checksums; SnapshotError with the reason if not."""
    path = Path(path)
    header, records = read_snapshot(path, exact=False)
    for _ in records:
        pass
    return Verified(path, header, path.stat().st_size)
