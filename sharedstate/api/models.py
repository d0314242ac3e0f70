"""Response models: they document the API (OpenAPI) and are what handlers answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer."""

    error: str = Field(description="machine-readable code, e.g. not_found, version_mismatch")
    detail: Any = Field(None, description="human-readable explanation or validation details")


class DocumentOut(BaseModel):
    name: str
    version: int
    updated_at: float
    updated_by: str
    data: Any = Field(description="the document's JSON value; sets come out as sorted lists")


class DocumentInfoOut(BaseModel):
    name: str
    version: int
    updated_at: float
    updated_by: str
    kind: Literal["object", "value"]
    size: int = Field(description="encoded bytes")


class WrittenOut(BaseModel):
    name: str
    version: int


class ChangeOut(BaseModel):
    id: str = Field(description="position in the change feed")
    name: str
    version: int
    op: str
    fields: Any = Field(description="values written (the whole document for put/restore)")
    removed: list[str]
    writer: str
    time: float
    omitted: bool = Field(description="true when the values were too large to keep")


class ImportOut(BaseModel):
    imported: list[str]
    versions: dict[str, int]


class SnapshotOut(BaseModel):
    id: str
    created_at: float
    size: int
    documents: int | None
    status: Literal["ok", "unverified", "corrupt"]
    error: str | None = None


class AcceptedOut(BaseModel):
    job_id: str
    status_url: str
    warning: str | None = None


class RestoreIn(BaseModel):
    documents: list[str] | None = Field(None, description="restore only these documents")
    force: bool = Field(
        False,
        description="roll back: replace documents Redis has in a newer version too, and (restoring "
        "everything) delete those the snapshot does not hold; without it a restore only fills in "
        "documents that are missing or older",
    )


class RestoreAtIn(BaseModel):
    at: float = Field(
        ge=0,
        allow_inf_nan=False,
        description="the time to roll back to, in epoch seconds: the newest snapshot complete by then "
        "plus the journal up to it (documents newer are replaced, those that did not exist deleted)",
    )
    documents: list[str] | None = Field(None, description="roll back only these documents")


class JobScheduleOut(BaseModel):
    name: str
    queue: str
    cron: str | None
    interval: int | None
    timeout: int
    next_run: float | None
    last_checked: float | None
    last_runs: list[dict[str, Any]]


class RQJobOut(BaseModel):
    id: str
    status: str
    func: str | None
    enqueued_at: float | None
    started_at: float | None
    ended_at: float | None
    result: Any
    error: str | None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    warnings: list[str]
    redis: dict[str, Any]
    worker: dict[str, Any]
    snapshots: dict[str, Any]
    jobs: dict[str, Any]
    journal: dict[str, Any] | None = Field(
        None, description="the continuous journal: position, seconds since its last flush, gaps"
    )
    documents: int | None
    integrity: dict[str, Any] | None
