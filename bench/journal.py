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

from bench.common import Row, Timing, measure
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
        plain, journaled = _write_path(server, store, workdir, seconds, 1 if quick else 3)
    rows.append(Row("set_field with the journal running (another process)", str(journaled),
                    f"without: {plain}", journaled.ops / plain.ops, 0.95))  # fmt: skip
    s3 = S3Server(workdir)
    s3.start()
    try:
        for name, target in (("directory", DirectoryTarget(workdir / "lag-dir")), ("bucket", s3.target())):
            rows.append(_lag(server, client, target, name, 3.0 if quick else 15.0))
        rows.append(_bucket_snapshot(client, s3, workdir, 2_000 if quick else 10_000))
    finally:
        s3.stop()
    client.close()
    return rows


def _write_path(
    server: RedisProcess, store: SharedStore, workdir: Path, seconds: float, rounds: int
) -> tuple[Timing, Timing]:
    """set_field without and with a journaler in another process, in alternating rounds (so a
    drift in the machine's speed falls on both); the best round of each."""
    plain: list[Timing] = []
    journaled: list[Timing] = []
    for _ in range(rounds):
        plain.append(measure(lambda: store.set_field("hot", "n", 1), seconds))
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.journal", server.url, NAMESPACE, str(workdir / "journal-run")],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "following"
            journaled.append(measure(lambda: store.set_field("hot", "n", 1), seconds))
        finally:
            child.terminate()
            child.wait(30)
    return max(plain, key=lambda t: t.ops), max(journaled, key=lambda t: t.ops)


LAG_RATE = 1_000  # writes a second by the writer whose changes the journal follows


def _lag(server: RedisProcess, client: Any, target: Any, name: str, seconds: float) -> Row:
    """How long after its acknowledgement a change is on the target: a writer in another
    process makes LAG_RATE set_fields a second; the journal's durable position is sampled
    every 10 ms and its age (its feed id is the acknowledgement's millisecond) recorded
    whenever newer changes wait."""
    client.flushall()
    ages: list[float] = []
    with SharedStore(client, NAMESPACE, "bench", cache=False) as store:
        journaler = Journaler(store, target)
        stopping = threading.Event()
        thread = threading.Thread(target=journaler.run, args=(stopping,), daemon=True)
        thread.start()
        journaler.ready.wait(10)
        writer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.journal",
                "write",
                server.url,
                NAMESPACE,
                str(LAG_RATE),
                str(seconds),
            ]
        )
        try:
            while writer.poll() is None:
                newest: Any = client.xrevrange(store.keys.feed, count=1)
                durable = journaler.durable_id
                if newest and durable and newest[0][0].decode() != durable:
                    ages.append(time.time() - int(durable.split("-")[0]) / 1000)
                time.sleep(0.01)
        finally:
            writer.wait(30)
            stopping.set()
            thread.join(30)
    ages.sort()
    p99 = ages[int(len(ages) * 0.99)] if ages else 0.0
    p50 = ages[len(ages) // 2] if ages else 0.0
    case = f"journal lag to a {name}, writer at {LAG_RATE:,} set_field/s (p99)"
    return Row(case, f"p50 {p50:.3f} s, p99 {p99:.3f} s, max {ages[-1] if ages else 0:.3f} s",
               "target: each change on the target within 1 s", p99, 1.0, at_most=True, unit=" s")  # fmt: skip


def _bucket_snapshot(client: Any, s3: S3Server, workdir: Path, documents: int) -> Row:
    """A snapshot of ``documents`` ~1 KB documents to a bucket against one to a directory."""
    client.flushall()
    with SharedStore(client, NAMESPACE, "bench", cache=False) as store:
        store.put_all({f"doc{i}": {"i": i, "text": "x" * 1000} for i in range(documents)})
        directory = min(_snapshot_seconds(store, DirectoryTarget(workdir / "snap-dir")) for _ in range(3))
        bucket = min(_snapshot_seconds(store, s3.target()) for _ in range(3))
    case = f"snapshot to a bucket, {documents:,} x 1 KB"
    return Row(case, f"{bucket:.2f} s", f"to a directory: {directory:.2f} s", directory / bucket, 0.5)


def _snapshot_seconds(store: SharedStore, target: Any) -> float:
    started = time.perf_counter()
    take_snapshot(store, target)
    return time.perf_counter() - started


def _writer(url: str, namespace: str, rate: float, seconds: float) -> None:
    """set_field at ``rate`` a second for ``seconds`` (the lag rows' writer)."""
    with SharedStore.from_url(url, namespace, "writer", cache=False) as store:
        started = time.monotonic()
        due = started
        i = 0
        while due - started < seconds:
            store.set_field(f"user{i % 50}", f"f{i % 7}", {"i": i, "note": "x" * 60})
            i += 1
            due += 1 / rate
            time.sleep(max(0.0, due - time.monotonic()))


def _child(url: str, namespace: str, directory: str) -> None:
    import signal

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with SharedStore.from_url(url, namespace, "journal", cache=False) as store:
        journaler = Journaler(store, DirectoryTarget(Path(directory)))
        thread = threading.Thread(target=journaler.run, args=(stopping,))
        thread.start()
        journaler.ready.wait(30)
        print("following", flush=True)
        thread.join()


if __name__ == "__main__":
    if sys.argv[1] == "write":
        _writer(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
    else:
        _child(*sys.argv[1:4])
