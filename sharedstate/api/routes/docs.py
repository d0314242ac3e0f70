"""Documents: list, read, replace, merge, delete, history."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Query, Request, Response

from sharedstate import AsyncSharedStore, DocumentInfo, DocumentNotFound, VersionConflict
from sharedstate.api.bodies import ANY_JSON_BODY, OBJECT_BODY, Format, etag, parse_version_tag, read_json
from sharedstate.api.deps import AppState, app_state, audit, caller
from sharedstate.api.errors import APIError
from sharedstate.api.models import ChangeOut, DocumentInfoOut, DocumentOut, ErrorOut, WrittenOut
from sharedstate.jsonio import dumps_plain, encode_entries
from sharedstate.keys import NAME_RE

T = TypeVar("T")
LARGE_LIST = 5000
router = APIRouter(prefix="/v1", tags=["documents"])

Name = Annotated[
    str, Path(pattern=f"^{NAME_RE.pattern}$", description="1-200 characters of A-Z a-z 0-9 . _ - :")
]
_IF_MATCH = '"<version>": write only at that version, else 412 (as for any other value); *: if it exists'
_IF_NONE_MATCH = '*: create only; "<version>", ...: unless at one of them (else 412)'
IfMatch = Annotated[str | None, Header(max_length=2000, description=_IF_MATCH)]
IfNoneMatch = Annotated[str | None, Header(max_length=2000, description=_IF_NONE_MATCH)]
IfNoneMatchRead = Annotated[
    str | None,
    Header(max_length=2000, description='"<version>", ...: 304 if unchanged (other values are ignored)'),
]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 412, 413, 415, 422, 503)
}


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON bytes with sets as sorted lists."""
    return Response(
        dumps_plain(value).encode(), status_code=status, media_type="application/json", headers=headers
    )


async def _counted(state: AppState, op: str, write: Awaitable[T]) -> T:
    """Await a store write, counting it (and its version conflict, if it meets one)."""
    state.metrics.store_ops.labels(op).inc()
    try:
        return await write
    except VersionConflict:
        state.metrics.conflicts.inc()
        raise


def _failed(detail: str) -> APIError:
    return APIError(412, "precondition_failed", detail)


def _tags(value: str) -> list[int] | None:
    """The versions of an entity-tag list (``"12", W/"13"``); None if it is not one."""
    try:
        return [parse_version_tag(part, "tag") for part in value.split(",")]
    except APIError:
        return None


async def _expected(
    store: AsyncSharedStore, name: str, if_match: str | None, if_none_match: str | None
) -> int | None:
    """The version a write must find (0: none; None: any), from the conditional headers as RFC
    9110 evaluates them: a condition that cannot hold, malformed ones included, is a 412."""
    expected: int | None = None
    if if_match is not None:
        if if_match.strip() == "*":
            expected = (await store.info(name)).version  # must exist; and no one may change it meanwhile
        else:
            tags = _tags(if_match)
            if tags is None or len(tags) != 1:
                raise _failed('If-Match must be one version tag such as "12", or *')
            expected = tags[0]
    if if_none_match is not None:
        if expected is not None:
            raise _failed("If-Match and If-None-Match together cannot both hold here")
        if if_none_match.strip() == "*":
            return 0
        tags = _tags(if_none_match)
        if tags is None:
            raise _failed('If-None-Match on a write is * or version tags such as "12"')
        try:
            current = (await store.info(name)).version
        except DocumentNotFound:
            return 0
        if current in tags:
            raise _failed(f"the document is at version {current}, which If-None-Match excludes")
        return current
    return expected


@router.get("/docs", response_model=list[DocumentInfoOut], responses=ERRORS)
async def list_documents(
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=10_000, description="at most this many (default: all)")
    ] = None,
    after: Annotated[
        str | None, Query(max_length=200, description="names after this one (the last of a page)")
    ] = None,
) -> Response:
    """Documents' metadata, sorted by name; with ``limit``, a page, and ``Link: <...>; rel="next"``
    while more follow."""
    state = app_state(request)
    store = state.store
    state.metrics.store_ops.labels("list").inc()
    if limit is None and after is None:
        infos = await store.infos()
        headers = None
    else:
        names = await store.names()
        start = bisect.bisect_right(names, after) if after is not None else 0
        page = names[start : start + limit] if limit is not None else names[start:]
        found = await asyncio.gather(*(store.info(name) for name in page), return_exceptions=True)
        for item in found:
            if isinstance(item, BaseException) and not isinstance(item, DocumentNotFound):
                raise item
        infos = [item for item in found if isinstance(item, DocumentInfo)]  # deleted meanwhile: left out
        more = page and start + len(page) < len(names)
        headers = {"Link": f'</v1/docs?limit={limit}&after={quote(page[-1])}>; rel="next"'} if more else None
    rows = [
        {"name": i.name, "version": i.version, "updated_at": i.updated_at, "updated_by": i.updated_by,
         "kind": i.kind, "size": i.size}
        for i in infos
    ]  # fmt: skip
    if len(rows) > LARGE_LIST:  # megabytes of JSON: a row at a time, in a thread
        body = await asyncio.to_thread(encode_entries, rows)
        return Response(body, media_type="application/json", headers=headers)
    return json_response(rows, headers=headers)


@router.get(
    "/docs/{name}", response_model=DocumentOut, responses={**ERRORS, 304: {"description": "not modified"}}
)
async def read_document(
    name: Name, request: Request, if_none_match: IfNoneMatchRead = None, format: Format = "plain"
) -> Response:
    """A document with its version (also as the ETag)."""
    state = app_state(request)
    state.metrics.store_ops.labels("get").inc()
    version, body = await state.reads_in(format).get(name)
    tag = etag(version)
    if if_none_match is not None and tag in [
        part.strip().removeprefix("W/") for part in if_none_match.split(",")
    ]:
        return Response(status_code=304, headers={"ETag": tag})
    return Response(body, media_type="application/json", headers={"ETag": tag})


def _written(name: str, version: int, status: int = 200) -> Response:
    return json_response({"name": name, "version": version}, status, headers={"ETag": etag(version)})


@router.put("/docs/{name}", response_model=WrittenOut, responses=ERRORS, openapi_extra=ANY_JSON_BODY)
async def replace_document(
    name: Name,
    request: Request,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
    format: Format = "plain",
) -> Response:
    """Replace the document with the body (any JSON value). If-Match makes it conditional."""
    state, who = app_state(request), caller(request)
    store = state.store
    data = await read_json(request, format)
    expected = await _expected(store, name, if_match, if_none_match)
    written = await _counted(state, "put", store.replace(name, data, expected))
    audit(who, "put", doc=name, old=written.previous, new=written.version)
    return _written(name, written.version)


@router.patch("/docs/{name}", response_model=WrittenOut, responses=ERRORS, openapi_extra=OBJECT_BODY)
async def merge_document(
    name: Name, request: Request, if_match: IfMatch = None, format: Format = "plain"
) -> Response:
    """Set the body's top-level fields (a JSON object) in one atomic step."""
    state, who = app_state(request), caller(request)
    store = state.store
    fields = await read_json(request, format)
    if not isinstance(fields, dict):
        raise APIError(422, "invalid_document", "PATCH takes a JSON object of top-level fields")
    expected = await _expected(store, name, if_match, None)
    version = await _counted(state, "merge", store.merge(name, fields, expected))
    audit(who, "merge", doc=name, fields=",".join(sorted(fields))[:200], new=version)
    return _written(name, version)


@router.delete("/docs/{name}", status_code=204, responses=ERRORS)
async def delete_document(name: Name, request: Request, if_match: IfMatch = None) -> Response:
    """Delete the document (404 if it does not exist)."""
    state, who = app_state(request), caller(request)
    store = state.store
    expected = await _expected(store, name, if_match, None)
    existed = await _counted(state, "delete", store.delete(name, expected))
    if not existed:
        raise DocumentNotFound(name)
    audit(who, "delete", doc=name, old=expected if expected is not None else "any")
    return Response(status_code=204)


@router.get("/docs/{name}/history", response_model=list[ChangeOut], responses=ERRORS)
async def document_history(
    name: Name, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> Response:
    """The document's last changes, newest first, deletes included."""
    state = app_state(request)
    store = state.store
    state.metrics.store_ops.labels("history").inc()
    changes = await store.history(name, limit)
    return json_response(
        [
            {
                "id": c.id,
                "name": c.name,
                "version": c.version,
                "op": c.op,
                "fields": c.fields,
                "removed": list(c.removed),
                "writer": c.writer,
                "time": c.time,
                "omitted": c.omitted,
            }
            for c in changes
        ]
    )
