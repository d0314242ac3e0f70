"""Every durability operation on both kinds of backup target: a directory and a real bucket
(an S3-compatible server over HTTP, the same requests Railway's buckets or MinIO get)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from sharedstate import SharedStore, VersionConflict
from sharedstate.durability.format import verify
from sharedstate.durability.restore import auto_restore, restore_newest
from sharedstate.durability.snapshots import (
    apply_retention,
    list_snapshots,
    publish_catalogue,
    take_snapshot,
)
from sharedstate.durability.target import SNAPSHOTS, Target
from sharedstate.errors import SnapshotError
from sharedstate.redis_server import RedisProcess
from tests.s3 import S3Server
from tests.sharedstate.durability.conftest import SAMPLE, fill


def everything(store: SharedStore) -> dict[str, Any]:
    return {name: store.get(name).data for name in store.names()}


def test_snapshot_wipe_restore_through_the_target(
    store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    fill(store)
    held = store.get("config")
    result = take_snapshot(store, target)
    listed = list_snapshots(target, "bot")
    assert [entry.id for entry in listed] == [result.path.name] and listed[0].error is None
    assert listed[0].size == result.size > 0
    assert verify(listed[0].path).header.documents == len(SAMPLE)
    real_redis.flushall()
    report = auto_restore(store, target)
    assert report is not None and sorted(report.restored) == sorted(SAMPLE)
    assert everything(store) == SAMPLE
    with pytest.raises(VersionConflict):
        store.put("config", {"stale": True}, expected_version=held.version)


def test_retention_and_catalogue_through_the_target(store: SharedStore, target: Target) -> None:
    store.put("a", 1)
    made = [take_snapshot(store, target).path.name for _ in range(4)]
    removed = apply_retention(target, "bot", {"last": 2})
    assert sorted(source.name for source in removed) == sorted(made[:2])
    assert sorted(entry.id for entry in list_snapshots(target, "bot")) == sorted(made[2:])
    rows = publish_catalogue(store, target, {made[-1]: "ok"})
    assert [row["id"] for row in rows] == [made[3], made[2]] and rows[0]["status"] == "ok"


def test_an_altered_snapshot_on_the_target_is_never_restored(
    store: SharedStore, real_redis: redis.Redis, target: Target
) -> None:
    store.put("a", {"v": 1})
    good = take_snapshot(store, target).path.name
    store.put("a", {"v": 2})
    bad = take_snapshot(store, target).path.name
    with gzip.open(_local_copy(target, bad)) as stream:
        text = stream.read().replace(b'"v":2', b'"v":9')
    target.write(SNAPSHOTS, bad, gzip.compress(text))
    real_redis.flushall()
    report = restore_newest(store, target)
    assert report is not None and report.snapshot == good
    assert [snapshot for snapshot, _ in report.skipped] == [bad]
    assert store.get("a").data == {"v": 1}


def _local_copy(target: Target, name: str) -> Path:
    source = target.source(SNAPSHOTS, name)
    if isinstance(source, Path):
        return source
    copy = target.staging(SNAPSHOTS) / f"copy-{name}"
    with source.open() as stream:
        copy.write_bytes(stream.read())
    return copy


def test_the_commands_use_a_bucket_from_backup_url(
    redis_server: RedisProcess, real_redis: redis.Redis, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.bucket()
    env = {
        **s3_server.env(),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SHAREDSTATE_REDIS_URL": redis_server.url,
        "SHAREDSTATE_NAMESPACE": "bkt",
        "SHAREDSTATE_DATA_DIR": str(tmp_path / "data"),
        "SHAREDSTATE_BACKUP_URL": f"s3://{bucket}/team/bot",
    }
    with SharedStore.from_url(redis_server.url, "bkt") as store:
        store.put("config", {"a": 1})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sharedstate", *args], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    made = run("snapshot")
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "data").exists()  # the worker needs no volume
    listed = run("snapshots", "--json", "--verify")
    assert listed.returncode == 0 and '"status": "ok"' in listed.stdout, listed.stdout + listed.stderr
    real_redis.flushall()
    restored = run("restore")
    assert restored.returncode == 0, restored.stderr
    with SharedStore.from_url(redis_server.url, "bkt") as store:
        assert store.get("config").data == {"a": 1}
    assert s3_server.target(bucket, "team/bot").list(SNAPSHOTS)


def test_an_unreachable_bucket_is_one_line_without_the_endpoint_or_secret(
    redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SHAREDSTATE_REDIS_URL": redis_server.url,
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret-key",
        "AWS_ENDPOINT_URL_S3": "http://10.255.255.1:9",
        "AWS_S3_FORCE_PATH_STYLE": "true",
        "SHAREDSTATE_BACKUP_URL": "s3://some-bucket/x",
    }
    done = subprocess.run([sys.executable, "-m", "sharedstate", "snapshots"], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "s3://some-bucket/x" in done.stderr
    for secret in ("10.255.255.1", "very-secret", "AKIA"):
        assert secret not in done.stderr


def test_a_bucket_listing_reads_each_header_once(
    store: SharedStore, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharedstate.durability import snapshots

    target = s3_server.target()
    store.put("a", 1)
    take_snapshot(store, target)
    first = list_snapshots(target, "bot")
    reads: list[object] = []
    real = snapshots.read_header
    monkeypatch.setattr(snapshots, "read_header", lambda source: reads.append(source) or real(source))
    again = list_snapshots(target, "bot")
    assert [entry.header for entry in again] == [entry.header for entry in first] and reads == []
    take_snapshot(store, target)
    assert len(list_snapshots(target, "bot")) == 2 and len(reads) == 1  # only the new one is read


def test_a_bad_s3_url_is_refused_in_one_line() -> None:
    from sharedstate.errors import ConfigurationError
    from sharedstate.settings import parse_backup_url

    for url in ("s3://user:secret@bucket/x", "s3://UPPER/x", "s3://b/x", "s3://bucket/a/../b"):
        with pytest.raises(ConfigurationError) as caught:
            parse_backup_url(url, Path("."))
        assert "secret" not in str(caught.value) and "\n" not in str(caught.value)
    assert parse_backup_url("s3://my-bucket/team/bot/", Path(".")) == ("my-bucket", "team/bot")
    assert parse_backup_url("s3://my-bucket", Path(".")) == ("my-bucket", "")


def test_snapshot_errors_name_the_target_not_the_endpoint(s3_server: S3Server) -> None:
    target = s3_server.target()
    with pytest.raises(SnapshotError) as caught:
        verify(target.source(SNAPSHOTS, "bot-none.jsonl.gz"))
    message = str(caught.value)
    assert message.startswith(f"snapshot {target.description}/snapshots/") and "127.0.0.1" not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_endpoint_by_address_or_dotless_name_needs_no_path_style_setting(
    s3_server: S3Server, host: str
) -> None:
    """``<bucket>.127.0.0.1`` is no host at all (obstore panicked on it and took the worker down),
    and ``<bucket>.minio`` never resolves in compose: such endpoints get path-style requests
    without ``AWS_S3_FORCE_PATH_STYLE``."""
    from sharedstate.durability.bucket import BucketTarget

    env = {key: value for key, value in s3_server.env().items() if key != "AWS_S3_FORCE_PATH_STYLE"}
    endpoint = env["AWS_ENDPOINT_URL_S3"]
    env["AWS_ENDPOINT_URL_S3"] = endpoint.replace("127.0.0.1", host)
    target = BucketTarget.from_environment(s3_server.bucket(), "p", env)
    target.write("journal", "one", b"data")
    assert [item.name for item in target.list("journal")] == ["one"]
