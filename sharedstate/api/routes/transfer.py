"""Export and import of every document as one JSON object."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from sharedstate.api.bodies import Format, read_json
from sharedstate.api.deps import app_state, audit, caller
from sharedstate.api.errors import APIError
from sharedstate.api.models import ImportOut
from sharedstate.api.routes.docs import ERRORS, json_response
from sharedstate.jsonio import dumps_plain, encode_tagged
from sharedstate.keys import NAME_RE
from sharedstate.offload import is_large

router = APIRouter(prefix="/v1", tags=["transfer"])

EXPORT_BATCH = 200  # documents per pipelined read
EXPORT_SCHEMA = {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}}


@router.get("/export", responses={**ERRORS, 200: {"description": '{"<name>": <data>, ...}, streamed'}})
async def export(request: Request, format: Format = "plain") -> StreamingResponse:
    """Every document as one JSON object ``{"<name>": <data>, ...}``, streamed (sets as sorted lists;
    ``format=tagged``: lossless)."""
    state = app_state(request)
    encode = encode_tagged if format == "tagged" else lambda value: dumps_plain(value).encode()
    store = state.store
    state.metrics.store_ops.labels("export").inc()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"{"
        separator = b""
        names = await store.names()
        for start in range(0, len(names), EXPORT_BATCH):
            docs = [
                doc for doc in await store.get_many(names[start : start + EXPORT_BATCH]) if doc is not None
            ]
            if any(is_large(doc.data) for doc in docs):  # megabytes: encoded off the event loop
                parts = await asyncio.to_thread(lambda batch: [encode(doc.data) for doc in batch], docs)
            else:
                parts = [encode(doc.data) for doc in docs]
            for doc, part in zip(docs, parts, strict=True):  # docs deleted since the listing are left out
                yield separator + json.dumps(doc.name).encode() + b":" + part
                separator = b","
        yield b"}"

    return StreamingResponse(chunks(), media_type="application/json")


IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "propertyNames": {"pattern": f"^{NAME_RE.pattern}$"},
                    "description": '{"<name>": <data>, ...}, as /v1/export gives',
                }
            }
        },
    }
}


@router.post("/import", response_model=ImportOut, responses=ERRORS, openapi_extra=IMPORT_BODY)
async def import_documents(request: Request, format: Format = "plain") -> Response:
    """Write every document of ``{"<name>": <data>, ...}``: all validated first, then one transaction."""
    state, who = app_state(request), caller(request)
    store = state.store
    documents = await read_json(request, format)
    if not isinstance(documents, dict):
        raise APIError(422, "invalid_document", 'import takes a JSON object {"<name>": <data>, ...}')
    state.metrics.store_ops.labels("import").inc()
    versions = await store.put_all(documents)
    audit(who, "import", documents=len(versions), names=",".join(sorted(versions))[:300])
    return json_response({"imported": sorted(versions), "versions": versions})
