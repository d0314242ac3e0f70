"""The drop-in load_json_file / save_json_file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sharedstate import InvalidDocument, SharedStore, compat
from sharedstate.redis_server import RedisProcess


@pytest.fixture
def env_store(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisProcess, real_redis: redis.Redis
) -> Iterator[SharedStore]:
    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("SHAREDSTATE_NAMESPACE", "legacy")
    compat.configure(None)
    yield SharedStore(real_redis, "legacy")
    compat.get_store().close()
    compat.configure(None)


def test_paths_map_to_documents_by_stem(env_store: SharedStore, tmp_path: Path) -> None:
    assert compat.load_json_file("/app/data/config.json") == {}
    assert compat.load_json_file("/app/data/config.json", default=[]) == []
    compat.save_json_file("/app/data/config.json", {"a": 1})
    compat.save_json_file(tmp_path / "user_data.json", {"42": {"n": "Ada"}})
    assert compat.load_json_file("config.json") == {"a": 1}
    assert env_store.load("config") == {"a": 1}
    assert env_store.names() == ["config", "user_data"]
    assert compat.load_json_file(str(tmp_path / "user_data.json")) == {"42": {"n": "Ada"}}
    assert not (tmp_path / "user_data.json").exists()  # nothing touches the disk
    with pytest.raises(InvalidDocument):
        compat.save_json_file("/app/data/bad name.json", {})


def test_the_store_is_created_once_across_threads(env_store: SharedStore) -> None:
    seen: list[SharedStore] = []
    threads = [threading.Thread(target=lambda: seen.append(compat.get_store())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(store) for store in seen}) == 1
    assert seen[0].namespace == "legacy"
