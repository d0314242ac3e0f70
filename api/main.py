"""The FastAPI app: ``create_app(settings)``. Served by ``sharedstate api`` (see api/server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI

from api import errors
from api.auth import TokenTable
from api.deps import AppState
from api.limits import BodyLimit
from api.metrics import Metrics, MetricsMiddleware
from api.routes import docs, health, jobs, snapshots, transfer
from sharedstate import AsyncSharedStore, __version__
from sharedstate.settings import Settings

DESCRIPTION = """Operators' API of a sharedstate namespace: inspect and edit documents, export and
import, snapshots and restores (run by the worker), job status, health and metrics.

Authenticate with `Authorization: Bearer <token>`; roles read < write < admin. Errors are
JSON `{"error": code, "detail": ...}`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (the environment's by default)."""
    config = settings or Settings.load()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = config.require_redis_url()
        store = AsyncSharedStore.from_url(
            url,
            config.namespace,
            config.client_name or "api",
            timeout=config.timeout,
            stale_reads=False,  # operators see errors, never old copies
            max_document_bytes=config.max_document_bytes,
            feed_maxlen=config.feed_maxlen,
            history_limit=config.history_limit,
            payload_limit=config.payload_limit,
        )
        rq_connection = redis.Redis.from_url(url)  # RQ's own client, never the store's
        app.state.sharedstate = AppState(config, store, rq_connection, TokenTable(config.tokens()), metrics)
        try:
            yield
        finally:
            await store.close()
            rq_connection.close()

    app = FastAPI(
        title="sharedstate operator API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # the Swagger page loads assets from a CDN; /openapi.json is served
        redoc_url=None,
    )
    errors.install(app)
    for module in (health, docs, transfer, snapshots, jobs):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, limit=config.api_max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
