"""Configuration from the environment, from_url/from_env, and refusing unusable clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import fakeredis
import pytest
import redis

from sharedstate import AsyncSharedStore, ConfigurationError, SharedStore
from sharedstate.connection import mask_url
from sharedstate.redis_server import RedisProcess
from sharedstate.settings import Settings, parse_keep, parse_tokens


def test_from_env_needs_a_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHAREDSTATE_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigurationError, match="SHAREDSTATE_REDIS_URL"):
        SharedStore.from_env()
    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        AsyncSharedStore.from_env()


def test_platform_names_are_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://fallback:6379/0")
    monkeypatch.setenv("RAILWAY_VOLUME_MOUNT_PATH", "/vol")
    monkeypatch.setenv("PORT", "9999")
    settings = Settings.load()
    assert settings.require_redis_url() == "redis://fallback:6379/0"
    assert str(settings.data_dir) == "/vol" and settings.api_port == 9999
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", "redis://primary:6379/0")
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", "/data")
    monkeypatch.setenv("SHAREDSTATE_API_PORT", "8081")
    settings = Settings.load()
    assert settings.require_redis_url() == "redis://primary:6379/0"
    assert str(settings.data_dir) == "/data" and settings.api_port == 8081


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHAREDSTATE_NAMESPACE", "SHAREDSTATE_DATA_DIR", "RAILWAY_VOLUME_MOUNT_PATH", "PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    assert settings.namespace == "default"
    assert str(settings.data_dir) == "data"
    assert settings.snapshot_interval == 60
    assert settings.verify_cron == "0 */6 * * *"
    assert settings.verify_interval is None and settings.verify_job is None
    assert settings.verify_timeout == 180 and settings.verify_retries == 0
    assert parse_keep(settings.snapshot_keep) == {"last": 10, "hourly": 24, "daily": 7, "weekly": 4}
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8080)


def test_invalid_settings_name_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREDSTATE_API_TOKENS", "admin:s3cret-token,bogus:other-secret")
    with pytest.raises(ConfigurationError) as info:
        Settings.load()
    assert "API_TOKENS" in str(info.value)
    assert "s3cret" not in str(info.value) and "other-secret" not in str(info.value)
    monkeypatch.delenv("SHAREDSTATE_API_TOKENS")
    monkeypatch.setenv("SHAREDSTATE_NAMESPACE", "has space")
    with pytest.raises(ConfigurationError, match="NAMESPACE"):
        Settings.load()


def test_tokens_and_keep_parsing() -> None:
    assert parse_tokens("read:r1, write:w1,admin:a1") == {"r1": "read", "w1": "write", "a1": "admin"}
    with pytest.raises(ValueError, match="role:token"):
        parse_tokens("root:x")
    assert parse_keep("last=3") == {"last": 3, "hourly": 0, "daily": 0, "weekly": 0}
    with pytest.raises(ValueError):
        parse_keep("monthly=3")


def test_secrets_are_masked() -> None:
    assert mask_url("redis://user:pa55@host:6380/0") == "redis://user:***@host:6380/0"
    assert mask_url("redis://:pa55@host/0") == "redis://:***@host/0"
    assert mask_url("redis://host:6379") == "redis://host:6379"
    settings = Settings(redis_url="redis://:pa55@host/0", api_tokens="admin:tok3n")  # type: ignore[arg-type]
    assert "pa55" not in repr(settings) and "tok3n" not in repr(settings)


def test_from_url_rejects_non_redis_urls_without_echoing_secrets() -> None:
    with pytest.raises(ConfigurationError) as info:
        SharedStore.from_url("http://user:hunter2@host/")
    assert "hunter2" not in str(info.value)


def test_from_env_connects(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("SHAREDSTATE_NAMESPACE", "envns")
    monkeypatch.setenv("SHAREDSTATE_CLIENT_NAME", "cron")
    with SharedStore.from_env() as store:
        store.put("x", 1)
        assert store.get("x").updated_by == "cron"
    assert real_redis.exists("ss:{envns}:d:x")

    async def go() -> None:
        astore = AsyncSharedStore.from_env(namespace="other")
        async with astore:
            await astore.put("y", 2)
            assert (await astore.get("y")).data == 2

    asyncio.run(go())
    assert real_redis.exists("ss:{other}:d:y")


def test_clients_that_decode_responses_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="decode_responses"):
        SharedStore(fakeredis.FakeRedis(decode_responses=True))
    with pytest.raises(ConfigurationError, match="decode_responses"):
        SharedStore(redis.Redis(decode_responses=True))


def test_unknown_options_are_refused() -> None:
    with pytest.raises(TypeError, match="max_document_byte"):
        SharedStore(fakeredis.FakeRedis(), max_document_byte=5)


def test_a_bare_admin_token_joins_the_role_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREDSTATE_API_TOKENS", "read:r1")
    monkeypatch.setenv("SHAREDSTATE_API_ADMIN_TOKEN", "generated-by-the-platform")
    assert Settings.load().tokens() == {"r1": "read", "generated-by-the-platform": "admin"}


def test_the_backup_target_is_a_directory_from_backup_url_or_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHAREDSTATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SHAREDSTATE_BACKUP_URL", raising=False)
    assert Settings.load().snapshot_dir == tmp_path / "data" / "snapshots"
    monkeypatch.setenv("SHAREDSTATE_BACKUP_URL", str(tmp_path / "backups"))
    assert Settings.load().snapshot_dir == tmp_path / "backups" / "snapshots"
    monkeypatch.setenv("SHAREDSTATE_BACKUP_URL", f"file://{tmp_path}/with%20space")
    assert Settings.load().snapshot_dir == tmp_path / "with space" / "snapshots"
    for url, said in [
        ("s3://bucket/prefix", "names a bucket, not a directory"),
        ("s3://user:secret@bucket/prefix", "credentials come from the AWS"),
        ("file://otherhost/data", "local directory"),
        ("ftp://user:secret@host/x", "unsupported scheme 'ftp'"),
    ]:
        monkeypatch.setenv("SHAREDSTATE_BACKUP_URL", url)
        settings = Settings.load()  # a bot loading the same variables is not refused
        with pytest.raises(ConfigurationError, match=said) as caught:
            _ = settings.snapshot_dir
        assert "secret" not in str(caught.value)


def test_a_snapshot_by_hand_lands_in_the_backup_directory(
    redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "SHAREDSTATE_REDIS_URL": redis_server.url,
        "SHAREDSTATE_NAMESPACE": "backupdir",
        "SHAREDSTATE_DATA_DIR": str(tmp_path / "data"),
        "SHAREDSTATE_BACKUP_URL": f"file://{tmp_path}/b",
    }
    with SharedStore.from_url(redis_server.url, "backupdir") as store:
        store.put("config", {"a": 1})
    done = subprocess.run([sys.executable, "-m", "sharedstate", "snapshot"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [p.suffix for p in (tmp_path / "b" / "snapshots").iterdir() if not p.name.startswith(".")]
    assert not (tmp_path / "data" / "snapshots").exists() or not any(
        (tmp_path / "data" / "snapshots").iterdir()
    )
    env["SHAREDSTATE_BACKUP_URL"] = "s3://user:secret@bucket/prefix"
    refused = subprocess.run([sys.executable, "-m", "sharedstate", "snapshot"], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "secret" not in refused.stderr
