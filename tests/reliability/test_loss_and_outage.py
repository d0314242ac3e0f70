"""Redis losing everything under a running worker; a 10-second outage under a reading+writing bot."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import redis

from sharedstate import SharedStore, StoreUnavailable, VersionConflict
from sharedstate.redis_server import RedisProcess
from tests.deployments import Deployment, wait_for

LOSSES = 10


DOCS = tuple(f"doc{i}" for i in range(8))


class Writer:
    """A bot writing unique tokens to a few documents, ~100 writes a second, recording each
    acknowledged write (and each whose outcome is unknown) with the time it ended."""

    def __init__(self, url: str, namespace: str) -> None:
        self.store = SharedStore.from_url(url, namespace, "writer", timeout=2.0, stale_reads=False)
        self.acked: list[tuple[float, str, str]] = []  # (ended, doc, token)
        self.unknown: list[tuple[float, str, str]] = []  # (started, doc, token)
        self.running = threading.Event()
        self.running.set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._write)
        self.sequence = 0

    def _write(self) -> None:
        while not self.stop.is_set():
            if not self.running.wait(0.05):
                continue
            self.sequence += 1
            doc, token = DOCS[self.sequence % len(DOCS)], f"t{self.sequence}"
            started = time.monotonic()
            try:
                self.store.set_field(doc, "w", token)
                self.acked.append((time.monotonic(), doc, token))
            except StoreUnavailable:
                self.unknown.append((started, doc, token))
                time.sleep(0.05)
            time.sleep(0.01)

    def pause(self) -> None:
        self.running.clear()
        time.sleep(0.1)  # a write under way ends

    def last_acked_since(self, since: float) -> dict[str, tuple[float, str]]:
        last: dict[str, tuple[float, str]] = {}
        for ended, doc, token in self.acked:
            if ended > since:
                last[doc] = (ended, token)
        return last


def test_redis_restarted_empty_ten_times_under_writers(tmp_path: Path) -> None:
    """Each loss: no compare-and-set with a pre-loss version succeeds, before or after the
    restore; no write acknowledged after the loss is overwritten by the restore."""
    server = RedisProcess(tmp_path / "redis")  # no persistence at all: a restart loses everything
    server.start()
    deployment = Deployment(server, tmp_path)
    deployment.start(snapshot_interval=1, restore_check_interval=1)
    writer = Writer(server.url, deployment.namespace)
    checker = SharedStore.from_url(
        server.url, deployment.namespace, "checker", timeout=2.0, stale_reads=False
    )
    static = {f"static{i}": {"i": i, "ids": {i, i + 1}} for i in range(20)}  # written once, never again
    checker.put_all(static)
    writer.thread.start()
    figures: list[dict[str, Any]] = []
    aba = overwritten = 0
    try:
        wait_for(lambda: len(writer.acked) >= 50, 30, "the first writes")
        for _ in range(LOSSES):
            time.sleep(1.5)  # let a snapshot or two happen between losses
            held = {doc: checker.get(doc).version for doc in DOCS}
            server.restart(keep_data=False)
            lost_at = time.monotonic()
            for doc in DOCS:  # before the restore (it runs within a second or so)
                aba += _cas_succeeds(checker, doc, held[doc])
            restored = wait_for(lambda: _restore_record(deployment), 10, "the automatic restore")
            seconds = time.monotonic() - lost_at
            writer.pause()
            after = writer.last_acked_since(lost_at)
            for doc, (ended, token) in after.items():
                maybe = {t for started, d, t in writer.unknown if d == doc and started > ended}
                current = checker.get(doc).data.get("w")
                if current != token and current not in maybe:
                    overwritten += 1
            for doc in DOCS:
                aba += _cas_succeeds(checker, doc, held[doc])
            back = {name: checker.load(name) for name in static}
            if back != static:  # filled in from the snapshot: if not, say what the worker saw
                _explain(deployment, server, restored, back)
            assert back == static
            writer.running.set()
            figures.append(
                {"seconds": seconds, "kept": restored.get("kept_newer", 0), "after": len(after),
                 "restored": restored.get("restored", 0)}
            )  # fmt: skip
    finally:
        writer.stop.set()
        writer.running.set()
        writer.thread.join()
        writer.store.close()
        checker.close()
        deployment.close()
        server.stop()
    slowest = max(f["seconds"] for f in figures)
    print(
        f"\n[redis loss x{LOSSES}] restored within {slowest:.1f} s at worst; ABA successes {aba}; "
        f"writes acknowledged after a loss then overwritten by its restore: {overwritten}; documents "
        f"written after each loss and kept by its restore: {[f['kept'] for f in figures]}, filled in: "
        f"{[f['restored'] for f in figures]}"
    )
    assert slowest < 10
    assert aba == 0 and overwritten == 0
    assert sum(f["after"] for f in figures) > 0  # the writer did write into the emptied Redis
    assert all(f["restored"] >= len(static) for f in figures)


def _explain(
    deployment: Deployment, server: RedisProcess, restored: dict[str, Any], back: dict[str, Any]
) -> None:
    from tests.worker.test_worker import snapshot_holds

    uncached = SharedStore(server.client(), deployment.namespace, "explain", cache=False)
    print("restore record:", restored)
    print("missing statics:", sorted(name for name, data in back.items() if data is None))
    print("uncached static0:", uncached.load("static0"))
    for path in deployment.snapshots():
        print(
            "snapshot", path.name, "holds static0:", snapshot_holds(path, "static0", {"i": 0, "ids": {0, 1}})
        )
    journal = deployment.data_dir / "journal"
    print("journal:", sorted(p.name for p in journal.iterdir()) if journal.exists() else None)
    print(deployment.workers[0].output()[-6000:])
    uncached.close()


def _cas_succeeds(store: SharedStore, doc: str, version: int) -> int:
    try:
        store.put(doc, {"w": "aba"}, expected_version=version)
    except VersionConflict:
        return 0
    except StoreUnavailable:
        return 0  # Redis restarting: nothing applied
    return 1


def _restore_record(deployment: Deployment) -> dict[str, Any] | None:
    """The report of the restore after the last loss (Redis lost the earlier records with it)."""
    try:
        for run in deployment.runs("auto-restore"):
            if run["status"] == "ok":
                return run["result"]  # type: ignore[no-any-return]
        for run in deployment.runs("integrity"):
            if (run.get("result") or {}).get("filled_in"):
                return run["result"]["filled_in"]  # type: ignore[no-any-return]
    except redis.exceptions.ConnectionError:
        return None
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
