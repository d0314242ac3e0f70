"""Many documents per Redis call, for snapshots and restores.

With one script call per document, a snapshot or restore of 100k documents spends most of
its time on per-call overhead: a script invocation in Redis, a command packed and an answer
parsed in redis-py. These build one call per batch instead (``dump.lua``, ``restore.lua``);
each document is still read, or written, as one atomic step, exactly as ``read.lua`` and
``write.lua`` (op ``restore``) would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sharedstate import codec
from sharedstate._core import Call, Core
from sharedstate._scripts import DUMP, RESTORE
from sharedstate.durability.format import Record
from sharedstate.errors import InvalidDocument
from sharedstate.models import Written

MAX_DOCUMENTS = 1000  # per call: restore.lua unpacks the batch's names in one go
DOCUMENTS = 200  # documents per call, and
BYTES = 1 << 20  # about this many encoded bytes at most: Redis runs each call as one atomic step


def _batch(names: Sequence[object]) -> None:
    if len(names) > MAX_DOCUMENTS:
        raise ValueError(f"at most {MAX_DOCUMENTS} documents per call, not {len(names)}")


def dump(core: Core, names: Sequence[str]) -> Call[list[Record | None]]:
    """Read ``names`` with version, time and writer, each from one instant (None: gone)."""
    _batch(names)
    keys = core.keys
    command: list[Any] = ["EVALSHA", DUMP.sha, 2 * len(names)]
    for name in names:
        command += (keys.data(name), keys.meta(name))

    def parse(raw: list[Any]) -> list[Record | None]:
        records: list[Record | None] = []
        for name, entry in zip(names, raw, strict=True):
            if not entry:
                records.append(None)
                continue
            version, at, writer, kind, flat = entry
            data = codec.decode_flat(kind.decode(), flat, name)
            records.append(Record(name, int(version), float(at), writer.decode("utf-8", "replace"), data))
        return records

    return Call(tuple(command), parse, "read documents", DUMP)


def restore(core: Core, records: Sequence[Record], writer: str) -> Call[list[Written]]:
    """Write ``records`` back as op ``restore``: each replaces its document, gets a version above
    the floor (and above its tombstone or current version), and one feed and history entry.

    The documents come from a snapshot, so they are written whatever their size: the store
    had accepted them once, and a restore must not stop half-way over a lowered limit.
    """
    return _restore(
        [(record.name, codec.encode_parsed(record.data, record.name)) for record in records], core, writer
    )


def restore_calls(
    core: Core, records: Iterable[Record], writer: str, documents: int = DOCUMENTS, size: int = BYTES
) -> Iterator[tuple[list[str], Call[list[Written]]]]:
    """``restore`` calls for ``records``, each of at most ``documents`` documents and, past the
    first document, about ``size`` encoded bytes; with the names each call writes."""
    encoded: list[tuple[str, codec.EncodedDocument]] = []
    total = 0
    for record in records:
        document = codec.encode_parsed(record.data, record.name)
        encoded.append((record.name, document))
        total += document.size
        if len(encoded) >= documents or total >= size:
            yield [name for name, _ in encoded], _restore(encoded, core, writer)
            encoded, total = [], 0
    if encoded:
        yield [name for name, _ in encoded], _restore(encoded, core, writer)


def _restore(
    encoded: Sequence[tuple[str, codec.EncodedDocument]], core: Core, writer: str
) -> Call[list[Written]]:
    _batch(encoded)
    keys = core.keys
    key_list: list[str] = [keys.names, keys.feed, keys.tombstones, keys.floor, keys.feed_bytes]
    args: list[Any] = [writer, core.feed_maxlen, core.history_limit, core.payload_limit, core.history_budget]
    for name, document in encoded:
        key_list += (keys.data(name), keys.meta(name), keys.history(name))
        args += (name, document.kind, document.size, document.blob, len(document.fields))
        for pair in document.fields:
            args += pair
    count = len(encoded)

    def parse(raw: list[Any]) -> list[Written]:
        if len(raw) != 1 + 3 * count:
            raise InvalidDocument(f"unexpected answer from the restore script ({len(raw)} items)")
        at = float(raw[0])
        return [
            Written(int(raw[i]), at, raw[i + 1].decode(), int(raw[i + 2]))  # previous 0: absent
            for i in range(1, len(raw), 3)
        ]

    command = ("EVALSHA", RESTORE.sha, len(key_list), *key_list, *args)
    return Call(command, parse, "restore documents", RESTORE)
