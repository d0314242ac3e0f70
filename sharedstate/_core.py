"""The pure core shared by SharedStore and AsyncSharedStore.

Everything that is not I/O lives here: validation, encoding, the Redis commands each
operation sends (as ``Call`` objects), parsing their answers, the last-known copies and
the watch state. The two clients only send ``Call.command`` and hand the answer to
``Call.parse``, the way httpx's BaseClient serves Client and AsyncClient.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sharedstate import codec
from sharedstate._cache import Known, LastKnown
from sharedstate._fresh import ClientCache, Entry, forget
from sharedstate._scripts import HISTORY, READ, WRITE, Script
from sharedstate.errors import (
    FeedTrimmed,
    InvalidDocument,
    NotAnObject,
    SharedStateError,
    StoreUnavailable,
    VersionConflict,
)
from sharedstate.keys import (
    BEFORE_BATCH,
    DEFAULT_CACHE_BYTES,
    DEFAULT_CACHE_DOCUMENTS,
    DEFAULT_FEED_MAXLEN,
    DEFAULT_HISTORY_BUDGET,
    DEFAULT_HISTORY_LIMIT,
    DEFAULT_HISTORY_TTL,
    DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_PAYLOAD_LIMIT,
    DEFAULT_STALE_CACHE_SIZE,
    DEFAULT_WRITE_ID_TTL,
    INFO_BATCH,
    KIND_OBJECT,
    Keys,
    validate_name,
    validate_namespace,
)
from sharedstate.models import Change, Document, DocumentInfo, Written

T = TypeVar("T")
U = TypeVar("U")
log = logging.getLogger("sharedstate")

STREAM_ID = re.compile(r"\d+(-\d+)?")
WATCH_BLOCK_SECONDS = 1.0  # longest XREAD BLOCK: well under any sane socket timeout
WATCH_BATCH = 100
# A put of more fields than this is staged: its fields go to Redis in chunks, each a short
# command, and one script swaps them in. Written in one script, 380k fields held Redis ~1 s.
STAGE_FIELDS = 20_000
STAGE_CHUNK = 5_000
STAGE_TTL = 3600  # seconds a staged put's fields outlive a client that died before the swap
STALE_WARNING_EVERY = 10.0  # seconds between two "serving stale copies" warnings
WRITE_ID_TTL = b"%d" % DEFAULT_WRITE_ID_TTL


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One Redis command of an operation and how to read its answer.

    ``script`` is set for EVALSHA calls, re-sent with EVAL when the server lost its script
    cache. ``stale`` answers from the last known copy when Redis is unavailable (or re-raises).
    ``alone``: never batched with other calls (a blocking read would hold them up).
    ``writes``: the call changes data, so one left unanswered has an unknown outcome.
    ``before``: commands sent first, in order, each on its own (a wide put's staged fields).
    ``invalidates``: the document the call writes: the client forgets its cached copy of it
    once the call is over, whatever the outcome (read-your-writes before Redis's own
    invalidation arrives).
    ``then``: a command sent right behind ``command`` in the same round trip (and re-sent with
    it), which Redis runs as soon as ``command`` is answered; ``parse`` then gets both answers.
    """

    command: tuple[Any, ...]
    parse: Callable[[Any], T]
    action: str
    script: Script | None = None
    stale: Callable[[StoreUnavailable], T] | None = None
    alone: bool = False
    writes: bool = False
    before: tuple[tuple[Any, ...], ...] = ()
    invalidates: str | None = None
    then: tuple[Any, ...] | None = None

    def reparsed(self, parse: Callable[[Any], U]) -> Call[U]:
        """The same call with another reading of its answer."""
        return Call(
            self.command, parse, self.action, self.script,
            alone=self.alone, writes=self.writes, before=self.before, invalidates=self.invalidates,
            then=self.then,
        )  # fmt: skip

    def eval_command(self) -> tuple[Any, ...]:
        """The EVAL form of an EVALSHA command."""
        assert self.script is not None
        return ("EVAL", self.script.source, *self.command[2:])


def before_batches(call: Call[Any]) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """``call.before`` in pipelines of BEFORE_BATCH commands (a round trip each), for both clients."""
    for start in range(0, len(call.before), BEFORE_BATCH):
        yield call.before[start : start + BEFORE_BATCH]


def _stage_commands(key: str, fields: list[tuple[str, bytes]]) -> tuple[tuple[Any, ...], ...]:
    """DEL, then HSET chunks (the first followed by EXPIRE, so a dead client leaves nothing for good)."""
    commands: list[tuple[Any, ...]] = [("DEL", key)]
    for start in range(0, len(fields), STAGE_CHUNK):
        commands.append(
            ("HSET", key, *(part for pair in fields[start : start + STAGE_CHUNK] for part in pair))
        )
        if start == 0:
            commands.append(("EXPIRE", key, STAGE_TTL))
    return tuple(commands)


class Miss(enum.Enum):
    """What a cache lookup answers when it has no current copy: the read goes to Redis."""

    MISS = 0


MISS = Miss.MISS


class Unchanged:
    """The answer of ``get_unless`` when the document is still at the version asked about."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _pairs(flat: list[Any], name: str) -> dict[str, bytes]:
    try:
        return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
    except UnicodeDecodeError:
        raise InvalidDocument(f"document {name!r} has a field name that is not UTF-8") from None


def _check_expected(expected: object) -> str:
    if expected is None:
        return ""
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidDocument(f"expected_version must be None or an int >= 0, not {expected!r}")
    return str(expected)


def _entries(raw: Any) -> list[tuple[Any, dict[bytes, bytes]]]:
    """Entries of an XREAD answer: a list of [stream, entries] (RESP2 shape) or a dict."""
    if not raw:
        return []
    streams = raw.values() if isinstance(raw, dict) else (entries for _stream, entries in raw)
    return [entry for entries in streams for entry in entries]


def change_from_entry(entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> Change:
    """Build a Change from a feed entry written by feed.lua (see its header)."""
    name = _text(fields[b"n"])
    op = _text(fields[b"o"])
    omitted = fields.get(b"x") == b"1"
    blob, gone = fields.get(b"f", b""), fields.get(b"r", b"")
    where = f"change of {name!r}"
    removed: tuple[str, ...] = tuple(codec.decode_value(gone, where)) if gone else ()
    payload: Any = None
    if omitted or op == "delete":
        pass
    elif op == "delete_field":
        payload = {}
        if not gone and blob:  # written before removed names had their own field
            removed = tuple(codec.decode_value(blob, where))
    else:
        payload = codec.decode_value(blob, where)
    return Change(
        _text(entry_id), name, int(fields[b"v"]), op, payload, _text(fields[b"w"]), float(fields[b"t"]),
        removed, omitted,
    )  # fmt: skip


def _flat(raw: Any) -> dict[bytes, bytes]:
    if isinstance(raw, dict):
        return raw
    return {raw[i]: raw[i + 1] for i in range(0, len(raw), 2)}


def _info(name: str, raw: list[Any]) -> DocumentInfo | None:
    if not raw:
        return None
    version, updated_at, writer, kind, size, _payload = raw
    return DocumentInfo(name, int(version), float(updated_at), _text(writer), _text(kind), int(size))


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class Core:
    """Validation, commands and parsing for one namespace; no I/O."""

    def __init__(
        self,
        namespace: str,
        client_name: str | None,
        *,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        stale_reads: bool = True,
        stale_cache_size: int = DEFAULT_STALE_CACHE_SIZE,
        feed_maxlen: int = DEFAULT_FEED_MAXLEN,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        history_ttl: int = DEFAULT_HISTORY_TTL,
        payload_limit: int = DEFAULT_PAYLOAD_LIMIT,
        history_budget: int = DEFAULT_HISTORY_BUDGET,
        cache: bool = True,
        cache_documents: int = DEFAULT_CACHE_DOCUMENTS,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.keys = Keys(validate_namespace(namespace))
        self.namespace = namespace
        self.writer = client_name or "sharedstate"
        self.max_document_bytes = max_document_bytes
        self.feed_maxlen = feed_maxlen
        self.history_limit = history_limit
        self.history_ttl = history_ttl
        self.payload_limit = payload_limit
        self.history_budget = history_budget
        self.cache = LastKnown(stale_cache_size if stale_reads else 0)
        self.fresh = ClientCache(namespace, cache_documents, cache_bytes) if cache else None
        self.last_feed_id = "0-0"  # feed id of this store's latest write: a lower bound for watch()
        self._last_stale_warning = 0.0
        # write.lua's arguments that are the same on every call, encoded once (redis-py would
        # encode each of them on every write)
        keys = self.keys
        self._write_keys = tuple(key.encode() for key in (keys.names, keys.feed, keys.tombstones, keys.floor))
        self._feed_bytes_key = keys.feed_bytes.encode()
        self._write_limits = tuple(
            b"%d" % limit for limit in (max_document_bytes, feed_maxlen, history_limit, history_ttl)
        )
        self._write_budget = (b"%d" % payload_limit, b"%d" % history_budget)

    # -- reads ---------------------------------------------------------------------------

    def _read(self, name: str, what: str, *args: str) -> tuple[Any, ...]:
        return ("EVALSHA", READ.sha, 2, self.keys.data(name), self.keys.meta(name), what, *args)

    # The client cache: current copies, answered without a round trip.

    def _current(self, name: str) -> Entry | None:
        return self.fresh.lookup(name) if self.fresh is not None else None

    def cached(self, name: str) -> Document | Miss | None:
        """The current copy of ``name`` (None: known absent), or MISS."""
        entry = self._current(name)
        if entry is None:
            return MISS
        if entry.fields is None:
            return None
        data = codec.unpack_document(entry.data_blob(), name)
        return Document(name, data, entry.version, entry.updated_at, entry.updated_by)

    def cached_field(self, name: str, field: str) -> tuple[bool, Any] | Miss:
        """(found, value) of one field from the current copy, or MISS."""
        entry = self._current(name)
        if entry is None or not isinstance(field, str):
            return MISS
        if entry.fields is None:
            return False, None
        if entry.kind != KIND_OBJECT:
            raise self._not_object(name)
        raw = entry.fields.get(field)
        if raw is None:
            return False, None
        return True, codec.decode_value(raw, f"document {name!r} field {field!r}")

    def cached_keys(self, name: str) -> list[str] | Miss:
        """The top-level field names from the current copy ([] if absent), or MISS."""
        entry = self._current(name)
        if entry is None:
            return MISS
        if entry.fields is None:
            return []
        if entry.kind != KIND_OBJECT:
            raise self._not_object(name)
        return list(entry.fields)

    def cached_version(self, name: str) -> int | None:
        """The version of ``name`` the cache holds a current copy of (0: known absent), or None."""
        entry = self._current(name)
        return None if entry is None else entry.version

    def _ticket(self) -> int | None:
        return self.fresh.ticket() if self.fresh is not None else None

    def _admit(self, name: str, ticket: int | None, known: Known) -> None:
        if ticket is None or self.fresh is None:
            return
        if known.version == 0:
            entry = Entry(0, 0.0, "", "", None, 0)
        else:
            size = sum(len(field) + len(raw) for field, raw in known.fields.items())
            fields = dict(known.fields)  # own-write updates change the stale copy's in place
            entry = Entry(known.version, known.updated_at, known.updated_by, known.kind, fields, size)
        self.fresh.admit(name, ticket, entry)

    def forget(self, call: Call[Any]) -> None:
        """After a write call (answered or not): no cached copy of its document counts, in any
        store of this process."""
        if call.invalidates is not None:
            forget(self.namespace, call.invalidates)

    def get(self, name: str, *, stale: bool = True) -> Call[Document | None]:
        """Read a whole document (None if absent); with ``stale`` from the last copy if need be."""
        validate_name(name)
        ticket = self._ticket()
        return Call(
            self._read(name, "doc"),
            lambda raw: self._parse_document(name, raw, ticket),
            f"read document {name!r}",
            READ,
            (lambda exc: self._stale_document(name, exc)) if stale else None,
        )

    def get_unless(self, name: str, version: int) -> Call[Document | Unchanged | None]:
        """Read a document unless it is still at ``version`` (then UNCHANGED): one round trip,
        and no data sent or decoded when a cached copy of that version is current."""
        validate_name(name)
        ticket = self._ticket()

        def parse(raw: list[Any]) -> Document | Unchanged | None:
            if raw and raw[5] == 1:
                known = self.cache.get(name)
                if known is not None and known.version == version:
                    self._admit(name, ticket, known)
                return UNCHANGED
            return self._parse_document(name, raw, ticket)

        return Call(self._read(name, "docif", str(version)), parse, f"read document {name!r}", READ)

    def _parse_document(self, name: str, raw: list[Any], ticket: int | None = None) -> Document | None:
        if not raw:
            known = Known(0)
            self.cache.remember(name, known)
            self._admit(name, ticket, known)
            return None
        version, updated_at, writer, kind, _size, flat = raw
        known = Known(int(version), float(updated_at), _text(writer), _text(kind), _pairs(flat, name))
        data = codec.decode_document(known.kind, known.fields, name)
        self._admit(name, ticket, known)
        self.cache.remember(name, known)
        return Document(name, data, known.version, known.updated_at, known.updated_by)

    def _stale_document(self, name: str, exc: StoreUnavailable) -> Document | None:
        known = self.cache.get(name)
        if known is None:
            raise exc
        now = time.monotonic()
        if now - self._last_stale_warning >= STALE_WARNING_EVERY:
            self._last_stale_warning = now
            log.warning("%s; serving the last known copy of %r (version %d)", exc, name, known.version)
        if known.version == 0:
            return None
        data = codec.decode_document(known.kind, known.fields, name)
        return Document(name, data, known.version, known.updated_at, known.updated_by, stale=True)

    def info_batches(self, names: list[str]) -> Iterator[list[Call[DocumentInfo | None]]]:
        """``info`` of ``names`` in pipelines of INFO_BATCH: no one call holds Redis or outlasts
        the timeout, however many documents there are."""
        for start in range(0, len(names), INFO_BATCH):
            yield [self.info(name) for name in names[start : start + INFO_BATCH]]

    def info(self, name: str) -> Call[DocumentInfo | None]:
        """A document's version, time, writer, kind and encoded size, without its data."""
        validate_name(name)
        return Call(self._read(name, "meta"), lambda raw: _info(name, raw), f"read document {name!r}", READ)

    def get_field(self, name: str, field: str) -> Call[tuple[bool, Any]]:
        """Read one top-level field: (found, value)."""
        validate_name(name)
        self._check_field(field)
        return Call(
            self._read(name, "field", field),
            lambda raw: self._parse_field(name, field, raw),
            f"read document {name!r}",
            READ,
            lambda exc: self._stale_field(name, field, exc),
        )

    def _parse_field(self, name: str, field: str, raw: list[Any]) -> tuple[bool, Any]:
        payload = self._object_payload(name, raw)
        if not payload:
            return False, None
        return True, codec.decode_value(payload[0], f"document {name!r} field {field!r}")

    def _stale_field(self, name: str, field: str, exc: StoreUnavailable) -> tuple[bool, Any]:
        doc = self._stale_document(name, exc)
        if doc is None:
            return False, None
        if not isinstance(doc.data, dict):
            raise self._not_object(name)
        return (field in doc.data), doc.data.get(field)

    def field_count(self, name: str) -> Call[int]:
        """Number of top-level fields (0 for an absent document)."""
        validate_name(name)
        return Call(
            self._read(name, "len"),
            lambda raw: int(self._object_payload(name, raw)[0]) if raw else 0,
            f"read document {name!r}",
            READ,
        )

    def field_names(self, name: str) -> Call[list[str]]:
        """Top-level field names ([] for an absent document)."""
        validate_name(name)
        return Call(
            self._read(name, "keys"),
            lambda raw: [_text(key) for key in self._object_payload(name, raw)] if raw else [],
            f"read document {name!r}",
            READ,
        )

    def _object_payload(self, name: str, raw: list[Any]) -> list[Any]:
        if not raw:
            return []
        payload = raw[5]
        if not isinstance(payload, list):
            raise self._not_object(name)
        return payload

    @staticmethod
    def _not_object(name: str) -> NotAnObject:
        return NotAnObject(
            f"document {name!r} is a plain JSON value, not an object: field operations need an "
            "object document (use put to replace it)"
        )

    @staticmethod
    def _check_field(field: object) -> None:
        if not isinstance(field, str):
            raise InvalidDocument(f"field names are strings, not {type(field).__name__} ({field!r})")

    def names(self) -> Call[list[str]]:
        """The sorted document names."""
        return Call(
            ("SMEMBERS", self.keys.names),
            lambda raw: sorted(_text(name) for name in raw),
            "list documents",
        )

    def history(self, name: str, limit: int) -> Call[list[Change]]:
        """A document's last changes, newest first."""
        validate_name(name)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidDocument(f"limit must be an int >= 1, not {limit!r}")
        return Call(
            ("EVALSHA", HISTORY.sha, 2, self.keys.history(name), self.keys.feed, limit),
            lambda raw: [change_from_entry(entry_id, _flat(fields)) for entry_id, fields in raw or []],
            f"read the history of {name!r}",
            HISTORY,
        )

    # -- writes --------------------------------------------------------------------------

    def _write(
        self,
        op: str,
        name: str,
        expected: int | None,
        args: Iterable[str | bytes],
        parse: Callable[[Written], T],
        kind: str = "",
        writer: str | None = None,
        dedup: bool = True,
        remove: Iterable[str] = (),
        staged: list[tuple[str, bytes]] | None = None,
    ) -> Call[T]:
        keys = self.keys
        removing = list(remove)
        write_id = secrets.token_hex(8)
        before: tuple[tuple[Any, ...], ...] = ()
        stage: tuple[str, ...] = ()
        if staged is not None:
            stage = (keys.put_stage(write_id),)
            before = _stage_commands(stage[0], staged)
        names, feed, tombstones, floor = self._write_keys
        command = (
            "EVALSHA",
            WRITE.sha,
            b"%d" % (9 + len(stage)),
            keys.data(name),
            keys.meta(name),
            names,
            feed,
            keys.history(name),
            tombstones,
            floor,
            keys.write_id(write_id),
            self._feed_bytes_key,
            *stage,
            op,
            _check_expected(expected),
            name,
            writer or self.writer,
            kind,
            *self._write_limits,
            WRITE_ID_TTL if dedup else b"0",
            *self._write_budget,
            b"%d" % len(removing),
            *removing,
            *args,
        )
        return Call(
            command,
            lambda raw: parse(self._parse_written(name, expected, raw)),
            f"write document {name!r}",
            WRITE,
            writes=True,
            before=before,
            invalidates=name,
        )

    def _parse_written(self, name: str, expected: int | None, raw: list[Any]) -> Written:
        status = _text(raw[0])
        if status in ("ok", "dup"):
            previous = int(raw[4]) if raw[4] else None
            written = Written(int(raw[1]), float(raw[2]), _text(raw[3]), previous)
            if _id_key(written.feed_id) > _id_key(self.last_feed_id):
                self.last_feed_id = written.feed_id
            return written
        value = int(raw[1])
        if status == "noop":
            return Written(value, 0.0, "", value, applied=False)
        if status == "conflict":
            assert expected is not None
            raise VersionConflict(name, expected, value)
        if status == "notobject":
            raise self._not_object(name)
        if status == "toolarge":
            raise self._too_large(name, value)
        if status == "stagelost":
            raise SharedStateError(
                f"the fields of {name!r}, sent ahead of its write, were gone from Redis when it came "
                "(evicted or lost): nothing was written; write it again"
            )
        raise InvalidDocument(f"unexpected answer {status!r} from the write script")

    def _too_large(self, name: str, size: int) -> InvalidDocument:
        return InvalidDocument(
            f"document {name!r} would be {size} bytes encoded, over the limit of "
            f"{self.max_document_bytes} bytes; nothing was written"
        )

    def _encode_whole(self, name: str, data: Any) -> codec.EncodedDocument:
        validate_name(name)
        encoded = codec.encode_document(data, name)
        if encoded.size > self.max_document_bytes:
            raise self._too_large(name, encoded.size)
        return encoded

    def put(
        self,
        name: str,
        data: Any,
        expected: int | None,
        op: str = "put",
        writer: str | None = None,
        stage: bool = True,
    ) -> Call[Written]:
        """Replace a document (``op="restore"`` when a snapshot puts it back: a bulk write whose
        re-send is harmless, so it keeps no write id). ``stage``: a very wide object may go to
        Redis in chunks first (not inside a transaction: put_all)."""
        encoded = self._encode_whole(name, data)
        if stage and op == "put" and encoded.kind == KIND_OBJECT and len(encoded.fields) > STAGE_FIELDS:
            staged: list[tuple[str, bytes]] | None = encoded.fields
            args: list[Any] = [str(encoded.size)]
            op = "staged"
        else:
            staged = None
            args = [part for pair in encoded.fields for part in pair]

        def done(written: Written) -> Written:
            known = Known(
                written.version, written.time, writer or self.writer, encoded.kind, dict(encoded.fields)
            )
            self.cache.remember(name, known)
            return written

        return self._write(
            op, name, expected, args, done, encoded.kind, writer, op != "restore", staged=staged
        )

    def put_all(self, documents: Mapping[str, Any]) -> list[Call[Written]]:
        """The puts of every document, all checked first: InvalidDocument names every problem."""
        calls, problems = [], []
        for name, data in documents.items():
            try:
                calls.append(self.put(name, data, None, stage=False))
            except InvalidDocument as exc:
                problems.append(str(exc))
        if problems:
            raise InvalidDocument("; ".join(problems))
        return calls

    def updated(self, name: str, data: Any, expected: int) -> Call[Document]:
        """The put of update(): answers the new Document."""
        call = self.put(name, data, expected)
        parse = call.parse
        return call.reparsed(lambda raw: self._as_document(name, data, parse(raw)))

    def _as_document(self, name: str, data: Any, written: Written) -> Document:
        return Document(name, data, written.version, written.time, self.writer)

    def merge(
        self, name: str, fields: Mapping[str, Any], expected: int | None, op: str = "merge"
    ) -> Call[int]:
        """Set some top-level fields of an object document in one step."""
        call = self.patch(name, fields, (), expected, op)
        parse = call.parse
        return call.reparsed(lambda raw: parse(raw).version)

    def patch(
        self,
        name: str,
        fields: Mapping[str, Any],
        remove: Iterable[str],
        expected: int | None,
        op: str = "merge",
        trusted: bool = False,
    ) -> Call[Written]:
        """Set some top-level fields and remove others in one step (a merge that also removes).

        ``trusted``: the values are known to be valid (normalised by the drop-in), so encoding
        skips the checking walk."""
        validate_name(name)
        if not isinstance(fields, Mapping):
            raise InvalidDocument(f"merge takes a mapping of top-level fields, not {type(fields).__name__}")
        removing = tuple(remove)
        for field in removing:
            self._check_field(field)
        encode = codec.encode_trusted_fields if trusted else codec.encode_fields
        encoded = encode(fields.items(), name)
        if encoded.size > self.max_document_bytes:
            raise self._too_large(name, encoded.size)
        args = [part for pair in encoded.fields for part in pair]

        def done(written: Written) -> Written:
            known = Known(written.version, written.time, self.writer, KIND_OBJECT)
            self.cache.apply(name, written.previous, known, encoded.fields, removing)
            return written

        return self._write(op, name, expected, args, done, remove=removing)

    def set_field(self, name: str, field: str, value: Any, expected: int | None) -> Call[int]:
        """Set one top-level field."""
        self._check_field(field)
        return self.merge(name, {field: value}, expected, op="set_field")

    def delete_field(self, name: str, field: str, expected: int | None) -> Call[Written]:
        """Remove one top-level field; ``applied`` is False when it was not there."""
        validate_name(name)
        self._check_field(field)

        def done(written: Written) -> Written:
            if written.applied:
                known = Known(written.version, written.time, self.writer, KIND_OBJECT)
                self.cache.apply(name, written.previous, known, [], (field,))
            return written

        return self._write("delete_field", name, expected, [field], done)

    def delete(self, name: str, expected: int | None, writer: str | None = None) -> Call[bool]:
        """Delete a document; True if it existed."""
        validate_name(name)

        def done(written: Written) -> bool:
            if written.applied:
                self.cache.remember(name, Known(0))
            return written.applied

        return self._write("delete", name, expected, [], done, writer=writer)

    # -- update ----------------------------------------------------------------------------

    @staticmethod
    def apply_update(fn: Callable[[Any], Any], current: Document | None) -> tuple[Any, int]:
        """Run update()'s function: (new data, version to expect). ``{}`` stands for absent."""
        data = current.data if current is not None else {}
        result = fn(data)
        return (data if result is None else result), (current.version if current is not None else 0)

    @staticmethod
    def backoff(attempt: int) -> float:
        """Full-jitter pause before update() attempt ``attempt`` (1-based)."""
        return random.uniform(0, min(0.1, 0.002 * 2 ** min(attempt, 10)))

    # -- watch -----------------------------------------------------------------------------

    def watch(
        self, names: Iterable[str] | None, timeout: float | None, after: str | None, block: float
    ) -> WatchState:
        """State of one watch() iteration."""
        return WatchState(self, names, timeout, after, block)


class WatchState:
    """Where a watcher is in the feed, what it wants, and when it stops."""

    def __init__(
        self,
        core: Core,
        names: Iterable[str] | None,
        timeout: float | None,
        after: str | None,
        block: float,
    ) -> None:
        if isinstance(names, str):
            names = [names]
        self.names = frozenset(validate_name(name) for name in names) if names is not None else None
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout < 0
        ):
            raise InvalidDocument(f"timeout must be None or a finite number of seconds >= 0, not {timeout!r}")
        if after is not None and (
            not isinstance(after, str)
            or not STREAM_ID.fullmatch(after)
            or any(int(part) >= 2**64 for part in after.split("-"))
        ):
            raise InvalidDocument(f"after must be a feed position such as '1712345678901-0', not {after!r}")
        self.feed = core.keys.feed
        self.timeout = timeout
        self.after = after
        self.position: str | None = after
        self.seen = after  # the newest feed id known to have been in the feed (see _take)
        self.block = block
        self.called_at_ms = int(time.time() * 1000)
        self.own_last_write = core.last_feed_id
        self.idle_since = time.monotonic()
        self.has_read = False

    def start(self, lazy: bool) -> Call[None] | None:
        """The call that fixes the starting position (None when there is nothing to ask).

        ``lazy`` is True when it runs at the first iteration rather than at the call (asyncio):
        changes stamped after the call time are then included too.
        """
        if self.after is not None:
            if _id_key(self.after) == (0, 0):
                return None
            return Call(
                ("XRANGE", self.feed, "-", "+", "COUNT", 1), self._check_trimmed, "read the change feed"
            )
        return Call(
            ("XREVRANGE", self.feed, "+", "-", "COUNT", 1),
            lambda raw: self._set_start(raw, lazy),
            "read the change feed",
        )

    def _set_start(self, raw: list[Any], lazy: bool) -> None:
        last = self.seen = _text(raw[0][0]) if raw else "0-0"
        if lazy and _id_key(last) >= (self.called_at_ms, 0):
            # Entries stamped from the call's millisecond on may have come after the call; this
            # store's own writes before the call certainly did not.
            last = max(f"{self.called_at_ms - 1}-{2**64 - 1}", self.own_last_write, key=_id_key)
        self.position = last

    def _check_trimmed(self, raw: list[Any]) -> None:
        # The feed is trimmed from its oldest end: if its oldest entry is not after `after`,
        # every later entry is still there. Otherwise changes may be gone (or Redis lost them).
        assert self.after is not None
        if not raw:  # trimming keeps the newest entry: an empty feed was lost (Redis lost data)
            raise FeedTrimmed(self.after, "")
        if _id_key(_text(raw[0][0])) > _id_key(self.after):
            raise FeedTrimmed(self.after, _text(raw[0][0]))

    def read(self) -> Call[list[Change]] | None:
        """The next XREAD, or None once ``timeout`` seconds passed without a change."""
        block: tuple[Any, ...] = ("BLOCK", max(1, int(self.block * 1000)))
        if self.timeout is not None:
            left = self.timeout - (time.monotonic() - self.idle_since)
            if left <= 0:
                if self.has_read:
                    return None
                # The timeout ran out before the first iteration (a slow caller): still look
                # once, without waiting, so changes already made are not missed.
                block = ()
            else:
                block = ("BLOCK", max(1, int(min(self.block, left) * 1000)))
        self.has_read = True
        before = self.position
        return Call(
            ("XREAD", "COUNT", WATCH_BATCH, *block, "STREAMS", self.feed, before),
            lambda raw: self._take(raw, before),
            "read the change feed",
            alone=True,
            then=("XRANGE", self.feed, "-", "+", "COUNT", 1),
        )

    def _take(self, raw: list[Any], before: str | None) -> list[Change]:
        """The changes of an XREAD from ``before``; FeedTrimmed if the feed lost what follows it.

        The oldest entry, read right behind the XREAD, tells: the feed is trimmed from its
        oldest end and never loses its newest entry, so while it is the feed this watch has
        been reading, its oldest entry is at most the newest one seen. One newer than that
        (or an empty feed) means the changes after ``before`` were trimmed away, or Redis
        lost the feed and it started again, also when redis-py re-sent the read to a Redis
        that restarted empty without the connection error reaching the watch."""
        entries, oldest = raw
        if before is not None and before != "0-0":
            first = _text(oldest[0][0]) if oldest else ""
            if not first or _id_key(first) > max(_id_key(before), _id_key(self.seen or before)):
                raise FeedTrimmed(before, first)
        changes = []
        for entry_id, fields in _entries(entries):
            self.position = self.seen = _text(entry_id)
            if self.names is None or _text(fields[b"n"]) in self.names:
                changes.append(change_from_entry(entry_id, fields))
        if changes:
            self.idle_since = time.monotonic()
        return changes
