"""The FastAPI app: ``create_app(settings)``. Served by ``sharedstate api`` (see api/server.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from sharedstate import AsyncSharedStore, __version__
from sharedstate.api import errors
from sharedstate.api.auth import AuthMiddleware, TokenTable, required_role
from sharedstate.api.deps import AppState, bearer
from sharedstate.api.limits import BodyLimit
from sharedstate.api.metrics import Metrics, MetricsMiddleware
from sharedstate.api.routes import console, docs, health, jobs, snapshots, transfer
from sharedstate.api.routes.console import CONSOLE
from sharedstate.settings import Settings

DESCRIPTION = """Operators' API of a sharedstate namespace: inspect and edit documents, export and
import, snapshots and restores (run by the worker), job status, health and metrics.

Authenticate with `Authorization: Bearer <token>`; roles read < write < admin. Errors are
JSON `{"error": code, "detail": ...}`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (the environment's by default)."""
    config = settings or Settings.load()
    metrics = Metrics()
    tokens = TokenTable(config.tokens())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # operators see errors, never old copies
        store = AsyncSharedStore.from_settings(config, client_name="api", stale_reads=False)
        rq_connection = redis.Redis.from_url(config.require_redis_url())  # RQ's own client, never the store's
        app.state.sharedstate = shared = AppState(config, store, rq_connection, tokens, metrics)
        try:
            yield
        finally:
            await shared.hub.close()
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
    for module in (health, docs, transfer, snapshots, jobs, console):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=CONSOLE), name="static")
    app.add_middleware(BodyLimit, limit=config.api_max_body_bytes)
    app.add_middleware(AuthMiddleware, tokens=lambda: tokens)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.openapi = lambda: _openapi(app, bool(tokens))  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, authenticated: bool) -> dict[str, Any]:
    """The generated schema plus the bearer scheme on every operation AuthMiddleware protects
    (none without tokens: then nothing asks for one)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    if not authenticated:
        app.openapi_schema = schema
        return schema
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["bearer"] = {"type": "http", "scheme": "bearer", "description": bearer.model.description}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            role = required_role(method.upper(), path)
            if role is not None:
                operation["security"] = [{"bearer": []}]
                operation["description"] = f"{operation.get('description', '')}\n\nNeeds the role **{role}**."
                operation["x-required-role"] = role
    app.openapi_schema = schema
    return schema
