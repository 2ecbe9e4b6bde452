"""Ingestion jobs and their state machine: the only code that writes a job's status.

QUEUED -> CRAWLING -> PARSING -> SAVING -> DONE; any non-terminal state -> ERROR; a running
state -> QUEUED when the run is retried. One more move, ERROR -> QUEUED, is a user's new
attempt of a failed job (`reopen`, through jobs.retry only): it is not in ALLOWED, so no
run's `transition` can revive a job that ended. Every move is a compare-and-set
(`UPDATE ... WHERE id = :id AND status IN (:allowed) [AND run_id = :run]`), so a duplicate,
late or concurrent run changes nothing, and each accepted move is logged in `job_events`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    case,
    false,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from errors import safe_message
from models.base import Base, UTCDateTime, utcnow


class Priority(StrEnum):
    """Which queue a job waits on: workers serve high, then normal, then low."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Origin(StrEnum):
    """Who asked for a job."""

    USER = "user"  # POST /ingest, cli.py ingest
    REFRESH = "refresh"  # POST /novels/{id}/refresh, cli.py refresh
    SCHEDULE = "schedule"  # the refresh scheduler


class CallbackStatus(StrEnum):
    """Where a job's callback_url delivery stands (null: the job has no callback_url)."""

    PENDING = "pending"  # not delivered yet: queued once the job ends, retried with backoff
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # refused URL, or every attempt failed: callback_error says why


class JobStatus(StrEnum):
    QUEUED = "queued"
    CRAWLING = "crawling"
    PARSING = "parsing"
    SAVING = "saving"
    DONE = "done"
    ERROR = "error"


TERMINAL: frozenset[JobStatus] = frozenset({JobStatus.DONE, JobStatus.ERROR})
RUNNING: frozenset[JobStatus] = frozenset({JobStatus.CRAWLING, JobStatus.PARSING, JobStatus.SAVING})
ACTIVE: frozenset[JobStatus] = frozenset(set(JobStatus) - TERMINAL)

ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.CRAWLING, JobStatus.ERROR}),
    JobStatus.CRAWLING: frozenset({JobStatus.PARSING, JobStatus.QUEUED, JobStatus.ERROR}),
    JobStatus.PARSING: frozenset({JobStatus.SAVING, JobStatus.QUEUED, JobStatus.ERROR}),
    JobStatus.SAVING: frozenset({JobStatus.DONE, JobStatus.QUEUED, JobStatus.ERROR}),
    JobStatus.DONE: frozenset(),
    JobStatus.ERROR: frozenset(),
}


_ACTIVE_SQL = "status IN ('queued', 'crawling', 'parsing', 'saving')"
_CALLBACK_PENDING_SQL = "callback_status = 'pending'"


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which `target` may be reached."""
    return frozenset(s for s, targets in ALLOWED.items() if target in targets)


class IngestionJob(Base):
    __tablename__ = "ingestion_jobs"
    __table_args__ = (
        Index("ix_ingestion_jobs_status_id", "status", "id"),
        # At most one active job per fiction, whatever URL (host, alias, mirror) it was
        # asked at: the door's dedupe holds under races too.
        Index(
            "uq_ingestion_jobs_active_novel",
            "site",
            "site_novel_id",
            unique=True,
            postgresql_where=text(_ACTIVE_SQL),
            sqlite_where=text(_ACTIVE_SQL),
        ),
        Index("ix_ingestion_jobs_site_novel_id", "site", "site_novel_id", "id"),
        # the callbacks still to deliver (callback.pass_due): few rows among many
        Index(
            "ix_ingestion_jobs_callback_pending",
            "id",
            postgresql_where=text(_CALLBACK_PENDING_SQL),
            sqlite_where=text(_CALLBACK_PENDING_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_url: Mapped[str] = mapped_column(String(2048))
    site: Mapped[str] = mapped_column(String(32))
    site_novel_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(String(16), default=JobStatus.QUEUED)
    error_message: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(String(36))
    chapters_found: Mapped[int] = mapped_column(Integer, default=0)
    chapters_fetched: Mapped[int] = mapped_column(Integer, default=0)
    chapters_saved: Mapped[int] = mapped_column(Integer, default=0)
    chapters_locked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What the run could not read (fields stored as null), each a line a user can read.
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    novel_id: Mapped[int | None] = mapped_column(ForeignKey("novels.id", ondelete="SET NULL"))
    # full: fetch every chapter (edits do not show in tables of contents); else only what
    # the store lacks or the site lists as changed
    full: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # mark removed however many chapters the listing lacks (UPDATE_REMOVAL_LIMIT waived)
    allow_removals: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    priority: Mapped[str] = mapped_column(
        String(8), default=Priority.NORMAL, server_default="normal"
    )
    origin: Mapped[str] = mapped_column(String(16), default=Origin.USER, server_default="user")
    # what the run did to the stored novel: {"new", "updated", "removed", "unchanged"}
    changes: Mapped[dict[str, int] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # POSTed the job's outcome once it ends (callback.py); its delivery's state
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    callback_status: Mapped[str | None] = mapped_column(String(16))
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callback_error: Mapped[str | None] = mapped_column(Text)
    callback_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobEvent(Base):
    """One accepted status move: the job's history, in order."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("ingestion_jobs.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def transition(
    session: Session,
    job_id: int,
    target: JobStatus,
    *,
    owner: str | None = None,
    expected: Collection[JobStatus] | None = None,
    message: str | None = None,
    **values: Any,
) -> bool:
    """Move a job to `target` if the table allows it from its current status.

    `owner` restricts the move to the run that owns the job; `expected` narrows the
    allowed source statuses. Returns whether the move happened; a refused move changes
    nothing. The caller commits. `message` is made safe to show (errors.safe_message).
    """
    sources = sources_of(target)
    if expected is not None:
        sources = sources & frozenset(expected)
    return _move(session, job_id, target, sources=sources, owner=owner, message=message, **values)


# What a new attempt starts from: no run, no error, no progress, no outcome. The history
# (job_events) keeps every earlier attempt.
_FRESH_ATTEMPT: dict[str, Any] = {
    "attempts": 0,
    "error_message": None,
    "last_error": None,
    "started_at": None,
    "finished_at": None,
    "chapters_found": 0,
    "chapters_fetched": 0,
    "chapters_saved": 0,
    "chapters_locked": 0,
    "changes": None,
    "warnings": [],
    # the new attempt's end is told again: a callback_url gets a fresh delivery
    "callback_status": case(
        (IngestionJob.callback_url.is_not(None), CallbackStatus.PENDING.value), else_=None
    ),
    "callback_attempts": 0,
    "callback_error": None,
    "callback_delivered_at": None,
}


def reopen(session: Session, job_id: int, *, message: str) -> bool:
    """ERROR -> QUEUED: a new attempt of a failed job, asked for by a user (jobs.retry).

    Attempts start again from 0; the error and progress are cleared. False when the job
    is not ERROR. Raises IntegrityError when another job of the same fiction is active
    (uq_ingestion_jobs_active_novel). The caller commits.
    """
    sources = frozenset({JobStatus.ERROR})
    return _move(
        session, job_id, JobStatus.QUEUED, sources=sources, message=message, **_FRESH_ATTEMPT
    )


def _move(
    session: Session,
    job_id: int,
    target: JobStatus,
    *,
    sources: frozenset[JobStatus],
    owner: str | None = None,
    message: str | None = None,
    **values: Any,
) -> bool:
    """The one compare-and-set UPDATE of a status, and its event."""
    if not sources:
        return False
    message = None if message is None else safe_message(message)
    now = utcnow()
    stmt = (
        update(IngestionJob)
        .where(IngestionJob.id == job_id, IngestionJob.status.in_([s.value for s in sources]))
        .values(
            {**_stamps(target, now, message), **values, "status": target.value, "updated_at": now}
        )
        .execution_options(synchronize_session=False)
    )
    if owner is not None:
        stmt = stmt.where(IngestionJob.run_id == owner)
    if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        insert(JobEvent).values(job_id=job_id, status=target.value, message=message, at=now)
    )
    return True


def callback_pending(session: Session, job_id: int) -> bool:
    """Whether the job's callback waits to be told (callback_url set, not yet delivered).
    Read in the transaction that ended the job, after its status move, it sees any
    callback attached before that move committed."""
    found = session.execute(
        select(IngestionJob.callback_status).where(IngestionJob.id == job_id)
    ).scalar_one_or_none()
    return found == CallbackStatus.PENDING.value


def _stamps(target: JobStatus, now: datetime, message: str | None) -> dict[str, Any]:
    if target is JobStatus.CRAWLING:
        return {"started_at": now, "attempts": IngestionJob.attempts + 1}
    if target is JobStatus.QUEUED:
        return {"run_id": None, "last_error": message}
    if target is JobStatus.ERROR:
        return {"finished_at": now, "error_message": message, "last_error": message}
    if target is JobStatus.DONE:
        return {"finished_at": now}
    return {}


def claim(session: Session, job_id: int) -> str | None:
    """Start a run: QUEUED -> CRAWLING with a fresh run id; None when the job is not QUEUED."""
    run_id = str(uuid.uuid4())
    if transition(session, job_id, JobStatus.CRAWLING, run_id=run_id):
        return run_id
    return None


def record_progress(session: Session, job_id: int, *, run_id: str, **counts: int) -> None:
    """Update progress counters of a running job (not a status: no event is logged)."""
    session.execute(
        update(IngestionJob)
        .where(IngestionJob.id == job_id, IngestionJob.run_id == run_id)
        .where(IngestionJob.status.in_([s.value for s in RUNNING]))
        .values(updated_at=utcnow(), **counts)
        .execution_options(synchronize_session=False)
    )
