"""Redis losing everything under a running worker; a 10-second outage under a reading+writing bot."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sharedstate import SharedStore, StoreUnavailable, VersionConflict
from sharedstate.durability.format import read_snapshot
from sharedstate.redis_server import RedisProcess
from tests.deployments import Deployment, wait_for

LOSSES = 10


def test_redis_restarted_empty_ten_times_under_writers(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")  # no persistence at all: a restart loses everything
    server.start()
    deployment = Deployment(server, tmp_path)
    deployment.start(snapshot_interval=1, restore_check_interval=1)
    writer = SharedStore.from_url(server.url, deployment.namespace, "writer", timeout=2.0)
    acknowledged = {"n": 0}
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            try:
                acknowledged["n"] = writer.update("counter", lambda d: {**d, "n": d.get("n", 0) + 1}).data[
                    "n"
                ]
            except (StoreUnavailable, VersionConflict):
                time.sleep(0.05)  # Redis is away or being restored: back off a little
            time.sleep(0.01)  # ~100 writes a second, like a busy bot

    thread = threading.Thread(target=write)
    thread.start()
    figures: list[dict[str, Any]] = []
    try:
        wait_for(lambda: acknowledged["n"] >= 20, 30, "the first writes")
        for _ in range(LOSSES):
            time.sleep(1.5)  # let a snapshot or two happen between losses
            held = writer.get("counter").version
            before = acknowledged["n"]
            server.restart(keep_data=False)
            lost_at = time.monotonic()
            restored = wait_for(
                lambda: (doc := _load(writer)) is not None and doc.version > 1_000_000_000 and doc,
                10,
                "the automatic restore",
            )
            seconds = time.monotonic() - lost_at
            with pytest.raises(VersionConflict):  # ABA: a version from before the loss never matches
                writer.put("counter", {"n": -1}, expected_version=held)
            # Redis lost its run records too: the only ones are since this loss
            run = wait_for(
                lambda: next((r for r in deployment.runs("auto-restore") if r["status"] == "ok"), None),
                10,
                "the restore's record",
            )
            _, records = read_snapshot(deployment.data_dir / "snapshots" / run["result"]["snapshot"])
            in_snapshot = next(record.data["n"] for record in records if record.name == "counter")
            assert restored.version > held
            figures.append({"seconds": seconds, "lost": before - in_snapshot})
    finally:
        stop.set()
        thread.join()
        writer.close()
        deployment.close()
        server.stop()
    slowest = max(f["seconds"] for f in figures)
    lost = [f["lost"] for f in figures]
    print(
        f"\n[redis loss x{LOSSES}] restored within {slowest:.1f} s at worst; "
        f"acknowledged writes lost per loss (written after the restored snapshot): {lost}"
    )
    assert slowest < 10
    assert all(0 <= n < 400 for n in lost)  # only writes after the restored snapshot: ~1-2 s at ~100/s


def _load(store: SharedStore) -> Any:
    try:
        return store.get("counter")
    except Exception:
        return None


def test_outage_under_a_reading_and_writing_bot(own_redis: RedisProcess) -> None:
    bot = SharedStore.from_url(own_redis.url, "outage", "bot", timeout=2.0)
    for name in ("config", "users", "tokens"):
        bot.put(name, {"seed": name})
        bot.get(name)
    own_redis.kill()
    down_until = time.monotonic() + 10
    reads = stale = writes = fast_failures = 0
    slowest_write = 0.0
    while time.monotonic() < down_until:
        for name in ("config", "users", "tokens"):
            doc = bot.get(name)
            reads += 1
            stale += doc.stale and doc.data == {"seed": name}
            started = time.monotonic()
            try:
                bot.set_field(name, "x", 1)
            except StoreUnavailable:
                fast_failures += time.monotonic() - started < 2.0
            writes += 1
            slowest_write = max(slowest_write, time.monotonic() - started)
        time.sleep(0.05)  # the bot's own pace
    own_redis.start()
    back = time.monotonic()
    wait_for(lambda: _writes(bot), 5, "a write after Redis came back")
    reconnect = time.monotonic() - back
    bot.close()
    print(
        f"\n[outage 10 s] {reads} reads, {stale} served stale; {writes} writes, {fast_failures} refused "
        f"within 2 s (slowest {slowest_write:.3f} s); reconnected {reconnect:.3f} s after Redis came back"
    )
    assert stale == reads and fast_failures == writes
    assert reconnect < 1.0


def _writes(store: SharedStore) -> bool:
    try:
        store.put("after", 1)
        return True
    except StoreUnavailable:
        return False
