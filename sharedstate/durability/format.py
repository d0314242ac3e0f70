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
import errno
import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import stat
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from sharedstate.durability.target import SNAPSHOTS, Source, Target, as_target, source_size
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


HEADER_MAX = 1 << 20  # bytes a header line may take
LEGACY_MAX_LINE = 256 << 20  # bytes a record may take in a file whose header does not say
TRAILER_MAX = 4096  # bytes the trailer line may take
SKIPPED_LISTED = 1000  # undecodable documents named in a header at most


@dataclass(frozen=True, slots=True)
class Header:
    """What a snapshot says about itself. ``records_bytes`` and ``longest_line`` (the records'
    decompressed size and longest line, -1 in files that predate them) bound what a reader
    decompresses; ``skipped`` names documents left out because they did not decode."""

    namespace: str
    created_at: float
    documents: int
    epoch: str = ""
    max_version: int = 0
    floor: int = 0
    feed_position: str = "0-0"
    records_bytes: int = -1
    longest_line: int = -1
    skipped: tuple[str, ...] = ()
    finished_at: float = -1.0

    @property
    def complete_at(self) -> float:
        """When every record had been read (files that predate ``finished_at``: their creation)."""
        return self.finished_at if self.finished_at >= 0 else self.created_at

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
                records_bytes=int(fields.get("records_bytes", -1)),
                longest_line=int(fields.get("longest_line", -1)),
                skipped=tuple(str(name) for name in fields.get("skipped", ())),
                finished_at=float(fields.get("finished_at", -1.0)),
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


class _Member:
    """Lines into one gzip member of an open file, hashed as they go."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._gzip = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=COMPRESSLEVEL, mtime=0)
        self._buffer = bytearray()
        self.sha = hashlib.sha256()
        self.count = 0
        self.bytes = 0
        self.longest = 0

    def add(self, line: bytes) -> None:
        self._buffer += line
        self.count += 1
        self.bytes += len(line)
        self.longest = max(self.longest, len(line))
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
    """Write one snapshot to a target (or a snapshots directory); nothing appears under the
    final name unless ``commit`` succeeds.

    >>> with SnapshotWriter(target, "mybot") as writer:
    ...     writer.add(Record("config", 3, 1712000000.0, "bot", {"a": 1}))
    ...     source = writer.commit(epoch="...", max_version=3)
    """

    def __init__(
        self,
        target: Target | Path,
        namespace: str,
        created_at: float | None = None,
        key: bytes | None = None,
    ) -> None:
        self.key = key
        self.target = as_target(target)
        self.directory = self.target.staging(SNAPSHOTS)
        self.namespace = namespace
        self.created_at = time.time() if created_at is None else created_at
        self.name = snapshot_name(namespace, self.created_at)
        self._records_path = self.directory / f".rec-{self.name}"
        self._temp_path = self.directory / f".tmp-{self.name}"
        self._records_file: IO[bytes] = open(self._records_path, "wb")  # noqa: SIM115 - closed in commit/abort
        self._records = _Member(self._records_file)
        self._done = False
        self.header: Header | None = None  # once committed

    def add(self, record: Record) -> int:
        """Append one document; returns the length of its line."""
        line = record.line()
        self._records.add(line)
        return len(line)

    @property
    def count(self) -> int:
        """Records added so far."""
        return self._records.count

    def commit(self, **header: Any) -> Source:
        """Assemble header + records + trailer, make it durable, and give it its final name."""
        self._records.close()
        self._records_file.flush()
        self._records_file.close()
        skipped = tuple(header.pop("skipped", ()))[:SKIPPED_LISTED]
        head = Header(
            namespace=self.namespace,
            created_at=self.created_at,
            documents=self.count,
            records_bytes=self._records.bytes,
            longest_line=self._records.longest,
            skipped=skipped,
            **{"finished_at": time.time(), **header},
        )
        self.header = head
        head_line = head.line()
        trailer: dict[str, Any] = {
            "trailer": True,
            "documents": self.count,
            "header_sha256": hashlib.sha256(head_line).hexdigest(),
            "records_sha256": self._records.sha.hexdigest(),
        }
        if self.key is not None:
            trailer["hmac_sha256"] = _signature(self.key, trailer["header_sha256"], trailer["records_sha256"])
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
        self._records_path.unlink(missing_ok=True)
        final = self.target.publish(SNAPSHOTS, self._temp_path)
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


def _signature(key: bytes, header_sha: str, records_sha: str) -> str:
    return hmac.new(key, f"{header_sha}:{records_sha}".encode(), hashlib.sha256).hexdigest()


def _open(path: Source) -> IO[bytes]:
    """A snapshot file opened for reading: a regular file, never through a symlink (a blob of a
    bucket is read as it streams)."""
    if isinstance(path, str):
        path = Path(path)
    if not isinstance(path, Path):
        return path.open()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SnapshotError(path, "no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SnapshotError(path, "a symbolic link (refused: snapshots are regular files)") from None
        raise SnapshotError(path, f"unreadable: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SnapshotError(path, "not a regular file (refused)")
    return os.fdopen(fd, "rb")


def read_header(path: Source) -> Header:
    """The header alone (reads only the first line)."""
    try:
        with _open(path) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            line = stream.readline(HEADER_MAX)
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


@dataclass(slots=True)
class _Limits:
    """What a reader may decompress: no line longer than ``line``, no more than ``total`` bytes
    in all (set from the header once it is read), so a small file cannot make it use much memory."""

    line: int = HEADER_MAX
    total: int | None = None


def _lines(path: Source, limits: _Limits) -> Iterator[bytes]:
    """The file's lines, each with its newline (the last one without, if it has none)."""
    seen = 0
    try:
        with _open(path) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            pieces: list[bytes] = []  # of a line not complete yet (it can span many chunks)
            pending = 0  # their bytes
            while chunk := stream.read(_READ_BYTES):  # GzipFile's own line iteration is slower
                seen += len(chunk)
                if limits.total is not None and seen > limits.total:
                    raise SnapshotError(path, "holds more data than its header declares (damaged or hostile)")
                start = 0
                end = chunk.find(b"\n")
                if pieces:
                    if end == -1:
                        pieces.append(chunk)
                        pending += len(chunk)
                        _check_line(path, pending, limits)
                        continue
                    pieces.append(chunk[: end + 1])
                    _check_line(path, pending + end + 1, limits)
                    yield b"".join(pieces)
                    pieces, pending = [], 0
                    start = end + 1
                    end = chunk.find(b"\n", start)
                while end != -1:
                    _check_line(path, end + 1 - start, limits)
                    yield chunk[start : end + 1]
                    start = end + 1
                    end = chunk.find(b"\n", start)
                if start < len(chunk):
                    pieces.append(chunk[start:])
                    pending = len(chunk) - start
                    _check_line(path, pending, limits)
            if pieces:
                yield b"".join(pieces)
    except (OSError, EOFError, zlib.error) as exc:
        raise SnapshotError(path, _why(exc)) from None


def _check_line(path: Source, length: int, limits: _Limits) -> None:
    if length > limits.line:
        raise SnapshotError(
            path, f"a line longer than its header allows ({limits.line} bytes): damaged or hostile"
        )


def read_snapshot(
    path: Source, *, exact: bool = True, key: bytes | None = None
) -> tuple[Header, Iterator[Record]]:
    """The header and an iterator of records that checks everything as it goes.

    The iterator raises SnapshotError on the first problem, at the latest after the last
    record (checksums, counts, and with ``key`` the signature). Callers that must not act on a
    bad file verify it first. ``exact=False`` is for checking only: ints beyond 64 bits in the
    data may read as floats. Decompression stops at the sizes the header declares.
    """
    header, first, lines = _opened(path)
    return header, _records(path, header, first, lines, exact, key)


def _opened(path: Source) -> tuple[Header, bytes, Iterator[bytes]]:
    """The header, its line, and the lines after it, bounded by the sizes the header declares."""
    limits = _Limits()
    lines = _lines(path, limits)
    first = next(lines, None)
    if first is None:
        raise SnapshotError(path, "empty file")
    header = Header.parse(first, path)
    if header.records_bytes >= 0 and header.longest_line >= 0:
        limits.line = max(header.longest_line, TRAILER_MAX)
        limits.total = len(first) + header.records_bytes + TRAILER_MAX
    else:
        limits.line = LEGACY_MAX_LINE
    return header, first, lines


def _records(
    path: Source, header: Header, head_line: bytes, lines: Iterator[bytes], exact: bool, key: bytes | None
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
    if key is not None:
        signature = trailer.get("hmac_sha256")
        if not isinstance(signature, str):
            raise SnapshotError(path, "not signed with the snapshot key (SHAREDSTATE_SNAPSHOT_KEY)")
        expected = _signature(key, str(trailer["header_sha256"]), str(trailer["records_sha256"]))
        if not hmac.compare_digest(signature, expected):
            raise SnapshotError(
                path, "the signature does not match the snapshot key: altered, or another key"
            )
    if not count == trailer.get("documents") == header.documents:
        counts = f"the header says {header.documents} and the trailer {trailer.get('documents')}"
        raise SnapshotError(path, f"{count} records, but {counts}")


def _parse_trailer(line: bytes, path: Source) -> dict[str, Any]:
    try:
        trailer = json.loads(line)
    except ValueError:
        raise SnapshotError(path, "the trailer is damaged") from None
    if not isinstance(trailer, dict):
        raise SnapshotError(path, "the trailer is damaged")
    return trailer


def _parse_record(line: bytes, path: Source, number: int, exact: bool) -> Record:
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


_NAME_AT_START = re.compile(rb'\{"name":"([A-Za-z0-9._:-]{1,200})"')


def scan_names(path: Source) -> list[str]:
    """The document names a snapshot lists, read fast: no record parsed, no checksum checked (for
    comparing with what Redis holds; anything acting on a file verifies it first)."""
    _, _, lines = _opened(path)
    names = []
    for line in lines:
        found = _NAME_AT_START.match(line)
        if found:
            names.append(found.group(1).decode())
    return names


@dataclass(frozen=True, slots=True)
class Verified:
    """A snapshot that passed every check."""

    path: Source
    header: Header
    size: int


def verify(path: Source, key: bytes | None = None) -> Verified:
    """Check header, every record, counts, checksums and (``key``) the signature; SnapshotError
    with the reason if not."""
    header, records = read_snapshot(path, exact=False, key=key)
    for _ in records:
        pass
    return Verified(path, header, source_size(path))
