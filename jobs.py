"""Job service: submit, read, list and cancel ingestion jobs (shared by API and CLI)."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import ingestion_queue
from config import Settings, get_settings
from crawler import sites
from errors import NotFoundError, QueueUnavailableError
from models import ACTIVE, IngestionJob, JobEvent, JobStatus, Novel, Origin, Priority, SpooledPage
from models.ingestion_job import transition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    job: IngestionJob
    created: bool  # False: an active job for the same fiction was returned instead
    enqueued: bool  # False: Redis was unreachable; the reconciler will push it


def submit(
    session: Session,
    url: str,
    *,
    settings: Settings,
    full: bool = False,
    allow_removals: bool = False,
    priority: Priority = Priority.NORMAL,
    origin: Origin = Origin.USER,
) -> Submission:
    """Create a QUEUED job for `url` (or return the active one), commit, then enqueue it.

    A fiction already stored is updated: the job fetches only what changed (`full`:
    every chapter, rewriting those whose text changed).
    """
    _, ref = sites.resolve(url, aliases=settings.site_aliases)
    existing = active_job_for(session, ref.site, ref.site_id)
    if existing is not None:
        return Submission(
            job=existing, created=False, enqueued=_raise_priority(session, existing, priority)
        )
    job = IngestionJob(
        source_url=ref.url,
        site=ref.site,
        site_novel_id=ref.site_id,
        full=full,
        allow_removals=allow_removals,
        priority=priority.value,
        origin=origin.value,
        novel_id=_stored_novel_id(session, ref.site, ref.site_id),
    )
    session.add(job)
    try:
        session.flush()
        session.execute(insert(JobEvent).values(job_id=job.id, status=JobStatus.QUEUED.value))
        _take_over_spool(session, job)
        session.commit()
    except IntegrityError:  # another request created it between our check and insert
        session.rollback()
        raced = active_job_for(session, ref.site, ref.site_id)
        if raced is None:
            raise
        return Submission(job=raced, created=False, enqueued=True)
    _inject_fault(settings)
    return Submission(job=job, created=True, enqueued=_try_enqueue(job, settings))


def refresh(
    session: Session,
    novel_id: int,
    *,
    settings: Settings,
    full: bool = False,
    allow_removals: bool = False,
    priority: Priority = Priority.NORMAL,
    origin: Origin = Origin.REFRESH,
) -> Submission:
    """Submit an update of a stored novel, from the URL it was last ingested at."""
    return submit(
        session,
        fiction_url(session, novel_id),
        settings=settings,
        full=full,
        allow_removals=allow_removals,
        priority=priority,
        origin=origin,
    )


def fiction_url(session: Session, novel_id: int) -> str:
    """The URL to crawl a stored novel at: its latest job's (an alias or mirror stays
    the host it was reached at), else the URL stored with the novel."""
    novel = session.get(Novel, novel_id)
    if novel is None:
        raise NotFoundError(f"novel {novel_id} not found")
    stmt = (
        select(IngestionJob.source_url)
        .where(IngestionJob.site == novel.site, IngestionJob.site_novel_id == novel.site_novel_id)
        .order_by(IngestionJob.id.desc())
        .limit(1)
    )
    return session.execute(stmt).scalar_one_or_none() or novel.url


def _stored_novel_id(session: Session, site: str, site_novel_id: str) -> int | None:
    stmt = select(Novel.id).where(Novel.site == site, Novel.site_novel_id == site_novel_id)
    return session.execute(stmt).scalar_one_or_none()


def _inject_fault(settings: Settings) -> None:
    # The chaos tests' way to die at the worst moment: row committed, not yet enqueued.
    if settings.fault_injection == "kill-after-commit":
        os.kill(os.getpid(), signal.SIGKILL)


def _try_enqueue(job: IngestionJob, settings: Settings) -> bool:
    try:
        ingestion_queue.enqueue(job.id, priority=Priority(job.priority), settings=settings)
    except QueueUnavailableError as error:
        log.warning("job %s stays QUEUED until Redis is back: %s", job.id, error)
        return False
    return True


def active_job_for(session: Session, site: str, site_novel_id: str) -> IngestionJob | None:
    """The novel's active job, whatever URL it was asked at."""
    stmt = select(IngestionJob).where(
        IngestionJob.site == site,
        IngestionJob.site_novel_id == site_novel_id,
        IngestionJob.status.in_([s.value for s in ACTIVE]),
    )
    return session.execute(stmt.limit(1)).scalar_one_or_none()


RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}


def _raise_priority(session: Session, job: IngestionJob, priority: Priority) -> bool:
    """A user asking for a fiction whose scheduled refresh waits on the low queue moves
    that job up to the priority asked: it is not left behind the backlog. False when the
    queue could not be reached (the reconciler pushes the row onto its new queue)."""
    if RANK[priority] <= RANK[Priority(job.priority)]:
        return True
    moved = session.execute(
        update(IngestionJob)
        .where(IngestionJob.id == job.id, IngestionJob.status == JobStatus.QUEUED.value)
        .values(priority=priority.value)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if not moved.rowcount:  # type: ignore[attr-defined]
        return True  # it has started meanwhile
    session.refresh(job)
    try:
        ingestion_queue.requeue(job.id, priority=priority, settings=get_settings())
    except QueueUnavailableError as error:
        log.warning("job %s moved to %s; requeued when Redis is back: %s", job.id, priority, error)
        return False
    return True


def _take_over_spool(session: Session, job: IngestionJob) -> None:
    """The pages the novel's latest failed job fetched (kept SPOOL_RETENTION) become this
    job's: submitting a fiction again after an error fetches only what that run lacked."""
    failed = (
        select(IngestionJob.id)
        .where(
            IngestionJob.site == job.site,
            IngestionJob.site_novel_id == job.site_novel_id,
            IngestionJob.status == JobStatus.ERROR.value,
            IngestionJob.id != job.id,
        )
        .order_by(IngestionJob.id.desc())
        .limit(1)
    )
    latest = session.execute(failed).scalar_one_or_none()
    if latest is not None:
        session.execute(
            update(SpooledPage)
            .where(SpooledPage.job_id == latest)
            .values(job_id=job.id)
            .execution_options(synchronize_session=False)
        )


def get_job(session: Session, job_id: int) -> IngestionJob:
    job = session.get(IngestionJob, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


def history(session: Session, job_id: int) -> list[JobEvent]:
    stmt = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
    return list(session.execute(stmt).scalars())


def list_jobs(
    session: Session, *, status: JobStatus | None, limit: int, offset: int
) -> tuple[list[IngestionJob], int]:
    query = select(IngestionJob)
    if status is not None:
        query = query.where(IngestionJob.status == status.value)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(IngestionJob.id.desc()).limit(limit).offset(offset))
    return list(rows.scalars()), total


def cancel(session: Session, job_id: int, *, settings: Settings) -> bool:
    """Mark an active job ERROR ("cancelled") and stop its RQ side. False if already ended."""
    get_job(session, job_id)
    moved = transition(
        session, job_id, JobStatus.ERROR, expected=ACTIVE, message="cancelled by user"
    )
    session.commit()
    if moved:
        try:
            ingestion_queue.cancel(job_id, settings=settings)
        except QueueUnavailableError:
            log.warning("job %s cancelled; its RQ job will find the row ended", job_id)
    return moved
