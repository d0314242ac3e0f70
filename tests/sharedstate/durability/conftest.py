"""Fixtures for the durability tests: a store on the session's real redis-server, a data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sharedstate import SharedStore
from sharedstate.durability.target import DirectoryTarget, Target


@pytest.fixture
def store(real_redis: redis.Redis) -> Iterator[SharedStore]:
    """A store on namespace "bot" of the (emptied) session server."""
    yield SharedStore(real_redis, "bot", "bot")


@pytest.fixture
def snapdir(tmp_path: Path) -> Path:
    """An empty snapshots directory (not created yet: commands create it)."""
    return tmp_path / "data" / "snapshots"


SAMPLE = {
    "config": {"greeting": "hi", "admins": {1, 2}, "limits": {"max": 10, "ratio": 0.5}, "big": 2**80},
    "user_data": {"42": {"name": "Ada", "tags": frozenset({"x"})}, "7": {"name": "Bob", "active": True}},
    "buildings": [1, 2.5, "x", None, True, {"$set": "not a tag"}],
    "tokens": {},
    "note": "just a string",
    "count": 0,
}


def fill(store: SharedStore, documents: dict[str, object] = SAMPLE) -> None:
    for name, data in documents.items():
        store.put(name, data)


@pytest.fixture(params=["directory", "bucket"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """A backup target of each kind: a directory, and a bucket on a real S3-compatible server."""
    if request.param == "directory":
        return DirectoryTarget(tmp_path / "backups")
    from tests.s3 import S3Server

    server: S3Server = request.getfixturevalue("s3_server")
    return server.target()
