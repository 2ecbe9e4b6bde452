"""GET /jobs, GET /jobs/{id}, POST /jobs/{id}/cancel, POST /jobs/{id}/retry."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

import jobs
from api import openapi
from api.auth import READ, WRITE
from api.deps import Limit, Offset, RowId, SessionDep, SettingsDep
from api.schemas import (
    CallbackPublic,
    Changes,
    ErrorBody,
    JobDetail,
    JobEventPublic,
    JobPublic,
    Page,
    Progress,
)
from models import IngestionJob, JobStatus, Priority
from models.ingestion_job import CallbackStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])


def to_public(job: IngestionJob) -> JobPublic:
    return JobPublic(
        id=job.id,
        source_url=job.source_url,
        site=job.site,
        status=JobStatus(job.status),
        error_message=job.error_message,
        last_error=job.last_error,
        attempts=job.attempts,
        progress=Progress(
            chapters_found=job.chapters_found,
            chapters_fetched=job.chapters_fetched,
            chapters_saved=job.chapters_saved,
            chapters_locked=job.chapters_locked,
        ),
        warnings=list(job.warnings or []),
        novel_id=job.novel_id,
        full=job.full,
        allow_removals=job.allow_removals,
        priority=Priority(job.priority),
        origin=job.origin,
        changes=Changes(**job.changes) if job.changes else None,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        callback=callback_of(job),
    )


def callback_of(job: IngestionJob) -> CallbackPublic | None:
    if job.callback_status is None:
        return None
    return CallbackPublic(
        status=CallbackStatus(job.callback_status),
        attempts=job.callback_attempts,
        error=job.callback_error,
        delivered_at=job.callback_delivered_at,
    )


@router.get(
    "",
    response_model=Page[JobPublic],
    dependencies=[READ],
    responses=openapi.errors(*openapi.READ_ERRORS),
)
def list_jobs(
    session: SessionDep, limit: Limit = 50, offset: Offset = 0, status: JobStatus | None = None
) -> Page[JobPublic]:
    rows, total = jobs.list_jobs(session, status=status, limit=limit, offset=offset)
    return Page(items=[to_public(j) for j in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/{job_id}",
    response_model=JobDetail,
    dependencies=[READ],
    responses=openapi.errors(*openapi.READ_ERRORS, 404),
)
def get_job(job_id: RowId, session: SessionDep) -> JobDetail:
    job = jobs.get_job(session, job_id)
    events = [JobEventPublic.model_validate(e) for e in jobs.history(session, job_id)]
    return JobDetail(**to_public(job).model_dump(), history=events)


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    dependencies=[WRITE],
    responses=openapi.errors(*openapi.WRITE_ERRORS, 404, 409),
)
def cancel_job(job_id: RowId, session: SessionDep, settings: SettingsDep) -> JobPublic:
    if not jobs.cancel(session, job_id, settings=settings):
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job_id} has already ended")
    session.expire_all()
    return to_public(jobs.get_job(session, job_id))


RETRY_CONFLICT = "the job has not ended in error, or another job of its fiction is active"


@router.post(
    "/{job_id}/retry",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WRITE],
    responses=openapi.errors(*openapi.WRITE_ERRORS, 404)
    | {409: {"model": ErrorBody, "description": RETRY_CONFLICT}},
)
def retry_job(job_id: RowId, session: SessionDep, settings: SettingsDep) -> JobPublic:
    """A new attempt of a job that ended in error: the same job goes back to `queued`, its
    attempts counted from 0 and its history kept (a "retried by user" event)."""
    try:
        retried = jobs.retry(session, job_id, settings=settings)
    except jobs.JobConflictError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    return to_public(retried.job)
