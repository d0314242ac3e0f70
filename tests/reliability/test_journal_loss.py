"""Redis with persistence off, killed -9 and restarted empty under a writer: the journal brings
back every write acknowledged more than a second before the kill, on a directory and on a
bucket; and ``restore --at`` reproduces the state at random times of a history."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from sharedstate import SharedStore, StoreUnavailable
from sharedstate.redis_server import RedisProcess
from tests.deployments import Deployment, wait_for
from tests.s3 import S3Server

pytestmark = pytest.mark.reliability

KILLS = 10
WINDOW = 1.0  # seconds: writes acknowledged before kill - WINDOW must all come back


def _backup(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[dict[str, str], dict[str, str]]:
    """(settings, extra environment) of a backup target of ``kind``."""
    if kind == "directory":
        return {"backup_url": f"file://{tmp_path}/backups"}, {}
    server: S3Server = request.getfixturevalue("s3_server")
    return {"backup_url": f"s3://{server.bucket()}/bot"}, server.env()


class Writer:
    """Puts a new document about every 3 ms (>= 200 acknowledged writes a second), recording when
    each was acknowledged."""

    def __init__(self, url: str, namespace: str) -> None:
        self.store = SharedStore.from_url(
            url, namespace, "writer", timeout=2.0, stale_reads=False, cache=False
        )
        self.acked: list[tuple[float, str, int]] = []  # (acknowledged at, name, value)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._write, daemon=True)
        self.sequence = 0

    def _write(self) -> None:
        while not self.stop.is_set():
            self.sequence += 1
            name = f"w{self.sequence}"
            try:
                self.store.put(name, {"i": self.sequence})
                self.acked.append((time.monotonic(), name, self.sequence))
            except StoreUnavailable:
                time.sleep(0.02)
            time.sleep(0.003)

    def rate(self, seconds: float) -> float:
        now = time.monotonic()
        return sum(1 for at, _, _ in self.acked if at > now - seconds) / seconds


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["directory", "bucket"])
def test_redis_killed_with_persistence_off_loses_at_most_a_second(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings, extra = _backup(kind, tmp_path, request)
    server = RedisProcess(tmp_path / "redis")  # --save "" and no AOF: a kill loses everything
    server.start()
    deployment = Deployment(server, tmp_path)
    deployment.start(extra, snapshot_interval=600, restore_check_interval=1, **settings)
    writer = Writer(server.url, deployment.namespace)
    checker = SharedStore.from_url(server.url, deployment.namespace, "checker", timeout=2.0, cache=False)
    windows: list[float] = []
    late: list[str] = []
    lost: set[str] = set()
    try:
        wait_for(lambda: _journal_running(deployment), 60, "the journal")
        writer.thread.start()
        for _ in range(KILLS):
            time.sleep(2.0)
            assert writer.rate(1.0) >= 200, f"the writer managed {writer.rate(1.0):.0f} writes/s"
            killed = time.monotonic()
            server.restart(keep_data=False)  # SIGKILL, then an empty server on the same port
            restarted = time.monotonic()
            wait_for(lambda: _restored(deployment), 30, "the automatic restore")
            # every write acknowledged until the old server was surely dead (the writer keeps going:
            # one acknowledged while the kill lands is this kill's to lose, not the next one's)
            acked = [write for write in list(writer.acked) if write[0] < restarted]
            held = set(_names(checker))
            # a write lost at an earlier kill (inside its window) stays lost: counted there only
            missing = [(at, name) for at, name, _ in acked if name not in held and name not in lost]
            lost.update(name for _, name in missing)
            windows.append(killed - min(at for at, _ in missing) if missing else 0.0)
            late += [name for at, name in missing if at < killed - WINDOW]
        for _, name, value in writer.acked[:2000:20]:  # restored with their values
            if name not in lost:
                assert checker.get(name).data == {"i": value}
    finally:
        writer.stop.set()
        writer.thread.join(10)
        writer.store.close()
        checker.close()
        deployment.close()
        server.stop()
    print(
        f"\n[{kind}: redis kill -9, persistence off, x{KILLS}] acknowledged writes lost per kill, as the "
        f"time before the kill of the oldest one lost (s): {[round(w, 3) for w in windows]}; lost from "
        f"more than {WINDOW} s before a kill: {len(late)}"
    )
    assert late == []


def _journal_running(deployment: Deployment) -> bool:
    raw = deployment.client.get(f"ss:{{{deployment.namespace}}}:sys:journal")
    return raw is not None


def _restored(deployment: Deployment) -> bool:
    try:
        return any(run["status"] == "ok" for run in deployment.runs("auto-restore"))
    except redis.exceptions.ConnectionError:
        return False


def _names(store: SharedStore) -> list[str]:
    return store.names()


@pytest.mark.timeout(1800)
def test_restore_at_reproduces_the_state_at_random_times(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A 10-minute history of random writes, into two namespaces whose workers journal to a
    directory and to a bucket; ``sharedstate restore --at T`` then rebuilds, for 20 random T, on
    each, exactly the state a model kept by the test had at T."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    rng = random.Random(18)
    seconds = float(os.environ.get("SHAREDSTATE_TEST_HISTORY_SECONDS", "600"))
    sides = []
    for kind in ("directory", "bucket"):
        (tmp_path / kind).mkdir()
        settings, extra = _backup(kind, tmp_path / kind, request)
        deployment = Deployment(server, tmp_path / kind)
        # every snapshot kept: a time early in the history has its snapshot
        deployment.start(extra, snapshot_interval=30, snapshot_keep="last=1000", **settings)
        store = SharedStore.from_url(server.url, deployment.namespace, "history", cache=False)
        sides.append((kind, deployment, store, deployment.env(extra, **settings)))
    model: dict[str, Any] = {}
    previous: dict[str, Any] = {}
    states: list[tuple[float, float, dict[str, Any]]] = []  # (from, until, state) between writes
    try:
        for _, deployment, _, _ in sides:
            wait_for(lambda deployment=deployment: _journal_running(deployment), 60, "the journal")
        ended = time.time() + seconds
        last = time.time()
        while time.time() < ended:
            time.sleep(rng.uniform(0.01, 0.2))
            sent = time.time()
            name = f"d{rng.randrange(12)}"
            op = rng.random()
            if op < 0.35:
                value = {"n": rng.randrange(100), "tags": {rng.randrange(5) for _ in range(3)}}
                write = lambda store, name=name, value=value: store.put(name, value)  # noqa: E731
                model[name] = value
            elif op < 0.7:
                key, number = f"k{rng.randrange(4)}", rng.randrange(1000)
                write = lambda store, name=name, key=key, number=number: store.set_field(name, key, number)  # noqa: E731
                model[name] = {**model.get(name, {}), key: number}
            elif op < 0.85:
                changes = {f"m{rng.randrange(3)}": rng.random()}
                write = lambda store, name=name, changes=changes: store.merge(name, changes)  # noqa: E731
                model[name] = {**model.get(name, {}), **changes}
            elif name in model:
                write = lambda store, name=name: store.delete(name)  # noqa: E731
                del model[name]
            else:
                continue
            for _, _, store, _ in sides:
                write(store)
            # the state before this write held from the previous acknowledgement until it was sent
            states.append((last, sent, previous))
            previous = {key: _copy(value) for key, value in model.items()}
            last = time.time()
        time.sleep(1.5)  # the journal flushes within a second
        rng.shuffle(states)
        checked = 0
        for before, after, expected in states:
            if after - before < 0.02:
                continue
            at = (before + after) / 2  # between two writes: the state there is exact
            results = []
            for kind, _, store, env in sides:
                command = [sys.executable, "-m", "sharedstate", "restore", "--at", f"{at:.6f}", "--yes"]
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
                results.append((kind, done, store))
            if any("complete by" in done.stderr for _, done, _ in results):
                continue  # before the first snapshot was complete
            for kind, done, store in results:
                assert done.returncode == 0, (kind, done.stdout + done.stderr)
                assert {name: store.get(name).data for name in store.names()} == expected, (
                    kind,
                    at,
                    done.stdout,
                )
            checked += 1
            if checked == 20:
                break
        assert checked == 20
    finally:
        for _, deployment, store, _ in sides:
            store.close()
            deployment.close()
        server.stop()
    print(
        f"\n[restore --at] {checked} random times of a {seconds:.0f} s history ({len(states)} writes) "
        "rebuilt exactly, on a directory and on a bucket"
    )


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, set):
        return set(value)
    return value
