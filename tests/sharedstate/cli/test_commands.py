"""The sharedstate command: durability and inspection subcommands, exit codes, messages."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from sharedstate import SharedStore
from sharedstate.cli import main
from sharedstate.redis_server import RedisProcess

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_server: RedisProcess,
    real_redis: redis.Redis,
    tmp_path: Path,
) -> Iterator[Run]:
    """``run(*args)`` -> (exit code, stdout, stderr) with a data dir in tmp_path."""
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("SHAREDSTATE_NAMESPACE", "bot")
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield invoke


@pytest.fixture
def store(real_redis: redis.Redis) -> SharedStore:
    return SharedStore(real_redis, "bot", "test")


def test_snapshot_creates_the_directories(run: Run, store: SharedStore, tmp_path: Path) -> None:
    store.put("config", {"a": 1})
    code, out, _ = run("snapshot")
    assert code == 0 and "1 documents" in out
    [path] = (tmp_path / "data" / "snapshots").iterdir()
    assert path.name in out
    code, out, _ = run("snapshots", "--verify")
    assert code == 0 and path.name in out and "ok" in out


def test_restore_without_a_file_takes_the_newest_valid_and_says_what_it_skipped(
    run: Run, store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store.put("config", {"v": "old"})
    run("snapshot")
    store.put("config", {"v": "new"})
    run("snapshot")
    newest = max((tmp_path / "data" / "snapshots").iterdir(), key=lambda p: p.name)
    newest.write_bytes(newest.read_bytes()[:-30])
    real_redis.flushall()
    code, out, _ = run("restore")
    assert code == 0
    assert f"skipping {newest.name}" in out and "truncated" in out
    assert "restore 1 documents (1 missing" in out
    assert store.load("config") == {"v": "old"}


def test_restore_a_given_file_dry_run_and_subset(
    run: Run, store: SharedStore, real_redis: redis.Redis
) -> None:
    store.put("a", 1)
    store.put("b", 2)
    code, out, _ = run("snapshot")
    snapshot_id = out.split("/")[-1].split(" ")[0]
    store.put("a", 10)
    store.put("c", 30)
    real_redis.delete(store.keys.data("b"), store.keys.meta("b"))  # lost on its own
    code, out, _ = run("restore", snapshot_id, "--dry-run")
    assert code == 0 and "would restore 1 documents (1 missing" in out and "kept 1" in out
    assert "missing  b" in out and store.load("a") == 10 and store.load("b") is None
    code, out, _ = run("restore", snapshot_id)  # fills in: no --yes needed
    assert code == 0 and (store.load("a"), store.load("b"), store.load("c")) == (10, 2, 30)
    code, out, _ = run("restore", snapshot_id, "--force", "--dry-run")
    assert code == 0 and "delete 1" in out and "replace  a" in out and "1 replaced (a roll-back)" in out
    code, _, err = run("restore", snapshot_id, "--force", "--doc", "a")  # stdin is not a terminal
    assert code == 2 and "--yes" in err and store.load("a") == 10
    code, out, _ = run("restore", snapshot_id, "--force", "--doc", "a", "--yes")
    assert code == 0 and store.load("a") == 1 and store.load("c") == 30
    code, out, _ = run("restore", snapshot_id, "--force", "--yes")
    assert code == 0 and store.names() == ["a", "b"]


def test_restore_with_no_snapshots_fails_clearly(run: Run) -> None:
    code, _, err = run("restore")
    assert code == 1 and "no snapshots" in err


def test_verify(run: Run, store: SharedStore, tmp_path: Path) -> None:
    store.put("a", 1)
    run("snapshot")
    [path] = (tmp_path / "data" / "snapshots").iterdir()
    code, out, _ = run("verify", str(path))
    assert code == 0 and out.startswith("OK") and "1 documents" in out
    path.write_bytes(gzip.compress(b'{"not": "ours"}\n'))
    code, _, err = run("verify", path.name)
    assert code == 1 and "BAD" in err and "foreign" in err


def test_import_export(run: Run, store: SharedStore, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.json").write_text('{"a": [1, 2.0, "x"]}')
    (legacy / "users.json").write_text('{"42": {"name": "Ada"}}')
    code, out, _ = run("import", str(legacy))
    assert code == 0 and "imported 2 documents" in out and "matches" in out
    code, out, _ = run("export", str(tmp_path / "exported"))
    assert code == 0 and "exported 2 documents" in out
    for name in ("config.json", "users.json"):
        assert json.loads((tmp_path / "exported" / name).read_text()) == json.loads(
            (legacy / name).read_text()
        )
    store.put("users", {"42": {"name": "Ada", "since": "the import"}})  # newer live data
    code, _, err = run("import", str(legacy))
    assert code == 1 and "already exist" in err and "users" in err and "--overwrite" in err
    assert store.load("users")["42"]["since"] == "the import"  # nothing replaced
    code, _, err = run("import", str(legacy), "--overwrite")  # stdin is not a terminal
    assert code == 2 and "--yes" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run("import", str(legacy), "--overwrite", "--yes")
    assert code == 0 and store.load("users") == {"42": {"name": "Ada"}}
    (legacy / "broken.json").write_text('{\n"a": oops}')
    store.delete("config")
    code, _, err = run("import", str(legacy))
    assert code == 2 and "broken.json: line 2" in err and "nothing was written" in err
    assert store.load("config") is None


def test_import_split_makes_each_registry_a_document(run: Run, store: SharedStore, tmp_path: Path) -> None:
    database = tmp_path / "database.json"
    registries = {
        "buildings": {"b1": {"floors": 3}},
        "interest_pool": {"42": ["b1"]},
        "verification_tokens": {},
        "cluster_contact_state": [1, 2],
    }
    database.write_text(json.dumps(registries))
    code, out, _ = run("import", "--split", str(database))
    assert code == 0 and "imported 4 documents" in out and "matches" in out
    assert {name: store.load(name) for name in registries} == registries
    assert "database" not in store.names()

    database.write_text(json.dumps({"fine": 1, "bad name": 2, "also bad/": 3}))
    store.delete("buildings")
    code, _, err = run("import", "--split", str(database))
    assert code == 2 and "'bad name'" in err and "'also bad/'" in err and "nothing was written" in err
    assert store.load("fine") is None
    database.write_text("[1, 2]")
    code, _, err = run("import", "--split", str(database))
    assert code == 2 and "JSON object" in err
    code, _, err = run("import", str(tmp_path), "--split", str(database))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "either" in err
    code, _, err = run("import")
    assert code == 2 and "either" in err


def test_a_hand_run_snapshot_or_restore_leaves_the_workers_catalogue_alone(
    run: Run, store: SharedStore
) -> None:
    from sharedstate.durability import state

    published = {"updated_at": 1.0, "snapshots": [{"id": "the-workers.jsonl.gz", "status": "ok"}]}
    state.set_catalogue(store, published)
    store.put("a", 1)
    assert run("snapshot")[0] == 0 and run("restore")[0] == 0
    assert state.catalogue(store) == published


def test_snapshot_and_export_name_an_undecodable_document_and_exit_1(
    run: Run, store: SharedStore, real_redis: redis.Redis, tmp_path: Path
) -> None:
    store.put("good", {"a": 1})
    store.put("poison", {"a": 1})
    real_redis.hset(store.keys.data("poison"), "a", b"\xc1")
    code, out, err = run("snapshot")
    assert code == 1 and "1 documents" in out and "left out undecodable document 'poison'" in err
    code, out, err = run("export", str(tmp_path / "out"))
    assert code == 1 and "exported 1 documents" in out and "'poison'" in err
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["good.json"]


def test_inspection(run: Run, store: SharedStore, tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_text('{"ids": [3, 1]}')
    code, out, _ = run("put", "doc", str(tmp_path / "doc.json"))
    assert code == 0 and f"version {store.get('doc').version}" in out
    store.set_field("doc", "set", {2, 1})
    code, out, _ = run("get", "doc")
    assert code == 0 and json.loads(out) == {"ids": [3, 1], "set": [1, 2]}
    code, out, _ = run("ls")
    assert code == 0 and "doc" in out and "object" in out
    code, out, _ = run("history", "doc")
    assert code == 0 and "set_field" in out and "put" in out
    code, _, err = run("get", "missing")
    assert code == 1 and "does not exist" in err
    code, _, err = run("put", "bad name", str(tmp_path / "doc.json"))
    assert code == 2 and "invalid document name" in err
    code, _, err = run("put", "doc", str(tmp_path / "doc.json"), "--expected-version", "1")
    assert code == 1 and "expected version 1" in err


def test_missing_redis_url_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHAREDSTATE_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["ls"]) == 2
    assert "SHAREDSTATE_REDIS_URL" in capsys.readouterr().err


def test_redis_down_is_reported_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sharedstate.redis_server import free_port

    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("SHAREDSTATE_TIMEOUT", "1")
    assert main(["ls"]) == 1
    err = capsys.readouterr().err
    assert "unavailable" in err.lower() and "hunter2" not in err


def test_json_output_delete_and_watch(run: Run, store: SharedStore, tmp_path: Path) -> None:
    store.put("doc", {"ids": {2, 1}, "big": 12345678901234567890})
    code, out, _ = run("get", "doc", "--json")
    body = json.loads(out)
    assert (
        code == 0 and body["data"] == {"ids": [1, 2], "big": 12345678901234567890} and body["name"] == "doc"
    )
    code, out, _ = run("ls", "--json")
    assert code == 0 and [row["name"] for row in json.loads(out)] == ["doc"]
    code, out, _ = run("history", "doc", "--json")
    assert code == 0 and json.loads(out)[0]["op"] == "put"
    code, out, _ = run("snapshots", "--json")
    assert code == 0 and json.loads(out) == []

    writer = threading.Timer(0.3, lambda: store.set_field("doc", "live", True))
    writer.start()
    code, out, _ = run("watch", "doc", "--timeout", "1.5")
    writer.join()
    change = json.loads(out.splitlines()[0])
    assert code == 0 and change["op"] == "set_field" and change["fields"] == {"live": True}

    code, out, _ = run("delete", "doc", "--yes")
    assert code == 0 and "doc" not in store.names()
    code, _, err = run("delete", "doc", "--yes")
    assert code == 1 and "does not exist" in err


def test_tables_are_not_cut_when_piped(run: Run, store: SharedStore) -> None:
    long_name = "registry." + "x" * 150
    store.put(long_name, {"a": 1})
    code, out, _ = run("ls")
    assert code == 0 and long_name in out


def test_watch_waits_for_redis_and_resumes_where_it_was(tmp_path: Path) -> None:
    """An operator's `sharedstate watch` outlives a Redis restart: it says it waits, prints the
    changes made while it was away once Redis is back with its data, and after a restart that
    lost the data (or a flush while it stays up) it says the feed lost changes and goes on from
    now."""
    server = RedisProcess(tmp_path / "redis", appendonly=True).start()
    env = {**os.environ, "SHAREDSTATE_REDIS_URL": server.url, "SHAREDSTATE_NAMESPACE": "ops",
           "SHAREDSTATE_TIMEOUT": "1"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "sharedstate", "watch"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: list[tuple[str, str]] = []  # (stream, line) as they come, kept: lines of the two
    for name, pipe in (("out", process.stdout), ("err", process.stderr)):  # streams interleave
        assert pipe is not None
        threading.Thread(
            target=lambda n=name, p=pipe: [seen.append((n, line)) for line in p], daemon=True
        ).start()

    def expect(stream: str, text: str) -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for got in list(seen):
                if got[0] == stream and text in got[1]:
                    return got[1]
            time.sleep(0.02)
        raise AssertionError(f"no {stream} line with {text!r} in {seen}")

    def write(field: str) -> None:
        with SharedStore.from_url(server.url, namespace="ops", client_name="test") as store:
            store.set_field("doc", field, True)

    try:
        expect("err", "watching (")
        write("before")
        assert json.loads(expect("out", "before"))["fields"] == {"before": True}
        server.stop()  # SIGTERM: Redis rewrites nothing, its AOF holds every change
        expect("err", "waiting for it to come back")
        seen.clear()
        server.start()
        write("while_away")  # may land before the watcher is back: it resumes from its position
        assert json.loads(expect("out", "while_away"))["fields"] == {"while_away": True}
        expect("err", "watching again")
        seen.clear()

        server.stop()
        expect("err", "waiting for it to come back")  # a second time
        shutil.rmtree(server.directory / "appendonlydir")  # Redis comes back empty
        server.start()
        expect("err", "no longer holds changes")
        write("after_loss")
        assert json.loads(expect("out", "after_loss"))["fields"] == {"after_loss": True}
        seen.clear()

        with server.client() as admin:
            admin.flushall()  # Redis loses everything while it stays up: no error to wait out
        write("lost")  # wakes the watch, which finds the feed it was reading gone
        expect("err", "no longer holds changes")
        write("after_flush")
        assert json.loads(expect("out", "after_flush"))["fields"] == {"after_flush": True}
        assert not any(stream == "out" and "lost" in line for stream, line in seen)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        code = process.wait(timeout=10)
        server.stop()
        for pipe in (process.stdout, process.stderr):
            assert pipe is not None
            pipe.close()
    assert code == 0
