"""The web console (static files at / and /static/), the caller's role, and live changes (SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from sharedstate import Change, FeedTrimmed, SharedStateError
from sharedstate.api.deps import app_state, caller
from sharedstate.api.errors import APIError
from sharedstate.api.events import StreamEnded, TooManyStreams
from sharedstate.api.models import ErrorOut
from sharedstate.api.routes.docs import ERRORS
from sharedstate.jsonio import dumps_plain
from sharedstate.keys import NAME_RE

CONSOLE = Path(__file__).resolve().parents[1] / "console"
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


def _event(change: Change) -> bytes:
    payload = {
        "id": change.id,
        "name": change.name,
        "version": change.version,
        "op": change.op,
        "fields": change.fields,
        "removed": list(change.removed),
        "writer": change.writer,
        "time": change.time,
        "omitted": change.omitted,
    }
    return f"id: {change.id}\nevent: change\ndata: {dumps_plain(payload)}\n\n".encode()


def _error(code: str, detail: str) -> bytes:
    return f"event: error\ndata: {json.dumps({'error': code, 'detail': detail})}\n\n".encode()


class _Stream(StreamingResponse):
    """A streaming response that runs ``on_close`` however it ends (also when the client left
    before the first byte, when the body's generator never started)."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


Position = r"^\d{1,20}(-\d{1,20})?$"


def _position(value: str | None, what: str) -> str | None:
    if value is not None and any(int(part) >= 2**64 for part in value.split("-")):
        raise APIError(422, "invalid_request", f"{what} is not a feed position")
    return value


@router.get(
    "/v1/events",
    responses={
        **ERRORS,
        429: {"model": ErrorOut},
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
    },
)
async def events(
    request: Request,
    names: Annotated[str | None, Query(description="comma-separated document names; all if absent")] = None,
    after: Annotated[str | None, Query(pattern=Position, description="resume after this feed id")] = None,
    last_event_id: Annotated[str | None, Header(pattern=Position)] = None,
) -> Response:
    """Changes as Server-Sent Events (``event: change``, ``id`` = feed position), from now or
    after ``after`` / ``Last-Event-ID``; a comment at least every 15 s. An ``error`` event ends
    the stream (``feed_trimmed``: what was missed is gone; ``too_slow``: resume with Last-Event-ID).
    Past SHAREDSTATE_API_MAX_STREAMS open streams per token: 429."""
    state = app_state(request)
    wanted = [name for name in names.split(",") if name] if names else None
    bad = [name for name in wanted or () if not NAME_RE.fullmatch(name)]
    if bad:
        raise APIError(422, "invalid_name", f"not a document name: {bad[0][:100]!r}")
    start = _position(last_event_id, "Last-Event-ID") or _position(after, "after")
    hub = state.hub
    try:
        # registered before the answer starts: a client that writes once connected sees its write
        subscription = await hub.subscribe(wanted, caller(request).token_id, start)
    except TooManyStreams as exc:
        raise APIError(429, "too_many_streams", str(exc), headers={"Retry-After": "10"}) from None

    async def stream() -> AsyncIterator[bytes]:
        yield b": connected\n\n"
        try:
            async for change in hub.changes(subscription, state.settings.api_heartbeat):
                yield b": keep-alive\n\n" if change is None else _event(change)
        except StreamEnded as exc:
            yield _error(exc.ended.error, exc.ended.detail)
        except SharedStateError as exc:
            yield _error(
                type(exc).__name__, str(exc) if isinstance(exc, FeedTrimmed) else "the feed could not be read"
            )

    return _Stream(stream(), lambda: hub.unsubscribe(subscription))
