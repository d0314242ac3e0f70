"""SIGKILL at random moments of snapshot runs: never a file that verifies but is wrong, and
never the loss of the last good snapshot."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import redis

from sharedstate import SharedStore
from sharedstate.durability.format import read_snapshot
from sharedstate.durability.snapshots import clean_temp_files, list_snapshots, take_snapshot
from sharedstate.errors import SnapshotError
from sharedstate.redis_server import RedisProcess

RUNS = 20
SNAPSHOT = (
    "import sys; from sharedstate.cli import main; print('go', flush=True); sys.exit(main(['snapshot']))"
)


def _run(env: dict[str, str], kill_after: float | None) -> tuple[float, int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SNAPSHOT], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"go\n"  # imports done: the snapshot starts now
    started = time.monotonic()
    if kill_after is not None:
        time.sleep(kill_after)  # the random moment of the kill, not a synchronisation
        proc.kill()
    code = proc.wait()
    proc.stdout.close()
    return time.monotonic() - started, code


def test_sigkill_during_snapshots(
    redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store = SharedStore(real_redis, "bot")
    for start in range(0, 4000, 500):
        store._run_many(
            [
                store._core.put(f"doc{i:05d}", {"i": i, "pad": "x" * 1000}, None)
                for i in range(start, start + 500)
            ],
            "fill",
        )
    expected = {name: (store.get(name).version, store.get(name).data) for name in store.names()}
    env = {
        **os.environ,
        "SHAREDSTATE_REDIS_URL": redis_server.url,
        "SHAREDSTATE_NAMESPACE": "bot",
        "SHAREDSTATE_DATA_DIR": str(tmp_path),
        "SHAREDSTATE_SNAPSHOT_KEEP": "last=2",
    }
    snapdir = tmp_path / "snapshots"
    first = take_snapshot(store, snapdir).path
    duration, code = _run(env, None)
    assert code == 0
    rng = random.Random(1234)
    outcomes = []
    for _ in range(RUNS):
        _, code = _run(env, rng.uniform(0, duration * 1.1))
        outcomes.append(code)
        good = []
        for entry in list_snapshots(snapdir):
            try:
                header, records = read_snapshot(entry.path)
                content = {record.name: (record.version, record.data) for record in records}
            except SnapshotError:
                continue
            assert content == expected, f"{entry.id} verifies but is wrong"
            assert header.documents == len(expected)
            good.append(entry)
        assert good, "the last good snapshot was lost"
    assert -9 in outcomes  # most runs were killed; some may have finished first
    assert first.exists() or len(list_snapshots(snapdir)) >= 1
    clean_temp_files(snapdir, older_than=0)
    assert not [path for path in snapdir.iterdir() if path.name.startswith(".")]
