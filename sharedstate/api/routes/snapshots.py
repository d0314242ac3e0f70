"""Snapshots from the backup bucket or the worker's catalogue; snapshots and restores run as RQ
jobs on the worker."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response

from sharedstate.api import rq_jobs
from sharedstate.api.deps import AppState, app_state, audit, caller
from sharedstate.api.errors import APIError
from sharedstate.api.models import AcceptedOut, RestoreAtIn, RestoreIn, SnapshotOut
from sharedstate.api.routes.docs import ERRORS, json_response
from sharedstate.api.status import live_workers, snapshot_rows
from sharedstate.durability.format import SUFFIX
from sharedstate.worker import names

router = APIRouter(prefix="/v1", tags=["snapshots"])

SnapshotId = Annotated[
    str,
    Path(max_length=300, description="a snapshot id from GET /v1/snapshots (any other: 404)"),
]


@router.get("/snapshots", response_model=list[SnapshotOut], responses=ERRORS)
async def list_snapshots(request: Request) -> Response:
    """The snapshots, newest first: listed from the bucket itself when backups go to one, else the
    worker's catalogue ([] before a worker published it)."""
    return json_response(await snapshot_rows(app_state(request)))


async def _enqueue(state: AppState, func: str, kwargs: dict[str, Any]) -> str:
    """A job for the worker's maintenance queue (an hour at most); its id."""
    queue = names.maintenance_queue(state.settings.namespace)
    return await rq_jobs.enqueue(state.rq, queue, func, kwargs, 3600, state.settings.failed_job_ttl)


async def _accepted(state: AppState, job_id: str) -> Response:
    body: dict[str, str | None] = {"job_id": job_id, "status_url": f"/v1/jobs/{job_id}", "warning": None}
    if not await live_workers(state.store):
        body["warning"] = "no worker is running: the job waits until one starts"
    return json_response(body, 202, headers={"Location": f"/v1/jobs/{job_id}"})


@router.post("/snapshots", status_code=202, response_model=AcceptedOut, responses=ERRORS)
async def take_snapshot(request: Request) -> Response:
    """Ask the worker for a snapshot now (202 with the RQ job id)."""
    state, who = app_state(request), caller(request)
    job_id = await _enqueue(state, "sharedstate.worker.jobs.snapshot", {"force": True})
    audit(who, "snapshot", job=job_id)
    return await _accepted(state, job_id)


@router.post(
    "/snapshots/{snapshot_id}/restore", status_code=202, response_model=AcceptedOut, responses=ERRORS
)
async def restore_snapshot(
    snapshot_id: SnapshotId, request: Request, body: Annotated[RestoreIn | None, Body()] = None
) -> Response:
    """Ask the worker to restore a snapshot (all documents, or ``documents``); 202 with the job id."""
    state, who = app_state(request), caller(request)
    known = {row["id"] for row in await snapshot_rows(state)}
    if snapshot_id not in known or not snapshot_id.endswith(SUFFIX):
        raise APIError(404, "not_found", f"no snapshot {snapshot_id!r} among the backups")
    documents = body.documents if body is not None else None
    force = body.force if body is not None else False
    job_id = await _enqueue(
        state,
        "sharedstate.worker.jobs.restore",
        {"snapshot_id": snapshot_id, "documents": documents, "force": force},
    )
    audit(who, "restore", snapshot=snapshot_id, documents=documents or "all", force=force, job=job_id)
    return await _accepted(state, job_id)


@router.post("/restore", status_code=202, response_model=AcceptedOut, responses=ERRORS)
async def restore_at(request: Request, body: Annotated[RestoreAtIn, Body()]) -> Response:
    """Ask the worker to roll the namespace (or ``documents``) back to the state at ``at``: the
    newest snapshot complete by then plus the journal up to it. 202 with the job id."""
    state, who = app_state(request), caller(request)
    job_id = await _enqueue(
        state, "sharedstate.worker.jobs.restore_at", {"at": body.at, "documents": body.documents}
    )
    audit(who, "restore", at=body.at, documents=body.documents or "all", force=True, job=job_id)
    return await _accepted(state, job_id)
