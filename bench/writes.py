"""What a write costs: the drop-in's save next to the whole-document save and the JSON file,
and the Redis memory a document and its changes take, measured in one run."""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path
from typing import Any

import redis

from bench.common import Row, Timing, file_rewrite, measure
from sharedstate import SharedStore, compat
from sharedstate.redis_server import RedisProcess


def _entry(i: int) -> dict[str, Any]:
    return {"name": f"user {i}", "verified": bool(i % 2), "tags": ["a"]}


def _saves(server: RedisProcess, seconds: float, workdir: Path, entries: int) -> list[Row]:
    raw = server.client()
    store = SharedStore(raw, "bench-writes", "bench")
    mine = SharedStore(server.client(), "bench-writes", "bot")
    compat.configure(mine)
    counter = iter(range(10**9))
    rows: list[Row] = []
    layouts = {
        "registry document": ("registry", lambda data: data),  # entries are top-level fields
        "registry under one key": ("database", lambda data: data["buildings"]),  # database.json
    }
    for label, (name, registry_of) in layouts.items():
        registry = {str(i): _entry(i) for i in range(entries)}
        whole: Any = registry if name == "registry" else {"buildings": registry, "settings": {"a": 1}}
        store.put(name, whole)
        data = compat.load_json_file(f"{name}.json")

        def save(data: Any = data, name: str = name, registry_of: Any = registry_of) -> None:
            n = next(counter)
            registry_of(data)[str(n % entries)] = {"name": f"renamed {n}", "verified": True, "tags": ["b"]}
            compat.save_json_file(f"{name}.json", data)

        def put_whole(whole: Any = whole, name: str = name) -> None:
            store.put(f"{name}-whole", whole)

        def rewrite(whole: Any = whole, path: Path = workdir / f"{name}.json") -> None:
            file_rewrite(path, whole)

        ours = measure(save, seconds, warmup=5)
        before = measure(put_whole, seconds, warmup=2)
        files = measure(rewrite, seconds, warmup=2)
        case = f"compat save of one entry, {label} of {entries:,}"
        figures = {"ours": ours.__dict__, "put": before.__dict__, "file": files.__dict__}
        rows += [
            Row(case, str(ours), f"whole-document put (the old save): {before}", ours.ops / before.ops, 20,
                figures=figures, note=_cause(label)),
            Row(case, str(ours), f"JSON file rewrite + fsync: {files}", ours.ops / files.ops, 10,
                figures=figures, note=_cause(label)),
        ]  # fmt: skip
    compat.configure(None)
    mine.close()
    raw.close()
    return rows


def _cause(label: str) -> str:
    if label == "registry under one key":
        return (
            "a nested change rewrites its whole top-level field (the diff finds the entry, but the "
            "field's msgpack value is re-encoded and sent); split such files with import --split"
        )
    return ""


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


PROFILE = {
    "name": "Ada Lovelace", "username": "ada", "language": "en", "joined": 1_712_345_678,
    "verified": True, "buildings": ["b1", "b7"], "interest": {"b1": 3, "b7": 1},
    "settings": {"notify": True, "digest": "daily", "timezone": "Europe/London"},
    "last_seen": 1_712_400_000.5, "notes": "prefers the morning digest; asked about parking",
    "referrer": None, "score": 42,
}  # fmt: skip


def _forget_write_ids(client: redis.Redis, namespace: str) -> None:
    """Drop the re-send records (``w:<id>``, kept 120 s), as their expiry would."""
    keys = list(client.scan_iter(match=f"ss:{{{namespace}}}:w:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def _memory_per_document(server: RedisProcess, count: int, label: str, document: dict[str, Any]) -> Row:
    client = server.client()
    namespace = f"bench-memory-{label.replace(' ', '')}"
    store = SharedStore(client, namespace, "bot")
    size = len(json.dumps(document))
    before = _used(client)
    for i in range(count):
        store.put(f"user{i}", document)
    _forget_write_ids(client, namespace)
    one = (_used(client) - before) / count
    for update in range(10):
        for i in range(count):
            store.set_field(f"user{i}", "last_seen", 1_712_400_000.5 + update)
    with_ids = (_used(client) - before) / count
    _forget_write_ids(client, namespace)
    ten = (_used(client) - before) / count
    store.close()
    client.close()
    figures = {
        "json_bytes": size,
        "after_one_write": one,
        "after_ten_updates": ten,
        "with_write_ids": with_ids,
    }
    note = (
        "steady state: the 10 changes' feed entries and history records (~120 B each) are counted, "
        f"the re-send records of the last 120 s are not (with them: {with_ids:,.0f} B)"
    )
    return Row(f"Redis memory per {label} document ({size} B of JSON), after 10 updates", f"{ten:,.0f} B",
               f"its JSON: {size} B; after the first write: {one:,.0f} B", ten / size, 4, at_most=True,
               figures=figures, note=note)  # fmt: skip


def _large_document_puts(server: RedisProcess, puts: int) -> list[Row]:
    client = server.client()
    store = SharedStore(client, "bench-large", "bot")
    document = {f"k{i}": secrets.token_hex(40) for i in range(900)}  # ~75 KB of JSON
    store.put("big", document)
    before = _used(client)
    for i in range(puts):
        document[f"k{i % 900}"] = secrets.token_hex(40)
        store.put("big", document)
    grown = (_used(client) - before) / 1e6
    store.close()
    client.close()
    return [
        Row(f"Redis growth, {puts:,} puts of a 75 KB document changing one field each", f"{grown:.2f} MB",
            "", grown, 8 * puts / 1000, at_most=True, unit=" MB"),
    ]  # fmt: skip


def run(server: RedisProcess, workdir: Path, quick: bool) -> list[Row]:
    seconds = 0.5 if quick else 3.0
    server.client().flushall()
    with tempfile.TemporaryDirectory(dir=workdir) as files:
        rows = _saves(server, seconds, Path(files), 1_000 if quick else 10_000)
    count = 100 if quick else 1_000
    rows.append(_memory_per_document(server, count, "small", PROFILE))
    larger = {**PROFILE, "history": [{"at": 1_712_000_000 + i, "event": "digest sent"} for i in range(16)]}
    rows.append(_memory_per_document(server, count, "1 KB", larger))
    rows += _large_document_puts(server, 100 if quick else 1_000)
    return rows


__all__ = ["Timing", "run"]
