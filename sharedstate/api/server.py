"""``sharedstate api``: the API under uvicorn, never without auth off loopback."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from sharedstate.api.main import create_app
from sharedstate.api.protocol import MAX_INCOMPLETE_HEADER_BYTES, DeadlineH11Protocol
from sharedstate.errors import ConfigurationError
from sharedstate.settings import Settings

log = logging.getLogger("sharedstate.api")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for 0.0.0.0, :: and every other name."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(settings: Settings) -> int:
    """Run the API until SIGTERM/SIGINT; ConfigurationError if it may not start."""
    settings.require_redis_url()
    if not settings.tokens():
        if not is_loopback(settings.api_host):
            raise ConfigurationError(
                f"refusing to serve on {settings.api_host or repr('')} without authentication: set "
                "SHAREDSTATE_API_TOKENS (role:token pairs such as admin:<token>) or bind 127.0.0.1"
            )
        log.warning("SHAREDSTATE_API_TOKENS is not set: the API is open to every process on this machine")
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal through the
    # handlers installed before it ran: these make that a clean exit 0.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    app = create_app(settings)
    # What the app is built from lives as long as the process: out of the collector's sight, a
    # full collection under load scans only what requests made (it took ~25 ms every ~0.3 s).
    gc.collect()
    gc.freeze()
    protocol = type(
        "Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout": settings.api_header_timeout, "body_timeout": settings.api_body_timeout},
    )
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        access_log=settings.api_access_log,
        server_header=False,
        timeout_graceful_shutdown=5,  # a request still running then is cancelled
        proxy_headers=True,
        http=protocol,
        h11_max_incomplete_event_size=MAX_INCOMPLETE_HEADER_BYTES,
    )
    _Server(config, app).run()
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server that ends the open event streams (``/v1/events``) as soon as it is told
    to stop: they never end by themselves, so the graceful shutdown would wait its whole timeout
    and then cancel them with a traceback each. Their clients resume with Last-Event-ID."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:  # a signal handler: hand the work to the loop's thread
            self._loop.call_soon_threadsafe(self._end_streams)

    def _end_streams(self) -> None:
        shared = getattr(self._app.state, "sharedstate", None)  # set once the app started
        if shared is not None:
            shared.hub.end_streams()
