"""Reads from process memory (the client cache) next to raw redis-py, PostgreSQL, SQLite and the
JSON file, measured in one run; the invalidation delay; what the cache costs the write path."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.common import Row, Timing, measure, timing
from bench.postgres import Postgres
from sharedstate import AsyncSharedStore, SharedStore, compat
from sharedstate.redis_server import RedisProcess

SMALL = {"greeting": "hi", "admins": [1, 2, 3], "limits": {"max": 10}, "enabled": True, "ratio": 0.5}
NAMESPACE = "bench-reads"


def _row(case: str, ours: Timing, name: str, baseline: Timing, target: float | None, note: str = "") -> Row:
    return Row(case, str(ours), f"{name}: {baseline}", ours.ops / baseline.ops, target, note=note,
               figures={"ours": ours.__dict__, "baseline": baseline.__dict__})  # fmt: skip


def _until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the client cache did not take the document: is client tracking refused?")
        time.sleep(0.001)


def _cached(store: SharedStore, name: str) -> bool:
    store.get(name)
    return store.cached_version(name) is not None


def _postgres(seconds: float) -> Timing | str:
    why = Postgres.available()
    if why is not None:
        return why
    import psycopg
    from psycopg.types.json import Jsonb

    with Postgres() as server, psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE docs (name text PRIMARY KEY, data jsonb NOT NULL)")
        conn.execute("INSERT INTO docs VALUES (%s, %s)", ("small", Jsonb(SMALL)))
        version = conn.execute("SHOW server_version").fetchone()
        cursor = conn.cursor()

        def select() -> Any:
            cursor.execute("SELECT data FROM docs WHERE name = %s", ("small",), prepare=True)
            row = cursor.fetchone()
            assert row is not None
            return row[0]

        assert select() == SMALL
        result = measure(select, seconds)
        result.__dict__["server"] = version[0] if version else "?"
        return result


def _sqlite(seconds: float, workdir: Path) -> Timing:
    conn = sqlite3.connect(workdir / "docs.sqlite")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS docs (name TEXT PRIMARY KEY, data TEXT NOT NULL)")
    conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?)", ("small", json.dumps(SMALL)))
    conn.commit()

    def select() -> Any:  # the module keeps the statement prepared; json.loads: the same object back
        row = conn.execute("SELECT data FROM docs WHERE name = ?", ("small",)).fetchone()
        return json.loads(row[0])

    result = measure(select, seconds)
    conn.close()
    return result


def _hot_get(server: RedisProcess, seconds: float, workdir: Path) -> list[Row]:
    raw = server.client()
    with SharedStore.from_url(server.url, NAMESPACE, "bench") as store:
        store.put("small", SMALL)
        _until(lambda: _cached(store, "small"))
        hot = measure(lambda: store.get("small"), seconds)
    key = store.keys.data("small")
    hgetall = measure(lambda: raw.hgetall(key), seconds)
    raw.close()
    rows = [_row("hot get, small unchanged document", hot, "raw HGETALL", hgetall, 20)]
    pg = _postgres(seconds)
    if isinstance(pg, str):
        rows.append(Row("hot get vs PostgreSQL primary-key SELECT", "skipped", pg))
    else:
        rows.append(_row("hot get, small unchanged document", hot,
                         f"PostgreSQL {pg.__dict__.pop('server')} SELECT by primary key (prepared, loopback)",
                         pg, 10))  # fmt: skip
    lite = _sqlite(seconds, workdir)
    rows.append(_row("hot get, small unchanged document", hot, "SQLite (WAL, in-process) SELECT + json.loads",
                     lite, None, note="informational: SQLite answers from its own page cache"))  # fmt: skip
    return rows


def _load_json_file(server: RedisProcess, seconds: float, workdir: Path) -> list[Row]:
    path = workdir / "config.json"
    path.write_text(json.dumps(SMALL))
    with SharedStore.from_url(server.url, NAMESPACE, "bench") as store:
        compat.configure(store)
        try:
            compat.save_json_file(path, SMALL)
            _until(lambda: _cached(store, "config"))
            ours = measure(lambda: compat.load_json_file(path), seconds)
        finally:
            compat.configure(None)

    def read_file() -> Any:
        with open(path) as handle:
            return json.load(handle)

    baseline = measure(read_file, seconds)
    return [
        _row("load_json_file, unchanged document", ours, "json.load of the file (page cache)", baseline, 1.0)
    ]


def _async(server: RedisProcess, seconds: float) -> list[Row]:
    """Two harnesses: a gather of 100 new tasks per round (the client bench's "100 concurrent
    get", whose figure without the cache is today's), and 100 long-lived tasks each reading in a
    loop (how a bot's handlers read). A hot get never suspends, so the second measures the read
    itself and the first mostly asyncio's task creation (its ceiling: an empty coroutine)."""
    tasks = 100

    async def warm(store: AsyncSharedStore, cache: bool) -> None:
        await store.put("small", SMALL)
        deadline = time.monotonic() + 10
        while cache and store.cached_version("small") is None:
            assert time.monotonic() < deadline, "the client cache did not take the document"
            await store.get("small")
            await asyncio.sleep(0.001)

    async def rounds(cache: bool, empty: bool = False) -> Timing:
        store = AsyncSharedStore.from_url(server.url, NAMESPACE, "bench", cache=cache)
        await warm(store, cache)
        latencies: list[float] = []

        async def nothing() -> None:
            return None

        async def one() -> None:
            began = time.perf_counter()
            await (nothing() if empty else store.get("small"))
            latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(one() for _ in range(tasks)))  # warm the pool
        latencies.clear()
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            await asyncio.gather(*(one() for _ in range(tasks)))
        result = timing(latencies, time.perf_counter() - started)
        await store.close()
        return result

    async def handlers(cache: bool) -> Timing:
        store = AsyncSharedStore.from_url(server.url, NAMESPACE, "bench", cache=cache)
        await warm(store, cache)
        latencies: list[float] = []
        deadline = 0.0

        async def handler() -> None:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                await store.get("small")
                latencies.append(time.perf_counter() - began)

        deadline = time.perf_counter() + 0.2
        await asyncio.gather(*(handler() for _ in range(tasks)))  # warm the pool
        latencies.clear()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(handler() for _ in range(tasks)))
        result = timing(latencies, time.perf_counter() - started)
        await store.close()
        return result

    hot, today, ceiling = (
        asyncio.run(rounds(True)),
        asyncio.run(rounds(False)),
        asyncio.run(rounds(True, True)),
    )
    hot_loop, today_loop = asyncio.run(handlers(True)), asyncio.run(handlers(False))
    return [
        _row("AsyncSharedStore, 100 concurrent hot get (100 new tasks a round)", hot,
             "the same without the cache (today's)", today, 10,
             note=f"the harness's ceiling, an empty coroutine: {ceiling.ops:,.0f} ops/s "
                  f"({ceiling.ops / today.ops:.1f}x)"),
        _row("AsyncSharedStore, 100 tasks reading in a loop, hot get", hot_loop,
             "the same without the cache (auto-pipelined round trips)", today_loop, None),
    ]  # fmt: skip


def _invalidation_delay(server: RedisProcess, quick: bool) -> list[Row]:
    """From a write's acknowledgement (another connection) to the copy leaving the cache."""
    raw = server.client()
    delays: list[float] = []
    with SharedStore.from_url(server.url, NAMESPACE, "bench") as store:
        store.put("watched", {"n": 0})
        meta = store.keys.meta("watched")
        for i in range(100 if quick else 1000):
            _until(lambda: _cached(store, "watched"))
            raw.hset(meta, "w", f"writer {i}")  # another client's write: only Redis can tell
            acknowledged = time.perf_counter()
            while store.cached_version("watched") is not None:  # the cache still answers
                time.sleep(0)  # let the channel's thread take the GIL
            delays.append(time.perf_counter() - acknowledged)
    raw.close()
    ordered = sorted(delays)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    return [Row("invalidation delay (write acknowledged -> copy gone), loopback",
                f"p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {ordered[-1] * 1000:.3f} ms, "
                f"{len(ordered)} writes",
                note="informational", figures={"p50_ms": p50, "p99_ms": p99})]  # fmt: skip


def _write_cost(server: RedisProcess, seconds: float) -> list[Row]:
    """set_field throughput with the cache's channel running (it receives each write's
    invalidation) against a store without a cache; alternated, best of three each."""
    on = SharedStore.from_url(server.url, NAMESPACE, "bench")
    off = SharedStore.from_url(server.url, NAMESPACE, "bench", cache=False)
    on.put("counter", {"n": 0})
    _until(lambda: _cached(on, "counter"))
    counter = iter(range(10**9))
    results: dict[bool, list[Timing]] = {True: [], False: []}
    for _ in range(3):
        for cache, store in ((True, on), (False, off)):

            def write(store: SharedStore = store) -> None:
                store.set_field("counter", "n", next(counter))

            results[cache].append(measure(write, seconds / 2))
    on.close()
    off.close()
    best_on = max(results[True], key=lambda t: t.ops)
    best_off = max(results[False], key=lambda t: t.ops)
    return [_row("set_field with the cache on (channel running)", best_on, "cache off", best_off, 0.95)]


def run(server: RedisProcess, workdir: Path, quick: bool) -> list[Row]:
    seconds = 0.5 if quick else 3.0
    raw: redis.Redis = server.client()
    raw.flushall()
    raw.close()
    return [
        *_hot_get(server, seconds, workdir),
        *_load_json_file(server, seconds, workdir),
        *_async(server, seconds),
        *_invalidation_delay(server, quick),
        *_write_cost(server, seconds),
    ]
