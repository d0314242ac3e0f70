"""Durability under a running worker, tried as an adversary would: each kind of partial loss,
eviction, a paused restore, a poison document, a very wide document, hostile snapshot files, a
SIGKILLed child. Nothing newer is ever rolled back; nothing is left behind."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sharedstate import SharedStore, VersionConflict
from sharedstate.durability.format import read_snapshot
from sharedstate.redis_server import RedisProcess
from tests.deployments import Deployment, processes_of, wait_for

DOCS = {f"doc{i}": {"i": i, "v": "snapshotted"} for i in range(10)}


def _snapshotted(deployment: Deployment, name: str, data: Any) -> bool:
    from tests.worker.test_worker import snapshot_holds

    return any(snapshot_holds(path, name, data) for path in deployment.snapshots())


def _everything(store: SharedStore) -> dict[str, Any]:
    return {name: store.load(name) for name in store.names()}


@pytest.mark.parametrize("loss", ["marker", "meta", "document", "floor", "names", "eviction"])
def test_a_partial_loss_is_filled_in_and_rolls_nothing_back(
    redis_server: RedisProcess, tmp_path: Path, loss: str
) -> None:
    with Deployment(redis_server, tmp_path) as deployment:
        worker = deployment.start(snapshot_interval=1, restore_check_interval=1, integrity_interval=2)
        store = deployment.store
        store.put_all(DOCS)
        wait_for(lambda: _snapshotted(deployment, "doc9", DOCS["doc9"]), 20, "a snapshot of every document")
        # newer than every snapshot from here on: the snapshot job is kept from catching up
        newer = {name: {**data, "v": "newer"} for name, data in DOCS.items()}
        client = deployment.client
        keys = store.keys
        held = {name: store.put(name, data) for name, data in newer.items()}
        lost: set[str] = set()
        if loss == "marker":
            client.delete(keys.marker)
        elif loss == "meta":
            client.delete(keys.meta("doc3"))  # its data stays, orphaned
            lost = {"doc3"}
        elif loss == "document":
            client.delete(keys.data("doc4"), keys.meta("doc4"), keys.history("doc4"))
            client.srem(keys.names, "doc4")
            lost = {"doc4"}
        elif loss == "floor":
            client.delete(keys.floor)
        elif loss == "names":
            client.delete(keys.names)
        else:  # an evicting maxmemory-policy under memory pressure evicts keys on its own
            client.config_set("maxmemory-policy", "allkeys-random")
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", used + 100_000)
            try:
                evicted = int(client.info("stats")["evicted_keys"])
                for i in range(2000):  # until about 40 keys were evicted: some documents', some others'
                    client.set(f"filler:{i}", "x" * 2000)
                    if int(client.info("stats")["evicted_keys"]) - evicted >= 40:
                        break
            finally:
                client.config_set("maxmemory", 0)
                client.config_set("maxmemory-policy", "noeviction")
            lost = {
                name
                for name in DOCS
                if not (client.exists(keys.meta(name)) and client.exists(keys.data(name)))
            }
        # every document comes back; those Redis kept are the newer copies, never rolled back; a
        # lost one comes from the newest snapshot, which may have caught the newer copy already

        def right(name: str, data: Any) -> bool:
            return data == newer[name] or (name in lost and data == DOCS[name])

        def filled_in() -> bool:
            return all(right(name, store.load(name)) for name in DOCS) and set(store.names()) >= set(DOCS)

        try:
            wait_for(filled_in, 20, f"every document back after losing {loss} ({sorted(lost)} lost)")
        except AssertionError:
            uncached = SharedStore(client, deployment.namespace, "explain", cache=False)
            print({name: store.load(name) for name in DOCS}, store.names())
            print("uncached:", {name: uncached.load(name) for name in DOCS}, uncached.names())
            print("integrity runs:", deployment.runs("integrity")[:3])
            print(
                "snapshots:",
                [
                    (p.name, sorted(record.name for record in read_snapshot(p)[1]))
                    for p in deployment.snapshots()
                ],
            )
            print(worker.output()[-6000:])
            raise
        for name in lost:  # the restored copy has a fresh version: a pre-loss version never matches
            with pytest.raises(VersionConflict):
                store.put(name, {"stale": True}, expected_version=held[name])
        time.sleep(3)  # more checks run meanwhile: still nothing rolled back
        assert all(right(name, store.load(name)) for name in DOCS)
        assert all(store.load(name) == newer[name] for name in DOCS if name not in lost)
        print(f"\n[loss of {loss}] lost {sorted(lost)}; all filled in, nothing newer rolled back")


def test_a_paused_restore_never_writes_after_its_lease(redis_server: RedisProcess, tmp_path: Path) -> None:
    store = SharedStore(redis_server.client(), "paused", "test")
    names = [f"d{i:05d}" for i in range(20_000)]
    for start in range(0, len(names), 1000):
        store.put_all({name: {"v": "snapshot", "pad": "x" * 200} for name in names[start : start + 1000]})
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("SHAREDSTATE_")},
        "SHAREDSTATE_REDIS_URL": redis_server.url,
        "SHAREDSTATE_NAMESPACE": "paused",
        "SHAREDSTATE_DATA_DIR": str(tmp_path),
        "SHAREDSTATE_RESTORE_LEASE_TTL": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "sharedstate", "snapshot"], env=env, check=True, capture_output=True
    )
    restore = subprocess.Popen(
        [sys.executable, "-m", "sharedstate", "restore", "--force", "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    client = redis_server.client()

    def under_way() -> bool:  # the forced restore rewrites every document in order: a few batches in
        newest = client.xrevrange(store.keys.feed, count=1)
        return bool(newest) and newest[0][1][b"o"] == b"restore" and newest[0][1][b"n"] >= b"d01000"

    wait_for(under_way, 60, "the restore under way")
    restore.send_signal(signal.SIGSTOP)
    try:
        time.sleep(2.5)  # past its 1 s lease
        later = names[-200:]  # not reached yet: without the fence the restore would overwrite them
        written = {name: store.set_field(name, "v", "written after the lease expired") for name in later}
    finally:
        restore.send_signal(signal.SIGCONT)
    _, err = restore.communicate(timeout=60)
    assert restore.returncode != 0 and b"lost its lock" in err, err
    overwritten = [name for name in later if store.load(name)["v"] != "written after the lease expired"]
    print(f"\n[paused restore] {len(written)} writes after its lease expired; {len(overwritten)} overwritten")
    assert overwritten == []
    client.close()
    store.redis.close()


def test_a_poison_document_stops_no_backup(redis_server: RedisProcess, tmp_path: Path) -> None:
    with Deployment(redis_server, tmp_path) as deployment:
        deployment.start(snapshot_interval=1)
        store = deployment.store
        store.put_all(DOCS)
        deployment.client.hset(store.keys.data("doc5"), "i", b"\xc1")  # never valid msgpack
        store.put("after", {"written": "after the poison"})

        def a_snapshot_without_the_poison() -> Any:
            for run in deployment.runs("snapshot"):
                result = run.get("result") or {}
                if run["status"] == "ok" and result.get("undecodable"):
                    return result
            return None

        result = wait_for(a_snapshot_without_the_poison, 20, "a snapshot that left the poison out")
        assert [item["name"] for item in result["undecodable"]] == ["doc5"]
        assert result["documents"] == len(DOCS)  # the 9 good ones and "after"
        assert _snapshotted(deployment, "after", {"written": "after the poison"})


@pytest.mark.timeout(600)
def test_a_document_at_the_size_limit_with_1_5m_fields_is_snapshotted_and_restored(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    wide = {f"{i:x}": i % 100 for i in range(1_500_000)}  # ~15 MiB encoded, under the 16 MiB limit
    with Deployment(redis_server, tmp_path) as deployment:
        loader = SharedStore.from_url(redis_server.url, deployment.namespace, "loader", timeout=120)
        loader.put("wide", wide)
        loader.put("small", {"a": 1})
        loader.close()
        worker = deployment.start(snapshot_interval=2, restore_check_interval=1)
        wait_for(lambda: _snapshotted(deployment, "small", {"a": 1}), 120, "a snapshot of the wide document")
        deployment.client.flushall()
        started = time.monotonic()
        store = SharedStore.from_url(redis_server.url, deployment.namespace, "bot")  # the default timeout
        wait_for(lambda: store.names() == ["small", "wide"], 120, "the restore")  # written in name order
        seconds = time.monotonic() - started
        assert store.load("wide") == wide
        assert "not reachable" not in worker.output() and "timed out" not in worker.output().lower()
        store.close()
        print(f"\n[wide document] 1.5M fields restored {seconds:.1f} s after the loss")


def test_hostile_files_in_the_snapshots_directory(redis_server: RedisProcess, tmp_path: Path) -> None:
    with Deployment(redis_server, tmp_path) as deployment:
        snapdir = deployment.data_dir / "snapshots"
        worker = deployment.start(snapshot_interval=1, restore_check_interval=1)
        store = deployment.store
        store.put_all(DOCS)
        wait_for(lambda: _snapshotted(deployment, "doc9", DOCS["doc9"]), 20, "a snapshot")
        real = max(deployment.snapshots(), key=lambda p: p.stat().st_mtime)
        lines = gzip.decompress(real.read_bytes()).splitlines(keepends=True)
        # a file dated next year, as a worker whose clock was ahead would write, holding other data
        future = snapdir / f"{deployment.namespace}-20991231T000000000Z-future.jsonl.gz"
        future.write_bytes(gzip.compress(lines[0].replace(b'"created_at":', b'"created_at":4102000000.0,"x":')
                                         + b"".join(lines[1:])))  # fmt: skip
        bomb = snapdir / f"{deployment.namespace}-20991231T000000001Z-bomb00.jsonl.gz"
        soon = f'"created_at":{time.time() + 60},"x":'.encode()  # the newest, within the clock slack
        with gzip.open(bomb, "wb", compresslevel=9) as out:
            out.write(lines[0].replace(b'"created_at":', soon))
            for _ in range(64):
                out.write(b"y" * (1 << 24))  # 1 GB of one line, from about 1 MB
        (snapdir / f"{deployment.namespace}-20991231T000000002Z-link00.jsonl.gz").symlink_to(real)
        deployment.client.flushall()
        wait_for(lambda: _everything(store) == DOCS, 20, "the restore from the real snapshot")
        rss_mb = _rss_mb(worker.process.pid)
        assert rss_mb < 300, f"the worker grew to {rss_mb:.0f} MB"
        print(f"\n[hostile files] restored from {real.name}; worker RSS {rss_mb:.0f} MB")


def _rss_mb(supervisor: int) -> float:
    total = 0.0
    for pid in [supervisor, *processes_of(supervisor)]:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = max(total, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return total


def test_a_sigkilled_child_leaves_nothing_behind(redis_server: RedisProcess, tmp_path: Path) -> None:
    with Deployment(redis_server, tmp_path) as deployment:
        worker = deployment.start(snapshot_interval=60)
        supervisor = worker.process.pid

        def rq_worker_with_scheduler() -> int | None:
            for pid in processes_of(supervisor):
                if b"rqworker" in _cmdline(pid):
                    children = _children(pid)
                    if children:  # RQ's scheduler process is up
                        return pid
            return None

        victim = wait_for(rq_worker_with_scheduler, 30, "an RQ worker with its scheduler")
        left = _children(victim)
        os.kill(victim, signal.SIGKILL)  # an OOM kill

        def all_gone() -> bool:
            return not any(_alive(pid) for pid in left) and not _alive(victim)

        wait_for(all_gone, 15, f"the processes {left} the killed worker left")
        replacement = wait_for(rq_worker_with_scheduler, 30, "the RQ worker started again")
        assert replacement != victim
        wait_for(lambda: not [pid for pid in _children(supervisor) if _state(pid) == "Z"], 10, "no zombie")
        print(f"\n[SIGKILL of an RQ worker] its {len(left)} process(es) killed and reaped; started again")


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty once it is gone (a job's process ends at any time)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _state(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]).decode()
    except OSError:
        return "gone"


def _alive(pid: int) -> bool:
    return _state(pid) not in ("gone", "Z")
