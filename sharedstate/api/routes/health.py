"""Liveness, readiness, health figures and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sharedstate.api.deps import app_state
from sharedstate.api.errors import APIError
from sharedstate.api.models import ErrorOut, HealthOut
from sharedstate.api.routes.docs import ERRORS, json_response
from sharedstate.api.status import catalogue, health
from sharedstate.errors import SharedStateError, translate_errors

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (no auth)."""
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"model": ErrorOut}})
async def readyz(request: Request) -> dict[str, str]:
    """Redis answers (no auth): what a load balancer should check."""
    state = app_state(request)
    try:
        with translate_errors("ping Redis"):
            await state.store.redis.ping()
    except SharedStateError:  # the reason names Redis's address: not for unauthenticated callers
        raise APIError(503, "not_ready", "Redis does not answer") from None
    return {"status": "ready"}


@router.get("/v1/health", response_model=HealthOut, responses=ERRORS)
async def health_figures(request: Request) -> Response:
    """Always 200: status ok / degraded / down, warnings, and the figures behind them."""
    return json_response(await health(app_state(request)))


@router.get(
    "/metrics", responses={**ERRORS, 200: {"content": {"text/plain": {}}, "description": "Prometheus text"}}
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, store operations, conflicts, snapshot age, documents."""
    state = app_state(request)
    store = state.store
    try:
        with translate_errors("count documents"):
            state.metrics.documents.set(await store.redis.scard(store.keys.names))
        newest = max((row["created_at"] for row in (await catalogue(store))["snapshots"]), default=None)
        state.metrics.snapshot_age.set(time.time() - newest if newest else -1)
    except SharedStateError:
        pass  # Redis away: the gauges keep their last values; request metrics still matter
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
