"""POST /ingest: create (or find) the job for a fiction URL and queue it; a fiction
already stored is updated (only what changed is fetched)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

import jobs
from api import openapi
from api.deps import SessionDep, SettingsDep
from api.schemas import IngestAccepted, IngestRequest
from api.throttle import QUOTA
from models import JobStatus

router = APIRouter(tags=["ingest"])


@router.post(
    "/ingest",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestAccepted,
    responses={
        200: {"model": IngestAccepted, "description": "an active job for this fiction exists"},
        **openapi.errors(*openapi.WRITE_ERRORS, 429),
    },
    dependencies=[QUOTA],
)
def ingest(
    body: IngestRequest,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> IngestAccepted:
    submission = jobs.submit(
        session,
        body.url,
        settings=settings,
        priority=body.priority,
        callback_url=body.callback_url,
    )
    return accepted(submission, response)


def accepted(submission: jobs.Submission, response: Response) -> IngestAccepted:
    """The answer to a submission: 202 for a new job, 200 for the active one found."""
    if not submission.created:
        response.status_code = status.HTTP_200_OK
        message = "An active job for this fiction already exists"
    elif submission.enqueued:
        message = "Ingestion job created and queued"
    else:
        message = "Ingestion job created; it will be queued when the queue is reachable"
    return IngestAccepted(
        job_id=submission.job.id, status=JobStatus(submission.job.status), message=message
    )
