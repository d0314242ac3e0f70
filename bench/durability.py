"""Snapshot and restore of N documents (~1 KB each) next to Redis's own BGSAVE of the same data."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import redis

from bench.common import Row, seconds
from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess

NAMESPACE = "bench-durability"


def _document(i: int) -> dict[str, object]:
    return {
        "id": i,
        "name": f"user {i}",
        "email": f"user{i}@example.org",
        "pad": "x" * 880,
        "tags": [1, 2, 3],
    }


def _fill(store: SharedStore, count: int) -> None:
    for start in range(0, count, 1000):
        store.put_all({f"doc{i:07d}": _document(i) for i in range(start, min(count, start + 1000))})


def _bgsave(client: redis.Redis) -> float:
    started = time.perf_counter()
    client.bgsave()  # forks before it answers: the flag below is already set
    while client.info("persistence")["rdb_bgsave_in_progress"]:
        time.sleep(0.002)  # polling Redis's own completion flag
    assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
    return time.perf_counter() - started


def _child(what: str, server: RedisProcess, directory: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.child", what, server.url, NAMESPACE, str(directory)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def run(server: RedisProcess, workdir: Path, quick: bool) -> list[Row]:
    sizes = (1_000, 10_000) if quick else (10_000, 100_000)
    client = server.client()
    store = SharedStore(client, NAMESPACE, "bench")
    rows: list[Row] = []
    measured: dict[int, dict[str, float]] = {}
    for count in sizes:
        client.flushall()
        directory = workdir / f"snapshots-{count}"
        _fill(store, count)
        bgsave = _bgsave(client)
        snap = _child("snapshot", server, directory)
        json_bytes = len(gzip.decompress(Path(str(snap["path"])).read_bytes()))
        client.flushall()
        restore = _child("restore", server, directory)
        assert restore["documents"] == count
        again = _child("restore", server, directory)  # a false alarm: everything is there already
        assert again["documents"] == 0
        measured[count] = {"snapshot": snap["seconds"], "restore": restore["seconds"]}
        label = f"{count // 1000}k docs"
        rows += [
            Row(f"snapshot {label}", seconds(snap["seconds"]), f"BGSAVE {seconds(bgsave)}",
                bgsave / snap["seconds"], 1 / 3, note="within 3x of BGSAVE",
                figures={"snapshot_s": snap["seconds"], "bgsave_s": bgsave, "size": snap["size"]}),
            Row(f"restore {label}", seconds(restore["seconds"]), f"BGSAVE {seconds(bgsave)}",
                bgsave / restore["seconds"], 1 / 3, note="within 3x of BGSAVE",
                figures={"restore_s": restore["seconds"], "bgsave_s": bgsave}),
            Row(f"fill-in restore over an intact {label}", seconds(again["seconds"]),
                f"BGSAVE {seconds(bgsave)}", bgsave / again["seconds"], 1 / 3,
                note="a false alarm writes nothing", figures={"restore_s": again["seconds"]}),
            Row(f"snapshot throughput {label}", f"{json_bytes / snap['seconds'] / 1e6:.1f} MB/s of JSON",
                ratio=json_bytes / snap["seconds"] / 1e6, target=50, unit=" MB/s",
                figures={"json_bytes": json_bytes}),
            Row(f"peak RSS snapshot {label}", f"{snap['peak_rss_mb']:.0f} MB", ratio=snap["peak_rss_mb"],
                target=150, at_most=True, unit=" MB"),
            Row(f"peak RSS restore {label}", f"{restore['peak_rss_mb']:.0f} MB", ratio=restore["peak_rss_mb"],
                target=150, at_most=True, unit=" MB"),
        ]  # fmt: skip
    small, large = sizes
    for what in ("snapshot", "restore"):
        growth = measured[large][what] / measured[small][what]
        rows.append(
            Row(f"{what} cost, {large // small}x data", f"{growth:.2f}x the time", ratio=growth,
                target=1.1 * large / small, at_most=True, note="linear")
        )  # fmt: skip
    rows += _wide(server, workdir / "snapshots-wide", quick)
    client.flushall()
    client.close()
    return rows


def _wide(server: RedisProcess, directory: Path, quick: bool) -> list[Row]:
    """One document at the size limit with 1.5M fields: snapshot and restore with the default
    10 s call timeout, no call of either blocking Redis for long (its SLOWLOG says how long)."""
    count = 150_000 if quick else 1_500_000
    client = server.client()
    client.flushall()
    store = SharedStore.from_url(server.url, NAMESPACE, "bench")  # the default timeout
    client.config_set("slowlog-log-slower-than", 0)
    wide = {f"{i:x}": i % 100 for i in range(count)}
    SharedStore.from_url(server.url, NAMESPACE, "bench", timeout=120).put("wide", wide)
    client.slowlog_reset()
    snap = _child("snapshot", server, directory)
    snap_longest = max(entry["duration"] for entry in client.slowlog_get(1000)) / 1e6
    client.flushall()
    client.slowlog_reset()
    restore = _child("restore", server, directory)
    restore_longest = max(entry["duration"] for entry in client.slowlog_get(1000)) / 1e6
    client.config_set("slowlog-log-slower-than", 10_000)
    assert len(store.load("wide")) == count
    store.close()
    label = f"one {count / 1e6:.2g}M-field document"
    return [
        Row(f"snapshot of {label}", seconds(snap["seconds"]), "10 s call timeout",
            10 / max(snap_longest, 1e-3), 1, note=f"completes; longest Redis call {snap_longest:.2f} s",
            figures={"longest_call_s": snap_longest}),
        Row(f"restore of {label}", seconds(restore["seconds"]), "10 s call timeout",
            10 / max(restore_longest, 1e-3), 1, note=f"completes; longest Redis call {restore_longest:.2f} s",
            figures={"longest_call_s": restore_longest}),
    ]  # fmt: skip
