"""The web console (static files at / and /static/), the caller's role, and live changes (SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from sharedstate.api.deps import app_state, caller
from sharedstate.api.routes.docs import ERRORS
from sharedstate.durability import state
from sharedstate.errors import SharedStateError
from sharedstate.jsonio import dumps_plain

CONSOLE = Path(__file__).resolve().parents[1] / "console"
KEEPALIVE = 15.0  # seconds between comments on an idle event stream (proxies drop silent ones)
CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["console"])


@router.get("/", include_in_schema=False)
async def console_page() -> FileResponse:
    """The console (no token needed to load it; it asks for one)."""
    return FileResponse(CONSOLE / "index.html", headers=SECURITY_HEADERS)


@router.get("/v1/whoami", responses=ERRORS)
async def whoami(request: Request) -> dict[str, str]:
    """The role of the caller's token (the console hides what the role may not do)."""
    principal = caller(request)
    return {
        "role": principal.role,
        "token_id": principal.token_id,
        "namespace": app_state(request).store.namespace,
    }


def _event(change_id: str, payload: dict[str, object]) -> bytes:
    return f"id: {change_id}\nevent: change\ndata: {dumps_plain(payload)}\n\n".encode()


@router.get(
    "/v1/events",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def events(
    request: Request,
    names: Annotated[str | None, Query(description="comma-separated document names; all if absent")] = None,
    after: Annotated[
        str | None, Query(pattern=r"^\d+(-\d+)?$", description="resume after this feed id")
    ] = None,
    last_event_id: Annotated[str | None, Header(pattern=r"^\d+(-\d+)?$")] = None,
) -> StreamingResponse:
    """Changes as Server-Sent Events (``event: change``, ``id`` = feed position), from now or
    after ``after`` / ``Last-Event-ID``. An ``error`` event ends the stream (e.g. feed_trimmed)."""
    store = app_state(request).store
    wanted = [name for name in names.split(",") if name] if names else None
    # Fixed before the stream opens: a client that writes once it is connected sees its write.
    position: str | None = last_event_id or after or await state.feed_position_of(store)

    async def stream() -> AsyncIterator[bytes]:
        nonlocal position
        yield b": connected\n\n"
        while not await request.is_disconnected():
            changes = store.watch(wanted, timeout=KEEPALIVE, after=position)
            try:
                async for change in changes:
                    yield _event(
                        change.id,
                        {
                            "id": change.id,
                            "name": change.name,
                            "version": change.version,
                            "op": change.op,
                            "fields": change.fields,
                            "removed": list(change.removed),
                            "writer": change.writer,
                            "time": change.time,
                            "omitted": change.omitted,
                        },
                    )
            except SharedStateError as exc:
                code = type(exc).__name__
                yield f"event: error\ndata: {json.dumps({'error': code, 'detail': str(exc)})}\n\n".encode()
                return
            position = changes.position  # exactly where this watch stopped reading: nothing skipped
            yield b": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
