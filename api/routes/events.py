"""GET /jobs/{id}/events: a job's status and progress as Server-Sent Events.

The stream sends the job's state at once, then again whenever its status or progress
changes, and ends after the event that shows it DONE or ERROR. Changes are read off the
row every POLL_INTERVAL seconds, each time in a session of its own that is closed before
the wait: a stream holds no database connection while it waits. A comment line every
PING_INTERVAL seconds keeps proxies from closing a quiet stream; a client that goes
away ends it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api import openapi
from api.auth import READ
from api.deps import RowId
from api.routes.jobs import to_public
from api.schemas import JobState
from db import OUTAGE_ERRORS, session_scope
from errors import NotFoundError
from models import TERMINAL, IngestionJob

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5  # seconds between two reads of the row
PING_INTERVAL = 15  # seconds between keep-alive comments
SEND_TIMEOUT = 30  # seconds a client may take to accept an event before it is dropped
EVENT = "status"
EXAMPLE = (
    '{"id":42,"status":"crawling","attempts":1,"progress":{"chapters_found":160,'
    '"chapters_fetched":37,"chapters_saved":0,"chapters_locked":0},"error_message":null,'
    '"last_error":null}'
)

router = APIRouter(prefix="/jobs", tags=["jobs"])


def _event_schema() -> dict[str, Any]:
    """One event of the stream (the fields of an SSE event): `data` is JobState as JSON."""
    state = JobState.model_json_schema(ref_template="#/components/schemas/{model}")
    state.pop("$defs", None)  # Progress and JobStatus are components already (JobPublic)
    return {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": [EVENT]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": state,
            },
        },
        "required": ["event", "data"],
    }


STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`event: status` with the job's state as JSON (JobState) at once and"
        " on every change, `: ping` comments in between; the stream ends after the event"
        " that shows the job done or error",
        "content": {
            "text/event-stream": {
                "schema": _event_schema(),
                "example": {"event": EVENT, "data": EXAMPLE},
            }
        },
    }
}


def read_state(job_id: int) -> JobState | None:
    """The job's state now, read in a session closed before this returns."""
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        return None if job is None else state_of(job)


def state_of(job: IngestionJob) -> JobState:
    public = to_public(job)
    return JobState(
        id=public.id,
        status=public.status,
        attempts=public.attempts,
        progress=public.progress,
        error_message=public.error_message,
        last_error=public.last_error,
    )


def event(state: JobState) -> ServerSentEvent:
    return ServerSentEvent(data=state.model_dump_json(), event=EVENT)


async def follow(job_id: int, first: JobState) -> AsyncIterator[ServerSentEvent]:
    """`first`, then each change, until the job ends (or its row is purged)."""
    last = first
    yield event(first)
    while last.status not in TERMINAL:
        await asyncio.sleep(POLL_INTERVAL)
        try:
            state = await run_in_threadpool(read_state, job_id)
        except (*OUTAGE_ERRORS, PoolTimeout) as error:  # away or busy: read again next time
            log.warning("job %s events: database unavailable (%s)", job_id, error)
            continue
        if state is None:
            return
        if state != last:
            last = state
            yield event(state)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    dependencies=[READ],
    responses={**STREAM, **openapi.errors(*openapi.READ_ERRORS, 404)},
)
async def job_events(job_id: RowId) -> EventSourceResponse:
    """Follow a job without polling: its status and progress as Server-Sent Events."""
    first = await run_in_threadpool(read_state, job_id)
    if first is None:
        raise NotFoundError(f"job {job_id} not found")
    return EventSourceResponse(follow(job_id, first), ping=PING_INTERVAL, send_timeout=SEND_TIMEOUT)
