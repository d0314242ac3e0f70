"""The API through HTTP: httpx against the ASGI app (its lifespan running), real redis-server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from sharedstate import SharedStore
from sharedstate.api.main import create_app
from sharedstate.redis_server import RedisProcess
from sharedstate.settings import Settings
from tests.sharedstate.facade import LoopThread

READ, WRITE, ADMIN = "read-token-aaaa", "write-token-bbbb", "admin-token-cccc"
TOKENS = f"read:{READ},write:{WRITE},admin:{ADMIN}"
_namespaces = itertools.count()


class Api:
    """Synchronous calls into the app: ``api.get(path, token=READ)`` -> httpx.Response."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = LoopThread()
        self._lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        self.loop.run(self._lifespan.__aenter__())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")

    def request(self, method: str, path: str, token: str | None = READ, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.loop.run(self.client.request(method, path, headers=headers, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **{"token": WRITE, **kwargs})

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **{"token": WRITE, **kwargs})

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **{"token": WRITE, **kwargs})

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **{"token": WRITE, **kwargs})

    def close(self) -> None:
        self.loop.run(self.client.aclose())
        self.loop.run(self._lifespan.__aexit__(None, None, None))
        self.loop.stop()


def settings_for(server: RedisProcess, tmp_path: Path, **values: Any) -> Settings:
    namespace = values.pop("namespace", None) or f"api{next(_namespaces)}"
    values.setdefault("api_tokens", TOKENS)
    return Settings.load(redis_url=server.url, namespace=namespace, data_dir=tmp_path / "data", **values)


@pytest.fixture
def settings(redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path) -> Settings:
    return settings_for(redis_server, tmp_path)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    client = Api(create_app(settings))
    yield client
    client.close()


@pytest.fixture
def store(settings: Settings, real_redis: redis.Redis) -> SharedStore:
    """A store on the API's namespace, to write and check beside the API."""
    return SharedStore(real_redis, settings.namespace, "beside")
