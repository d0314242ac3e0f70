"""Request bodies and conditional headers."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import Query, Request

from sharedstate.api.errors import APIError
from sharedstate.jsonio import loads_entries, loads_tagged

Format = Annotated[
    Literal["plain", "tagged"],
    Query(
        description='plain: standard JSON, sets as sorted lists; tagged: lossless ({"$set": [...]}, '
        "every int digit, floats stay floats), as snapshots write it"
    ),
]

_JSON_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded", "")

ANY_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"description": "any JSON value"}}},
    }
}
OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object", "description": "top-level fields"}}},
    }
}


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


OFF_LOOP_BYTES = 256 * 1024


def _decode(raw: bytes, dialect: str) -> Any:
    if dialect == "tagged":
        return loads_tagged(raw)
    return json.loads(raw, parse_constant=_no_constants)


def _decode_large(raw: bytes, dialect: str) -> Any:
    """``_decode`` for a large body, in a thread: entry by entry, so the loop keeps turning."""
    return loads_entries(raw.decode("utf-8"), tagged=dialect == "tagged")


async def read_json(request: Request, dialect: str = "plain") -> Any:
    """The request body as JSON (``dialect`` tagged: the lossless one); 415 for a non-JSON
    content type, 422 if it does not parse.

    A missing, text/plain or form content type is accepted, so ``curl -d`` works.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _JSON_TYPES and not media.endswith("+json"):
        raise APIError(
            415, "unsupported_media_type", f"send JSON (Content-Type: application/json), not {media}"
        )
    raw = await request.body()
    if not raw.strip():
        raise APIError(422, "invalid_json", "the request body is empty: send a JSON value")
    try:
        if len(raw) > OFF_LOOP_BYTES:  # decoding megabytes on the event loop stalls every request
            return await asyncio.to_thread(_decode_large, raw, dialect)
        return _decode(raw, dialect)
    except RecursionError:
        raise APIError(422, "invalid_json", "the body is nested too deeply") from None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:  # TypeError: a malformed tag
        raise APIError(422, "invalid_json", f"the body is not valid JSON: {exc}") from None


def etag(version: int) -> str:
    """The strong ETag of a version."""
    return f'"{version}"'


def parse_version_tag(value: str, header: str) -> int:
    """A version from an entity tag (``"12"``, also ``W/"12"`` or a bare ``12``); 400 otherwise."""
    tag = value.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    if not tag.isdigit() or "," in value:
        raise APIError(400, "bad_precondition", f'{header} must be one version tag such as "12", or *')
    return int(tag)
