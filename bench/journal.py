"""The continuous journal and the bucket target: how many changes a second the journal keeps up
with, what it costs the bot's write path (set_field with a journaler running in another
process, as the worker runs it, against none), and a snapshot to a bucket (a real S3-compatible
server over HTTP) against one to a directory, measured in one run."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import Row, measure
from bench.s3 import S3Server
from sharedstate import SharedStore
from sharedstate.durability.journaling import Journaler
from sharedstate.durability.snapshots import take_snapshot
from sharedstate.durability.target import DirectoryTarget
from sharedstate.redis_server import RedisProcess

NAMESPACE = "bench-journal"


def _catch_up(store: SharedStore, target: DirectoryTarget, changes: int) -> float:
    """Seconds a journaler starting from the feed's beginning takes to make ``changes`` durable."""
    for i in range(changes):
        store.set_field("counter", "n", i)
    newest: Any = store.redis.xrevrange(store.keys.feed, count=1)
    last = newest[0][0].decode()
    journaler = Journaler(store, target)
    stopping = threading.Event()
    thread = threading.Thread(target=journaler.run, args=(stopping,), daemon=True)
    started = time.perf_counter()
    thread.start()
    while journaler.durable_id != last:
        time.sleep(0.001)
    seconds = time.perf_counter() - started
    stopping.set()
    thread.join()
    return seconds


def run(server: RedisProcess, workdir: Path, quick: bool) -> list[Row]:
    client = server.client()
    client.flushall()
    changes = 5_000 if quick else 50_000
    seconds = 1.0 if quick else 4.0
    rows: list[Row] = []
    with SharedStore(client, NAMESPACE, "bench", cache=False, feed_maxlen=changes * 2) as store:
        took = _catch_up(store, DirectoryTarget(workdir / "journal-bench"), changes)
        rate = changes / took
        rows.append(Row("journal keeps up (changes/s, directory, fsync per flush)", f"{rate:,.0f} changes/s",
                        "target: 5,000 changes/s", rate / 5000, 1.0))  # fmt: skip
        plain = measure(lambda: store.set_field("hot", "n", 1), seconds)
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.journal", server.url, NAMESPACE, str(workdir / "journal-run")],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)  # the journaler is up and following
            journaled = measure(lambda: store.set_field("hot", "n", 1), seconds)
        finally:
            child.terminate()
            child.wait(30)
    rows.append(Row("set_field with the journal running (another process)", str(journaled),
                    f"without: {plain}", journaled.ops / plain.ops, 0.95))  # fmt: skip
    rows.append(_bucket_snapshot(client, workdir, 2_000 if quick else 10_000))
    client.close()
    return rows


def _bucket_snapshot(client: Any, workdir: Path, documents: int) -> Row:
    """A snapshot of ``documents`` ~1 KB documents to a bucket against one to a directory."""
    client.flushall()
    server = S3Server(workdir)
    server.start()
    try:
        with SharedStore(client, NAMESPACE, "bench", cache=False) as store:
            store.put_all({f"doc{i}": {"i": i, "text": "x" * 1000} for i in range(documents)})
            directory = min(_snapshot_seconds(store, DirectoryTarget(workdir / "snap-dir")) for _ in range(3))
            bucket = min(_snapshot_seconds(store, server.target()) for _ in range(3))
    finally:
        server.stop()
    case = f"snapshot to a bucket, {documents:,} x 1 KB"
    return Row(case, f"{bucket:.2f} s", f"to a directory: {directory:.2f} s", directory / bucket, 0.5)


def _snapshot_seconds(store: SharedStore, target: Any) -> float:
    started = time.perf_counter()
    take_snapshot(store, target)
    return time.perf_counter() - started


def _child(url: str, namespace: str, directory: str) -> None:
    import signal

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with SharedStore.from_url(url, namespace, "journal", cache=False) as store:
        Journaler(store, DirectoryTarget(Path(directory))).run(stopping)


if __name__ == "__main__":
    _child(*sys.argv[1:4])
