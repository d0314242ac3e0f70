"""The baseline: a bare FastAPI endpoint returning the same bytes from memory.

BENCH_BODY_FILE=... uvicorn bench.bare_app:app
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Response

BODY = Path(os.environ.get("BENCH_BODY_FILE", "/dev/null")).read_bytes()
app = FastAPI()


@app.get("/v1/docs/{name}")
async def document(name: str) -> Response:
    return Response(BODY, media_type="application/json", headers={"ETag": '"1"'})
