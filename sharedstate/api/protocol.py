"""uvicorn's h11 protocol with deadlines: a client must send its headers, then its body, in time.

uvicorn times out idle keep-alive connections only after a response; a connection that sends
nothing, or its headers a byte at a time (slowloris), would stay open for good.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from sharedstate.api.limits import MAX_HEADER_BYTES

# h11 applies this only to headers still incomplete: a request line plus headers that never end
# are cut off here instead of buffered. It is above BodyLimit's limit for complete headers, so
# a header block of 16-64 KiB always gets its 431 JSON answer, whether it arrived in one read
# or several (at 16 KiB, one that came in pieces was cut off with a reset instead).
MAX_INCOMPLETE_HEADER_BYTES = 4 * MAX_HEADER_BYTES


class DeadlineH11Protocol(H11Protocol):
    """Closes a connection whose request headers take over ``header_timeout`` seconds, or whose
    body takes over ``body_timeout`` seconds after them (timed from each request's start)."""

    header_timeout = 10.0
    body_timeout = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: object = h11.IDLE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(h11.IDLE, self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        state = self.conn.their_state
        if state is h11.IDLE and self._waiting_for is not h11.IDLE:
            self._arm(h11.IDLE, self.header_timeout)  # the next request on a kept-alive connection
        elif state is h11.SEND_BODY and self._waiting_for is not h11.SEND_BODY:
            self._arm(h11.SEND_BODY, self.body_timeout)
        elif state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()

    def _arm(self, state: object, seconds: float) -> None:
        self._disarm()
        self._waiting_for = state
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = h11.DONE

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()  # a handler waiting for the body sees http.disconnect
