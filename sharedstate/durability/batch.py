"""Many documents per Redis call, for snapshots and restores.

With one script call per document, a snapshot or restore of 100k documents spends most of
its time on per-call overhead: a script invocation in Redis, a command packed and an answer
parsed in redis-py. These build one call per batch instead (``dump.lua``, ``restore.lua``);
each document is still read, or written, as one atomic step, exactly as ``read.lua`` and
``write.lua`` (op ``restore``) would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sharedstate import codec
from sharedstate._core import Call, Core
from sharedstate._scripts import DUMP, RESTORE, VERSIONS
from sharedstate.durability.format import Record
from sharedstate.errors import InvalidDocument, SharedStateError
from sharedstate.models import Written

MAX_DOCUMENTS = 1000  # per call: restore.lua unpacks the batch's names in one go
DOCUMENTS = 200  # documents per call, and
BYTES = 1 << 20  # about this many encoded bytes, and
FIELDS = 50_000  # this many fields at most: Redis runs each call as one atomic step
STAGE_TTL = 3600  # seconds a staging hash outlives a restore that died before swapping it in


def _batch(names: Sequence[object]) -> None:
    if len(names) > MAX_DOCUMENTS:
        raise ValueError(f"at most {MAX_DOCUMENTS} documents per call, not {len(names)}")


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A document whose stored bytes do not decode: a backup skips it and names it."""

    name: str
    reason: str


def dump(core: Core, names: Sequence[str]) -> Call[list[Record | Unreadable | None]]:
    """Read ``names`` with version, time and writer, each from one instant (None: gone;
    Unreadable: its bytes do not decode)."""
    _batch(names)
    keys = core.keys
    command: list[Any] = ["EVALSHA", DUMP.sha, 2 * len(names)]
    for name in names:
        command += (keys.data(name), keys.meta(name))

    def parse(raw: list[Any]) -> list[Record | Unreadable | None]:
        records: list[Record | Unreadable | None] = []
        for name, entry in zip(names, raw, strict=True):
            if not entry:
                records.append(None)
                continue
            version, at, writer, kind, flat, size = entry
            if not flat and int(size) > 0:  # Redis lost the data under its meta (eviction)
                records.append(Unreadable(name, f"its data is gone (its meta says {int(size)} bytes)"))
                continue
            try:
                data = codec.decode_flat(kind.decode(), flat, name)
            except InvalidDocument as exc:
                records.append(Unreadable(name, str(exc)))
                continue
            records.append(Record(name, int(version), float(at), writer.decode("utf-8", "replace"), data))
        return records

    return Call(tuple(command), parse, "read documents", DUMP)


@dataclass(frozen=True, slots=True)
class Restored:
    """What restore.lua did with one document: ``status`` 'w' written, 'k' kept (Redis had the
    backup's version or a newer one), 'g' gone (deleted after the backup), 'x' deleted, 'n'
    nothing to delete; ``written`` the version and feed entry it wrote, when it wrote."""

    name: str
    status: str
    written: Written | None


class LeaseLost(SharedStateError):
    """The restore's lease expired or was taken (it was paused past it): it wrote nothing more."""


def deleted_versions(store: Any, names: Sequence[str]) -> dict[str, int]:
    """Of ``names``, those with a tombstone (deleted on purpose): name -> version of the delete."""
    found: dict[str, int] = {}
    for start in range(0, len(names), MAX_DOCUMENTS):
        chunk = list(names[start : start + MAX_DOCUMENTS])
        for name, (_, tomb) in zip(chunk, store._run(versions(store._core, chunk)), strict=True):
            if tomb:
                found[name] = tomb
    return found


def versions(core: Core, names: Sequence[str]) -> Call[list[tuple[int, int]]]:
    """For each of ``names``: (version in Redis, version of its delete), 0 for none."""
    _batch(names)
    keys = core.keys
    command = ("EVALSHA", VERSIONS.sha, 1 + len(names), keys.tombstones, *map(keys.meta, names), *names)
    count = len(names)

    def parse(raw: list[Any]) -> list[tuple[int, int]]:
        numbers = [int(value) if value else 0 for value in raw]
        return list(zip(numbers[:count], numbers[count:], strict=True))

    return Call(command, parse, "read document versions", VERSIONS)


@dataclass(frozen=True, slots=True)
class Target:
    """How restore calls write: ``fill`` (only where Redis has nothing or older) or force, and
    the value of the lease the restore holds."""

    fill: bool
    lease: str
    writer: str


def restore_calls(
    core: Core,
    records: Iterable[Record],
    target: Target,
    deletes: Sequence[str] = (),
    documents: int = DOCUMENTS,
    size: int = BYTES,
    fields: int = FIELDS,
) -> Iterator[tuple[list[str], Call[list[Restored]]]]:
    """The calls that restore ``records`` (and delete ``deletes``), each of at most
    ``documents`` documents and, past the first, about ``size`` encoded bytes and ``fields``
    fields; with the names each call decides about ([] for a call that only stages).

    A document with more than ``fields`` fields is first written to its staging hash in calls of
    ``fields`` fields, then swapped in by its restore call: no call runs long enough to stall
    Redis or pass a client's timeout. The documents come from a backup, so they are written
    whatever their size: the store accepted them once, and a restore must not stop half-way
    over a lowered limit.
    """
    pending: list[_Entry] = []
    total = 0
    count = 0
    for record in records:
        document = codec.encode_parsed(record.data, record.name)
        staged = len(document.fields) > fields
        if staged:
            yield from _flush(core, pending, target)
            pending, total, count = [], 0, 0
            yield from _stage(core, record.name, document, fields)
        pending.append(_Entry(record.name, record.version, document, staged))
        total += document.size
        count += 0 if staged else len(document.fields)
        if len(pending) >= documents or total >= size or count >= fields or staged:
            yield from _flush(core, pending, target)
            pending, total, count = [], 0, 0
    yield from _flush(core, pending, target)
    for start in range(0, len(deletes), documents):
        chunk = [_Entry(name, 0, None, False) for name in deletes[start : start + documents]]
        yield from _flush(core, chunk, target)


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    version: int
    document: codec.EncodedDocument | None  # None: delete
    staged: bool


def _stage(
    core: Core, name: str, document: codec.EncodedDocument, fields: int
) -> Iterator[tuple[list[str], Call[list[Restored]]]]:
    key = core.keys.stage(name)
    yield [], Call(("DEL", key), _ignore, f"stage document {name!r}", writes=True)
    for start in range(0, len(document.fields), fields):
        args = [part for pair in document.fields[start : start + fields] for part in pair]
        yield [], Call(("HSET", key, *args), _ignore, f"stage document {name!r}", writes=True)
    yield [], Call(("EXPIRE", key, STAGE_TTL), _ignore, f"stage document {name!r}", writes=True)


def _ignore(raw: Any) -> list[Restored]:
    return []


def _flush(
    core: Core, entries: Sequence[_Entry], target: Target
) -> Iterator[tuple[list[str], Call[list[Restored]]]]:
    if entries:
        yield [entry.name for entry in entries], _restore(core, entries, target)


def _restore(core: Core, entries: Sequence[_Entry], target: Target) -> Call[list[Restored]]:
    _batch(entries)
    keys = core.keys
    key_list: list[str] = [
        keys.names, keys.feed, keys.tombstones, keys.floor, keys.feed_bytes, keys.restore_lock,
    ]  # fmt: skip
    args: list[Any] = [
        target.writer, core.feed_maxlen, core.history_limit, core.payload_limit, core.history_budget,
        core.history_ttl, "fill" if target.fill else "force", target.lease,
    ]  # fmt: skip
    for entry in entries:
        name = entry.name
        key_list += (keys.data(name), keys.meta(name), keys.history(name), keys.stage(name))
        document = entry.document
        if document is None:
            args += (name, 0, "x", 0, b"", "", 0)
            continue
        staged = entry.staged
        args += (name, entry.version, document.kind, document.size, b"" if staged else document.blob)
        args += ("1" if staged else "", 0 if staged else len(document.fields))
        if not staged:
            for pair in document.fields:
                args += pair
    names = [entry.name for entry in entries]

    def parse(raw: list[Any]) -> list[Restored]:
        if raw and raw[0] == b"lease":
            raise LeaseLost(
                f"the restore of namespace {keys.namespace!r} lost its lock (it was paused or ran past the "
                "lock's lifetime); it stopped without writing more"
            )
        if len(raw) != 1 + 4 * len(names):
            raise InvalidDocument(f"unexpected answer from the restore script ({len(raw)} items)")
        at = float(raw[0])
        results = []
        for name, i in zip(names, range(1, len(raw), 4), strict=True):
            status = raw[i].decode()
            written = None
            if status in ("w", "x"):
                written = Written(int(raw[i + 1]), at, raw[i + 2].decode(), int(raw[i + 3]))
            results.append(Restored(name, status, written))
        return results

    command = ("EVALSHA", RESTORE.sha, len(key_list), *key_list, *args)
    return Call(command, parse, "restore documents", RESTORE, writes=True)
