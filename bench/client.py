"""The client next to raw redis-py, the JSON-file approach and pottery, measured in one run.

Every store here has the client cache off: these rows measure the round trip (reads from
process memory are ``bench/reads.py``'s)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from bench.common import Row, Timing, file_rewrite, measure, timing
from sharedstate import AsyncSharedStore, SharedStore, compat
from sharedstate.redis_server import RedisProcess

SMALL = {"greeting": "hi", "admins": [1, 2, 3], "limits": {"max": 10}, "enabled": True, "ratio": 0.5}


def _ratio(ours: Timing, baseline: Timing) -> float:
    return ours.ops / baseline.ops


def _row(case: str, ours: Timing, name: str, baseline: Timing, target: float | None) -> Row:
    return Row(case, str(ours), f"{name}: {baseline}", _ratio(ours, baseline), target,
               figures={"ours": ours.__dict__, "baseline": baseline.__dict__})  # fmt: skip


def _get(store: SharedStore, raw: redis.Redis, seconds: float) -> list[Row]:
    store.put("small", SMALL)
    key = store.keys.data("small")
    ours = measure(lambda: store.get("small"), seconds)
    baseline = measure(lambda: raw.hgetall(key), seconds)
    return [_row("get small document, cache off", ours, "raw HGETALL", baseline, 0.8)]


def _set_field(store: SharedStore, raw: redis.Redis, seconds: float, workdir: Path) -> list[Row]:
    registry = {str(i): {"name": f"user {i}", "verified": bool(i % 2), "tags": ["a"]} for i in range(10_000)}
    store.put("registry", registry)
    counter = iter(range(10**9))
    entry = {"name": "someone", "verified": True, "tags": ["b"]}
    ours = measure(lambda: store.set_field("registry", str(next(counter) % 10_000), entry), seconds)

    def raw_write() -> None:
        pipe = raw.pipeline(transaction=True)
        pipe.hset("raw:registry", str(next(counter) % 10_000), json.dumps(entry))
        pipe.hincrby("raw:registry:meta", "v", 1)
        pipe.execute()

    baseline = measure(raw_write, seconds)
    path = workdir / "user_data.json"
    path.write_text(json.dumps(registry))

    def rewrite_file() -> None:  # the seeds' approach: load, change, write atomically, fsync
        data = json.loads(path.read_text())
        data[str(next(counter) % 10_000)] = entry
        file_rewrite(path, data)

    files = measure(rewrite_file, seconds, warmup=3)
    return [
        _row("set_field, 10k-entry registry", ours, "raw MULTI(HSET, HINCRBY)", baseline, 0.8),
        _row("set_field, 10k-entry registry", ours, "JSON file rewrite + fsync", files, 100),
    ]


def _put(store: SharedStore, raw: redis.Redis, seconds: float) -> list[Row]:
    document = {f"field{i}": {"id": i, "name": f"value {i}"} for i in range(50)}
    ours = measure(lambda: store.put("wide", document), seconds)
    encoded = {key: json.dumps(value) for key, value in document.items()}

    def raw_put() -> None:
        pipe = raw.pipeline(transaction=False)
        for key, value in encoded.items():
            pipe.hset("raw:wide", key, value)
        pipe.execute()

    baseline = measure(raw_put, seconds)
    return [_row("put, 50-field document", ours, "raw pipeline of 50 HSET", baseline, None)]


def _update(store: SharedStore, raw: redis.Redis, seconds: float) -> list[Row]:
    store.put("counter", {"n": 0})
    ours = measure(lambda: store.update("counter", lambda d: {**d, "n": d["n"] + 1}), seconds)
    raw.set("raw:counter", 0)

    def raw_update() -> None:
        with raw.pipeline() as pipe:
            pipe.watch("raw:counter")
            value = int(pipe.get("raw:counter") or 0)
            pipe.multi()
            pipe.set("raw:counter", value + 1)
            pipe.execute()

    baseline = measure(raw_update, seconds)
    return [_row("update(), uncontended", ours, "raw WATCH/MULTI", baseline, 0.4)]


def _contender(url: str, count: int, ready: Any, go: Any, results: Any) -> None:
    store = SharedStore.from_url(url, "bench-client", "contender")
    store.names()  # connected
    attempts = 0

    def increment(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal attempts
        attempts += 1
        return {**data, "n": data.get("n", 0) + 1}

    ready.put(os.getpid())
    go.wait()
    for _ in range(count):
        store.update("contended", increment, retries=10_000)
    results.put(attempts)
    store.close()


def _contended(server: RedisProcess, store: SharedStore, quick: bool) -> list[Row]:
    per_process = 200 if quick else 1500
    context = multiprocessing.get_context("spawn")
    figures: dict[int, dict[str, float]] = {}
    for processes in (1, 2, 4):
        store.put("contended", {"n": 0})
        ready, go, results = context.Queue(), context.Event(), context.Queue()
        workers = [context.Process(target=_contender, args=(server.url, per_process, ready, go, results))
                   for _ in range(processes)]  # fmt: skip
        for worker in workers:
            worker.start()
        for _ in workers:
            ready.get(timeout=60)  # every process imported and connected: start the clock
        started = time.perf_counter()
        go.set()
        attempts = sum(results.get(timeout=300) for _ in workers)
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.join()
        total = processes * per_process
        final = store.get("contended").data["n"]
        assert final == total, f"lost updates: {final} != {total}"
        figures[processes] = {"ops": total / elapsed, "retries_per_update": (attempts - total) / total}
    rows = []
    for processes in (2, 4):
        f = figures[processes]
        rows.append(
            Row(f"update(), {processes} processes contending", f"{f['ops']:,.0f} updates/s, "
                f"{f['retries_per_update']:.2f} retries/update, 0 lost",
                f"1 process: {figures[1]['ops']:,.0f} updates/s", f["ops"] / figures[1]["ops"],
                0.5 if processes == 4 else None, figures=figures[processes])
        )  # fmt: skip
    return rows


def _async(server: RedisProcess, store: SharedStore, seconds: float) -> list[Row]:
    store.put("small", SMALL)
    tasks = 100
    rounds = max(5, int(seconds * 20))

    async def run() -> Timing:
        astore = AsyncSharedStore(
            redis.asyncio.Redis(port=server.port, max_connections=tasks), "bench-client", cache=False
        )
        latencies: list[float] = []

        async def one() -> None:
            began = time.perf_counter()
            await astore.get("small")
            latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(one() for _ in range(tasks)))  # warm the pool
        latencies.clear()
        started = time.perf_counter()
        for _ in range(rounds):
            await asyncio.gather(*(one() for _ in range(tasks)))
        result = timing(latencies, time.perf_counter() - started)
        await astore.redis.aclose()
        return result

    concurrent = asyncio.run(run())
    sequential = measure(lambda: store.get("small"), seconds)
    return [
        _row(
            "AsyncSharedStore, 100 concurrent get, cache off",
            concurrent,
            "SharedStore, sequential",
            sequential,
            3.0,
        )
    ]


def _pottery(store: SharedStore, raw: redis.Redis, seconds: float) -> list[Row]:
    try:
        from pottery import RedisDict
    except ImportError:
        return [
            Row("mapping vs pottery.RedisDict", "skipped", "pottery is not installed (pip install pottery)")
        ]
    peer = RedisDict(redis=raw, key="bench:pottery")
    mine = store.mapping("pottery_twin")
    value = {"name": "Ada", "verified": True}
    counter = iter(range(10**9))
    ours_set = measure(lambda: mine.__setitem__(str(next(counter) % 1000), value), seconds)
    peer_set = measure(lambda: peer.__setitem__(str(next(counter) % 1000), value), seconds)
    # A slow machine may not reach all 1000 keys within the timed sets; the gets need every one.
    for key in map(str, range(1000)):
        mine.setdefault(key, value)
        if key not in peer:
            peer[key] = value
    ours_get = measure(lambda: mine[str(next(counter) % 1000)], seconds)
    peer_get = measure(lambda: peer[str(next(counter) % 1000)], seconds)
    return [
        _row("mapping item set", ours_set, "pottery.RedisDict", peer_set, 1.0),
        _row("mapping item get", ours_get, "pottery.RedisDict", peer_get, 1.0),
    ]


def _drop_in(server: RedisProcess, seconds: float, workdir: Path) -> list[Row]:
    path = workdir / "config.json"
    path.write_text(json.dumps(SMALL))
    compat.configure(SharedStore(redis.Redis(port=server.port), "bench-client", cache=False))
    compat.save_json_file(path, SMALL)
    ours = measure(lambda: compat.load_json_file(path), seconds)
    compat.configure(None)

    def read_file() -> Any:
        with open(path) as handle:
            return json.load(handle)

    baseline = measure(read_file, seconds)
    note = "informational: a network round trip vs the page cache"
    return [Row("load_json_file via the drop-in, cache off", str(ours), f"json.load of the file: {baseline}",
                _ratio(ours, baseline), note=note)]  # fmt: skip


def run(server: RedisProcess, workdir: Path, quick: bool) -> list[Row]:
    seconds = 0.5 if quick else 3.0
    raw = server.client()
    raw.flushall()
    store = SharedStore(raw, "bench-client", "bench", cache=False)
    with tempfile.TemporaryDirectory(dir=workdir) as files:
        rows = [
            *_get(store, raw, seconds),
            *_set_field(store, raw, seconds, Path(files)),
            *_put(store, raw, seconds),
            *_update(store, raw, seconds),
            *_contended(server, store, quick),
            *_async(server, store, seconds),
            *_pottery(store, raw, seconds),
            *_drop_in(server, seconds, Path(files)),
        ]
    raw.close()
    return rows
