"""Snapshots from the backup bucket or the worker's catalogue. Snapshots run as RQ jobs on the
worker; restores too, unless backups go to a bucket: the API then runs them itself."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response

from sharedstate.api import restores, rq_jobs
from sharedstate.api.deps import AppState, app_state, audit, caller
from sharedstate.api.errors import APIError
from sharedstate.api.models import AcceptedOut, RestoreAtIn, RestoreIn, SnapshotOut
from sharedstate.api.routes.docs import ERRORS, json_response
from sharedstate.api.status import live_workers, snapshot_rows
from sharedstate.durability.format import SUFFIX
from sharedstate.durability.target import Target
from sharedstate.settings import Settings
from sharedstate.store import SharedStore
from sharedstate.worker import names

router = APIRouter(prefix="/v1", tags=["snapshots"])

RestoreBody = Callable[[SharedStore, Settings, Target], dict[str, Any]]
HERE = {"restore": "restore_from", "restore_at": "restore_to"}  # the worker's job -> the API's

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


async def _restore(state: AppState, func: str, kwargs: dict[str, Any], body: RestoreBody) -> str:
    """A restore job: run here when the backups are in a bucket the API reaches (``body`` with the
    settings and that target), else enqueued for the worker's ``func``."""
    target = state.shared_target()
    if target is None:
        return await _enqueue(state, f"sharedstate.worker.jobs.{func}", kwargs)
    settings = state.settings
    return await restores.run_here(
        state.rq,
        settings,
        f"sharedstate.api.restores.{HERE[func]}",
        kwargs,
        lambda store: body(store, settings, target),
    )


async def _accepted(state: AppState, job_id: str, here: bool = False) -> Response:
    body: dict[str, str | None] = {"job_id": job_id, "status_url": f"/v1/jobs/{job_id}", "warning": None}
    if not here and not await live_workers(state.store):
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
    """Restore a snapshot (all documents, or ``documents``): by the API itself when backups go to a
    bucket, else by the worker; 202 with the job id."""
    state, who = app_state(request), caller(request)
    known = {row["id"] for row in await snapshot_rows(state)}
    if snapshot_id not in known or not snapshot_id.endswith(SUFFIX):
        raise APIError(404, "not_found", f"no snapshot {snapshot_id!r} among the backups")
    documents = body.documents if body is not None else None
    force = body.force if body is not None else False
    job_id = await _restore(
        state, "restore", {"snapshot_id": snapshot_id, "documents": documents, "force": force},
        partial(restores.restore_from, snapshot_id=snapshot_id, documents=documents, force=force),
    )  # fmt: skip
    audit(who, "restore", snapshot=snapshot_id, documents=documents or "all", force=force, job=job_id)
    return await _accepted(state, job_id, here=state.shared_target() is not None)


@router.post("/restore", status_code=202, response_model=AcceptedOut, responses=ERRORS)
async def restore_at(request: Request, body: Annotated[RestoreAtIn, Body()]) -> Response:
    """Roll the namespace (or ``documents``) back to the state at ``at``: the newest snapshot
    complete by then plus the journal up to it (run like a snapshot's restore). 202 with the job id."""
    state, who = app_state(request), caller(request)
    at, documents = body.at, body.documents
    job_id = await _restore(
        state, "restore_at", {"at": at, "documents": documents},
        partial(restores.restore_to, at=at, documents=documents),
    )  # fmt: skip
    audit(who, "restore", at=body.at, documents=body.documents or "all", force=True, job=job_id)
    return await _accepted(state, job_id, here=state.shared_target() is not None)
