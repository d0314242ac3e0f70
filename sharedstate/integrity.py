"""Integrity check of a namespace: finds problems; ``relist`` repairs the one that needs no backup.

Checks that the names set and the meta/data keys agree, that every document decodes, that
its recorded size matches its data, and that a plain-value document holds exactly its value.
Each problem has a ``code``: ``unlisted`` (meta but no names entry: ``relist`` puts it back),
``missing`` (listed or with data, but no meta: the document is gone, a restore fills it in),
``data_lost`` (meta but its data is gone: only a backup has it), or ``damaged``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sharedstate import codec
from sharedstate._core import Call
from sharedstate._scripts import PRESENCE, READ, RELIST
from sharedstate.errors import InvalidDocument, translate_errors
from sharedstate.keys import KIND_OBJECT, KIND_VALUE, VALUE_FIELD
from sharedstate.store import SharedStore

BATCH = 200


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one document (or with the namespace, ``name`` None)."""

    name: str | None
    what: str
    code: str = "damaged"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "problem": self.what, "code": self.code}


def _scan_names(store: SharedStore, kind: str) -> set[str]:
    keys = store.keys
    prefix = f"{keys.base}{kind}:"
    with translate_errors("scan the namespace's keys"):
        found = store.redis.scan_iter(match=f"{prefix}*", count=1000)
        return {key.decode("utf-8", "replace")[len(prefix) :] for key in found}


def _raw_document(store: SharedStore, name: str) -> Call[list[Any]]:
    keys = store.keys
    return Call(
        ("EVALSHA", READ.sha, 2, keys.data(name), keys.meta(name), "doc"),
        lambda raw: list(raw),
        f"read document {name!r}",
        READ,
    )


def _check_document(name: str, raw: list[Any]) -> list[Problem]:
    _version, _time, _writer, kind, size, flat = raw
    kind = kind.decode()
    fields: dict[str, bytes] = {}
    problems: list[Problem] = []
    for i in range(0, len(flat), 2):
        try:
            fields[flat[i].decode("utf-8")] = flat[i + 1]
        except UnicodeDecodeError:
            problems.append(Problem(name, f"field name {flat[i]!r} is not UTF-8"))
    if kind not in (KIND_OBJECT, KIND_VALUE):
        return [*problems, Problem(name, f"unknown kind {kind!r} in meta")]
    if kind == KIND_VALUE and set(fields) != {VALUE_FIELD}:
        problems.append(Problem(name, f"a plain-value document with fields {sorted(fields)}"))
    actual = sum(len(field.encode()) + len(value) for field, value in fields.items())
    if kind == KIND_VALUE:
        actual = sum(len(value) for value in fields.values())
    if int(size) != actual:
        code = "data_lost" if actual == 0 else "damaged"
        problems.append(Problem(name, f"meta says {int(size)} bytes, the data holds {actual}", code))
    for field, value in fields.items():
        try:
            codec.decode_value(value, f"field {field!r}")
        except InvalidDocument as exc:
            problems.append(Problem(name, str(exc)))
    return problems


def _presence(store: SharedStore, names: list[str]) -> dict[str, tuple[bool, bool, bool]]:
    """Whether each name is listed, has meta and has data, each read at one instant."""
    keys = store.keys
    calls = []
    for start in range(0, len(names), BATCH):
        chunk = names[start : start + BATCH]
        documents = [key for name in chunk for key in (keys.meta(name), keys.data(name))]
        calls.append(
            Call(
                ("EVALSHA", PRESENCE.sha, 1 + len(documents), keys.names, *documents, *chunk),
                list,
                "check the namespace's keys",
                PRESENCE,
            )
        )
    flat = (
        [bool(n) for raw in store._run_many(calls, "check the namespace's keys") for n in raw]
        if calls
        else []
    )
    return {name: (flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]) for i, name in enumerate(names)}


def check(store: SharedStore) -> list[Problem]:
    """Every problem found in the store's namespace ([] when all is well)."""
    bulk = store.bulk()
    listed = set(bulk.names())
    with_meta = _scan_names(bulk, "m")
    with_data = _scan_names(bulk, "d")
    # The names set and the scans are read one after another: a write or delete in between
    # makes them disagree. Each disagreement is read again at one instant; only those that
    # still hold are problems (every write changes names, meta and data in one script).
    suspects = sorted((listed ^ with_meta) | (with_data - with_meta))
    now = _presence(bulk, suspects)
    problems = [
        Problem(name, "listed in the names set but has no meta", "missing")
        for name in suspects
        if now[name][0] and not now[name][1]
    ]
    problems += [
        Problem(name, "has meta but is not in the names set", "unlisted")
        for name in suspects
        if now[name][1] and not now[name][0]
    ]
    problems += [
        Problem(name, "has data but no meta", "missing")
        for name in suspects
        if now[name][2] and not now[name][1]
    ]
    with_meta = (with_meta - set(suspects)) | {name for name in suspects if now[name][1]}
    present = sorted(with_meta)
    vanished: list[str] = []
    for start in range(0, len(present), BATCH):
        batch = present[start : start + BATCH]
        raws = bulk._run_many([_raw_document(bulk, name) for name in batch], "check documents")
        for name, raw in zip(batch, raws, strict=True):
            if raw:
                problems += _check_document(name, raw)
            else:
                vanished.append(name)
    for name, (now_listed, meta, data) in _presence(bulk, vanished).items():
        if not meta:  # deleted since the scan is no problem; a listing or data left behind is
            if now_listed:
                problems.append(Problem(name, "listed in the names set but has no meta", "missing"))
            if data:
                problems.append(Problem(name, "has data but no meta", "missing"))
    return problems


def relist(store: SharedStore, names: list[str]) -> int:
    """Put ``names`` back in the names set where their meta still exists; how many were."""
    keys = store.keys
    added = 0
    for start in range(0, len(names), BATCH):
        chunk = names[start : start + BATCH]
        call = Call(
            ("EVALSHA", RELIST.sha, 1 + len(chunk), keys.names, *map(keys.meta, chunk), *chunk),
            int,
            "relist documents",
            RELIST,
            writes=True,
        )
        added += store._run(call)
    return added
