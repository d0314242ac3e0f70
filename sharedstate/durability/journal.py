"""The continuous journal's segments: every change of the feed, in order, on the backup target.

A segment is a file of ``journal/`` named ``<namespace>-<seq>-<UTC time>Z.jsonl.gz``
(``seq`` counts up, so names sort in journal order). Decompressed it is JSON lines::

    {"format":"sharedstate-journal","format_version":1,"namespace":"mybot","seq":7,"created_at":...}
    {"id":"1712...-0","name":"config","version":...,"op":"set_field","fields":{"a":1},"removed":[],...}
    {"check":2,"sha256":"...","last":"1712...-0"}
    ...
    {"check":9,"sha256":"...","last":"1712...-3","closed":true}

Each flush appends one gzip member: the new lines and a check line whose SHA-256 covers every
line before it in the segment (and, with the snapshot key, an HMAC of that sum). A reader
trusts entries only up to the last check that matches, so a segment cut off by a crash
(the flush in progress) loses nothing that was flushed. A ``{"gap":...}`` line marks where
the journal could not follow the feed (trimmed past it, or Redis lost it): what happened
there is only known from a snapshot taken after it.

Fields are tagged JSON (``sharedstate.jsonio``), like snapshots: sets and big ints survive.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import hmac
import json
import re
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sharedstate.durability.target import JOURNAL, Source, Target
from sharedstate.errors import SnapshotError
from sharedstate.jsonio import encode_tagged, loads_tagged
from sharedstate.keys import NAME_RE
from sharedstate.models import Change

FORMAT = "sharedstate-journal"
FORMAT_VERSION = 1
SUFFIX = ".jsonl.gz"
COMPRESSLEVEL = 1
LINE_MAX = 64 << 20  # bytes a journal line may take (a document at the size limit, tagged)
SEGMENT_MAX = 512 << 20  # bytes a reader decompresses from one segment at most
_NAME = re.compile(
    r"(?P<ns>[A-Za-z0-9_][A-Za-z0-9._-]*)-(?P<seq>\d{12})-(?P<stamp>\d{8}T\d{9})Z" + re.escape(SUFFIX)
)
_string = json.encoder.encode_basestring
_UNREAD = '"unread":true,'


def segment_name(namespace: str, seq: int, created_at: float) -> str:
    """The file name of segment ``seq``."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(created_at)) + f"{int(created_at * 1000) % 1000:03d}"
    return f"{namespace}-{seq:012d}-{stamp}Z{SUFFIX}"


@dataclass(frozen=True, slots=True, order=True)
class SegmentName:
    """What a segment's file name says: its place in the journal and when it was opened."""

    seq: int
    created_at: float
    namespace: str
    name: str


def parse_segment_name(name: str) -> SegmentName | None:
    """The parts of a segment's file name; None for any other file."""
    found = _NAME.fullmatch(name)
    if not found:
        return None
    stamp = found.group("stamp")
    try:
        moment = time.strptime(stamp[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    created = calendar.timegm(moment) + int(stamp[15:]) / 1000
    return SegmentName(int(found.group("seq")), created, found.group("ns"), name)


@dataclass(frozen=True, slots=True)
class Entry:
    """One change as journaled. ``whole`` marks a document read back in full (its feed entry
    had no payload) and ``restore`` ops, which replace the document."""

    id: str
    name: str
    version: int
    op: str
    fields: Any
    removed: tuple[str, ...]
    writer: str
    time: float
    whole: bool = False
    unread: bool = False  # the feed left the values out and the document was too large to read back

    @classmethod
    def of(
        cls, change: Change, *, data: Any = None, version: int | None = None, unread: bool = False
    ) -> Entry:
        """The entry of a feed change; ``data``/``version`` for one read back whole; ``unread`` for
        one whose values are known only to the next snapshot."""
        if unread:
            return cls(change.id, change.name, change.version, change.op, None, (), change.writer,
                       change.time, False, True)  # fmt: skip
        if version is not None:
            return cls(change.id, change.name, version, "put", data, (), change.writer, change.time, True)
        whole = change.op == "restore"
        return cls(change.id, change.name, change.version, change.op, change.fields, tuple(change.removed),
                   change.writer, change.time, whole)  # fmt: skip

    def line(self) -> bytes:
        head = (
            f'{{"id":{_string(self.id)},"name":{_string(self.name)},"version":{int(self.version)},'
            f'"op":{_string(self.op)},"writer":{_string(self.writer)},"time":{float(self.time)!r},'
            f'"whole":{"true" if self.whole else "false"},{_UNREAD if self.unread else ""}"removed":'
        )
        removed = json.dumps(list(self.removed), ensure_ascii=False, separators=(",", ":"))
        return head.encode() + removed.encode() + b',"fields":' + encode_tagged(self.fields) + b"}\n"


@dataclass(frozen=True, slots=True)
class Gap:
    """Where the journal could not follow the feed; ``at`` is this machine's time of noticing."""

    at: float
    after: str
    reason: str

    def line(self) -> bytes:
        return (
            json.dumps({"gap": True, "at": self.at, "after": self.after, "reason": self.reason}).encode()
            + b"\n"
        )


Item = Entry | Gap


def _signature(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


class SegmentWriter:
    """The open segment, kept whole in memory (segments are rolled small): ``flush()`` returns
    its bytes and how many of them were already written, for ``Target.write``."""

    def __init__(
        self, namespace: str, seq: int, created_at: float | None = None, key: bytes | None = None
    ) -> None:
        self.namespace = namespace
        self.seq = seq
        self.created_at = time.time() if created_at is None else created_at
        self.name = segment_name(namespace, seq, self.created_at)
        self.key = key
        self.data = bytearray()
        self.written = 0  # bytes of ``data`` the target already holds
        self.lines = 0
        self.raw_bytes = 0
        self.last = ""
        self.closed = False
        self._sha = hashlib.sha256()
        self._pending: list[bytes] = []
        header = {"format": FORMAT, "format_version": FORMAT_VERSION, "namespace": namespace, "seq": seq,
                  "created_at": self.created_at}  # fmt: skip
        self._add(json.dumps(header, separators=(",", ":")).encode() + b"\n")

    def _add(self, line: bytes) -> None:
        self._pending.append(line)
        self._sha.update(line)
        self.lines += 1
        self.raw_bytes += len(line)

    def add(self, item: Item) -> None:
        """Append one entry or gap (in memory until the next flush)."""
        self._add(item.line())
        if isinstance(item, Entry):
            self.last = item.id

    @property
    def pending(self) -> bool:
        """Whether there are lines the target does not hold yet."""
        return bool(self._pending)

    def flush(self, close: bool = False) -> tuple[bytes, int]:
        """Seal the pending lines with a check line into a new gzip member: (the whole
        segment, bytes of it already written)."""
        check: dict[str, Any] = {"check": self.lines, "sha256": self._sha.hexdigest(), "last": self.last}
        if self.key is not None:
            check["hmac_sha256"] = _signature(self.key, check["sha256"])
        if close:
            check["closed"] = True
            self.closed = True
        line = json.dumps(check, separators=(",", ":")).encode() + b"\n"
        self._pending.append(line)
        self._sha.update(line)
        self.lines += 1
        self.raw_bytes += len(line)
        self.data += gzip.compress(b"".join(self._pending), compresslevel=COMPRESSLEVEL, mtime=0)
        self._pending.clear()
        return bytes(self.data), self.written

    def stored(self, size: int) -> None:
        """The target now holds the first ``size`` bytes."""
        self.written = size


@dataclass(slots=True)
class Segment:
    """What a segment holds that its checks vouch for."""

    name: str
    namespace: str
    seq: int
    created_at: float
    items: list[Item] = field(default_factory=list)
    closed: bool = False
    torn: str | None = None  # why lines after the last good check were not trusted

    @property
    def last(self) -> str:
        """The feed id of its last entry ("" if none)."""
        return next((item.id for item in reversed(self.items) if isinstance(item, Entry)), "")


def read_segment(source: Source, key: bytes | None = None) -> Segment:
    """Read a segment, trusting entries up to its last matching check. SnapshotError when the
    file is not a journal segment at all; a damaged or cut-off tail is reported in ``torn``."""
    raw = _decompressed(source)
    lines = raw.split(b"\n")
    if not lines or not lines[0]:
        raise SnapshotError(source, "not a journal segment (empty)")
    try:
        header = json.loads(lines[0])
    except ValueError:
        raise SnapshotError(source, "not a journal segment (the first line is not JSON)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(source, "not a journal segment (foreign file)")
    if header.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(source, f"unsupported journal format version {header.get('format_version')!r}")
    try:
        segment = Segment(
            source.name, str(header["namespace"]), int(header["seq"]), float(header["created_at"])
        )
    except (KeyError, TypeError, ValueError):
        raise SnapshotError(source, "the journal segment's header is incomplete") from None
    sha = hashlib.sha256(lines[0] + b"\n")
    count = 1
    pending: list[Item] = []
    ended_cleanly = raw.endswith(b"\n")
    body = lines[1:-1] if ended_cleanly else lines[1:]
    for index, line in enumerate(body):
        complete = ended_cleanly or index < len(body) - 1
        if not complete:
            segment.torn = "cut off in the middle of a line"
            break
        if line.startswith(b'{"check"'):
            problem = _checked(line, sha, count, key)
            if problem is not None:
                segment.torn = problem
                break
            segment.items += pending
            pending = []
            sha.update(line + b"\n")
            count += 1
            if b'"closed":true' in line:
                segment.closed = True
            continue
        try:
            pending.append(_parse_item(line))
        except (ValueError, KeyError, TypeError, RecursionError):
            segment.torn = f"line {count + 1} is damaged"
            break
        sha.update(line + b"\n")
        count += 1
    else:
        if pending:
            segment.torn = f"{len(pending)} line(s) after the last check"
    return segment


def _decompressed(source: Source) -> bytes:
    """The segment's bytes, decompressed member by member as far as they are readable (a member
    cut off by a crash yields what it holds; the check lines decide what is trusted)."""
    from sharedstate.durability.format import _open

    try:
        with _open(source) as raw:
            data = raw.read(SEGMENT_MAX + 1)
    except OSError as exc:
        raise SnapshotError(source, f"unreadable: {exc}") from None
    if len(data) > SEGMENT_MAX:
        raise SnapshotError(source, "a journal segment larger than any the worker writes (hostile)")
    out = bytearray()
    while data:
        member = zlib.decompressobj(wbits=31)
        try:
            out += member.decompress(data, SEGMENT_MAX + 1 - len(out))
        except zlib.error:
            break
        if len(out) > SEGMENT_MAX or member.unconsumed_tail:
            raise SnapshotError(source, "a journal segment larger than any the worker writes (hostile)")
        if not member.eof:
            break
        data = member.unused_data
    return bytes(out)


def _checked(line: bytes, sha: Any, count: int, key: bytes | None) -> str | None:
    try:
        check = json.loads(line)
    except ValueError:
        return "a check line is damaged"
    if not isinstance(check, dict) or check.get("check") != count or check.get("sha256") != sha.hexdigest():
        return "altered or out of order (checksum mismatch)"
    if key is not None:
        signature = check.get("hmac_sha256")
        if not isinstance(signature, str) or not hmac.compare_digest(
            signature, _signature(key, sha.hexdigest())
        ):
            return "not signed with the snapshot key (SHAREDSTATE_SNAPSHOT_KEY)"
    return None


def _parse_item(line: bytes) -> Item:
    if len(line) > LINE_MAX:
        raise ValueError("line too long")
    if line.startswith(b'{"gap"'):
        gap = json.loads(line)
        return Gap(float(gap["at"]), str(gap["after"]), str(gap["reason"]))
    fields = loads_tagged(line)
    entry = Entry(
        id=str(fields["id"]),
        name=str(fields["name"]),
        version=int(fields["version"]),
        op=str(fields["op"]),
        fields=fields["fields"],
        removed=tuple(str(name) for name in fields["removed"]),
        writer=str(fields["writer"]),
        time=float(fields["time"]),
        whole=bool(fields["whole"]),
        unread=bool(fields.get("unread", False)),
    )
    if not NAME_RE.fullmatch(entry.name) or entry.version < 1:
        raise ValueError("invalid entry")
    return entry


# -- replay ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Doc:
    """A document as the replay knows it."""

    version: int
    data: Any
    updated_at: float = 0.0
    updated_by: str = ""


def apply(docs: dict[str, Doc | None], entry: Entry) -> bool:
    """Apply one entry to ``docs`` (name -> document, None once deleted) the way the write
    scripts applied it to Redis; False when the document is already at that version or newer."""
    current = docs.get(entry.name)
    if entry.unread or (current is not None and entry.version <= current.version):
        return False  # an unread change: the snapshot taken after it has the document
    if entry.op == "delete":
        docs[entry.name] = None
        return True
    base = current.data if current is not None else None
    if entry.whole:
        data = entry.fields
    elif entry.op == "put" and not (isinstance(entry.fields, dict) and isinstance(base, dict)):
        data = entry.fields  # written whole: the document was absent or not an object
    else:  # a put of changed fields, merge, set_field, delete_field: top-level fields
        data = (
            {key: value for key, value in base.items() if key not in set(entry.removed)}
            if isinstance(base, dict)
            else {}
        )
        if isinstance(entry.fields, dict):
            data.update(entry.fields)
    docs[entry.name] = Doc(entry.version, data, entry.time, entry.writer)
    return True


def id_key(stream_id: str) -> tuple[int, int]:
    """A feed id as a sortable pair."""
    ms, _, seq = stream_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def segments_of(target: Target, namespace: str) -> list[SegmentName]:
    """The namespace's journal segments on ``target``, in journal order."""
    return sorted(
        parsed
        for item in target.list(JOURNAL)
        if item.refused is None
        and (parsed := parse_segment_name(item.name)) is not None
        and parsed.namespace == namespace
    )


def iter_items(segments: list[Segment]) -> Iterator[Item]:
    """Every trusted item of ``segments`` in journal order."""
    for segment in sorted(segments, key=lambda segment: segment.seq):
        yield from segment.items
