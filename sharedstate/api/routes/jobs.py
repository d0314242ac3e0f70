"""The worker's scheduled jobs and their last runs; one RQ job's status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from sharedstate.api import rq_jobs
from sharedstate.api.deps import app_state
from sharedstate.api.errors import APIError
from sharedstate.api.models import JobScheduleOut, RQJobOut
from sharedstate.api.routes.docs import ERRORS, json_response
from sharedstate.api.status import scheduled_jobs

router = APIRouter(prefix="/v1", tags=["jobs"])


@router.get("/jobs", response_model=list[JobScheduleOut], responses=ERRORS)
async def list_jobs(
    request: Request, runs: Annotated[int, Query(ge=1, le=50, description="last runs per job")] = 10
) -> Response:
    """Every scheduled job with its schedule, next run and last runs ([] before a worker published any)."""
    return json_response(await scheduled_jobs(app_state(request), runs))


@router.get("/jobs/{job_id}", response_model=RQJobOut, responses=ERRORS)
async def job_status(
    job_id: Annotated[str, Path(max_length=300, description="a job id from a 202 answer (any other: 404)")],
    request: Request,
) -> Response:
    """One RQ job: queued, started, finished or failed, with its result or error."""
    found = await rq_jobs.status(app_state(request).rq, job_id) if rq_jobs.JOB_ID.fullmatch(job_id) else None
    if found is None:
        raise APIError(404, "not_found", f"RQ has no job {job_id!r} (finished jobs are kept for a day)")
    return json_response(found)
