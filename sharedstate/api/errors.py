"""Domain errors to HTTP, once: every 4xx/5xx answer is JSON ``{"error": code, "detail": ...}``."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sharedstate.errors import (
    DocumentNotFound,
    FeedTrimmed,
    InvalidDocument,
    NotAnObject,
    SharedStateError,
    SnapshotError,
    StoreUnavailable,
    VersionConflict,
)

log = logging.getLogger("sharedstate.api")


class APIError(Exception):
    """An error answered as ``status`` with ``{"error": code, "detail": detail}``."""

    def __init__(
        self, status: int, code: str, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def error_response(
    status: int, code: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _validation_detail(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Keep where and why; drop the echoed input (it may be large, or hold a secret).
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    """Register the handlers."""

    @app.exception_handler(APIError)
    async def api_error(_request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(
            exc.status_code, _code(exc.status_code), exc.detail, dict(exc.headers or {}) or None
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_detail(exc))

    @app.exception_handler(SharedStateError)
    async def domain_error(_request: Request, exc: SharedStateError) -> JSONResponse:
        if isinstance(exc, DocumentNotFound):
            return error_response(404, "not_found", str(exc))
        if isinstance(exc, VersionConflict):
            return error_response(
                412,
                "version_mismatch",
                {"message": str(exc), "current_version": exc.actual},
                headers={"ETag": f'"{exc.actual}"'},
            )
        if isinstance(exc, NotAnObject):
            return error_response(409, "not_an_object", str(exc))
        if isinstance(exc, InvalidDocument):
            return error_response(422, "invalid_document", str(exc))
        if isinstance(exc, StoreUnavailable):
            return error_response(503, "store_unavailable", str(exc), headers={"Retry-After": "2"})
        if isinstance(exc, FeedTrimmed):
            return error_response(410, "feed_trimmed", str(exc))
        if isinstance(exc, SnapshotError):
            return error_response(422, "bad_snapshot", exc.reason)
        log.error("unexpected store error: %s", exc)
        return error_response(500, "internal_error", "the server could not complete the request")

    @app.exception_handler(redis.exceptions.RedisError)
    async def redis_error(_request: Request, exc: redis.exceptions.RedisError) -> JSONResponse:
        # raised by RQ's own client (jobs, snapshot requests); the store's errors are translated
        log.warning("Redis failed during a request: %s", type(exc).__name__)
        return error_response(
            503, "store_unavailable", "Redis did not answer; try again", headers={"Retry-After": "2"}
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server could not complete the request")
