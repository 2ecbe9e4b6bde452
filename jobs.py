"""Job service: submit, read, list, cancel, retry and purge ingestion jobs (shared by API
and CLI)."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

import callback
import ingestion_queue
from config import Settings, get_settings
from crawler import sites
from db import keyset_batches, session_scope
from errors import CANCELLED_BY_USER, IngestError, NotFoundError, QueueUnavailableError
from models import (
    ACTIVE,
    TERMINAL,
    IngestionJob,
    JobEvent,
    JobStatus,
    Novel,
    Origin,
    Priority,
    SpooledPage,
)
from models.base import utcnow
from models.ingestion_job import CallbackStatus, reopen, transition

log = logging.getLogger(__name__)

RETRIED_BY_USER = "retried by user"  # the history's line for a new attempt asked by hand


class JobConflictError(IngestError):
    """Raised when a job is not in a state the operation needs: a retry of a job that has
    not ended in error, or of one whose fiction has another active job."""


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
    callback_url: str | None = None,
) -> Submission:
    """Create a QUEUED job for `url` (or return the active one), commit, then enqueue it.

    A fiction already stored is updated: the job fetches only what changed (`full`:
    every chapter, rewriting those whose text changed). `callback_url` is POSTed the
    outcome once the job ends (callback.py); an active job found gets it if it has none.
    """
    _, ref = sites.resolve(url, aliases=settings.site_aliases)
    callback_url = None if callback_url is None else callback.check_url(callback_url)
    existing = active_job_for(session, ref.site, ref.site_id)
    if existing is not None:
        _attach_callback(session, existing, callback_url, settings=settings)
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
        callback_url=callback_url,
        callback_status=CallbackStatus.PENDING.value if callback_url else None,
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
        _attach_callback(session, raced, callback_url, settings=settings)
        return Submission(job=raced, created=False, enqueued=True)
    _inject_fault(settings)
    return Submission(job=job, created=True, enqueued=_try_enqueue(job, settings))


def _attach_callback(
    session: Session, job: IngestionJob, callback_url: str | None, *, settings: Settings
) -> None:
    """Give an active job found for a submission the callback asked, unless it has one."""
    if callback_url is None or job.callback_url is not None:
        return
    session.execute(
        update(IngestionJob)
        .where(IngestionJob.id == job.id, IngestionJob.callback_url.is_(None))
        .values(callback_url=callback_url, callback_status=CallbackStatus.PENDING.value)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(job)
    callback.notify(job.id, settings)  # it may have ended meanwhile


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
    session: Session,
    *,
    status: JobStatus | None,
    limit: int,
    offset: int,
    site: str | None = None,
) -> tuple[list[IngestionJob], int]:
    """The latest jobs first (of a status, of a site), and how many there are in all."""
    query = select(IngestionJob)
    if status is not None:
        query = query.where(IngestionJob.status == status.value)
    if site is not None:
        query = query.where(IngestionJob.site == site)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(IngestionJob.id.desc()).limit(limit).offset(offset))
    return list(rows.scalars()), total


def cancel(session: Session, job_id: int, *, settings: Settings) -> bool:
    """Mark an active job ERROR ("cancelled") and stop its RQ side. False if already ended."""
    get_job(session, job_id)
    moved = transition(session, job_id, JobStatus.ERROR, expected=ACTIVE, message=CANCELLED_BY_USER)
    session.commit()
    if moved:
        try:
            ingestion_queue.cancel(job_id, settings=settings)
        except QueueUnavailableError:
            log.warning("job %s cancelled; its RQ job will find the row ended", job_id)
        callback.notify(job_id, settings)
    return moved


def retry(session: Session, job_id: int, *, settings: Settings) -> Submission:
    """A new attempt of a job that ended in ERROR: the same row goes back to QUEUED (its
    attempts from 0, its error cleared, its history kept, a "retried by user" event), is
    committed, then enqueued (Redis down: it waits QUEUED for the reconciler).

    Raises JobConflictError when the job has not ended in error, or when another job of
    the same fiction is active (both would do the same work).
    """
    job = get_job(session, job_id)
    if job.status != JobStatus.ERROR:
        raise JobConflictError(
            f"job {job_id} is {job.status}: only a job that ended in error can be retried"
        )
    _refuse_if_another_is_active(session, job)
    try:
        moved = reopen(session, job_id, message=RETRIED_BY_USER)
        session.commit()
    except IntegrityError:  # another job of the fiction became active since the check
        session.rollback()
        _refuse_if_another_is_active(session, job)
        raise JobConflictError(
            f"job {job_id} cannot be retried: another job of the same fiction became active"
        ) from None
    if not moved:  # retried (or purged: NotFoundError) by another caller meanwhile
        session.expire_all()
        get_job(session, job_id)
        raise JobConflictError(f"job {job_id} is no longer in error: it was retried already")
    session.refresh(job)
    return Submission(job=job, created=True, enqueued=_try_enqueue(job, settings))


def _refuse_if_another_is_active(session: Session, job: IngestionJob) -> None:
    other = active_job_for(session, job.site, job.site_novel_id)
    if other is not None and other.id != job.id:
        raise JobConflictError(
            f"job {job.id} cannot be retried: job {other.id} of the same fiction is {other.status}"
        )


@dataclass
class RetryReport:
    retried: list[int] = field(default_factory=list)  # back to QUEUED
    refused: list[int] = field(default_factory=list)  # another job of the fiction was active
    superseded: int = 0  # ERROR rows of fictions that have a newer job: left alone
    enqueued: bool = True  # False: Redis was unreachable; the reconciler pushes them


def retry_all_errors(settings: Settings, *, site: str | None = None) -> RetryReport:
    """Retry each fiction's latest job if it ended in ERROR (of one site, or all), in keyset
    batches. An older ERROR row of a fiction that has a newer job is superseded: retrying
    it would redo what the newer job did."""
    report = RetryReport()
    latest = select(IngestionJob.id).where(_latest_errors(site))
    for rows in keyset_batches(latest, IngestionJob.id, settings.process_queue_batch):
        _retry_batch([job_id for (job_id,) in rows], settings=settings, report=report)
    with session_scope() as session:
        left = select(func.count(IngestionJob.id)).where(_errors_of(site))
        report.superseded = int(session.execute(left).scalar_one()) - len(report.refused)
    return report


def _errors_of(site: str | None) -> ColumnElement[bool]:
    """Jobs that failed (of one site): not those a user cancelled."""
    condition = (IngestionJob.status == JobStatus.ERROR.value) & (
        IngestionJob.error_message.is_(None) | (IngestionJob.error_message != CANCELLED_BY_USER)
    )
    return condition if site is None else condition & (IngestionJob.site == site)


def _latest_errors(site: str | None) -> ColumnElement[bool]:
    newer = aliased(IngestionJob)
    has_newer = (
        select(newer.id)
        .where(
            newer.site == IngestionJob.site,
            newer.site_novel_id == IngestionJob.site_novel_id,
            newer.id > IngestionJob.id,
        )
        .exists()
    )
    return _errors_of(site) & ~has_newer


def _retry_batch(job_ids: list[int], *, settings: Settings, report: RetryReport) -> None:
    moved: list[tuple[int, Priority]] = []
    with session_scope() as session:
        rows = select(IngestionJob.id, IngestionJob.priority).where(IngestionJob.id.in_(job_ids))
        for job_id, priority in session.execute(rows).all():
            try:
                with session.begin_nested():  # a refused row leaves the others be
                    if reopen(session, job_id, message=RETRIED_BY_USER):
                        moved.append((job_id, Priority(priority)))
            except IntegrityError:  # another job of the fiction is active
                report.refused.append(job_id)
    report.retried += [job_id for job_id, _ in moved]
    try:
        ingestion_queue.enqueue_many(moved, settings=settings)
    except QueueUnavailableError as error:
        log.warning("%s retried jobs stay QUEUED until Redis is back: %s", len(moved), error)
        report.enqueued = False


@dataclass
class PurgeReport:
    jobs: int = 0  # ended job rows deleted (on a dry run: that would be)
    events: int = 0  # their history lines
    rq_jobs: int = 0  # spent RQ jobs of theirs deleted from Redis
    redis_error: str | None = None  # why their RQ jobs were not looked at


def purge(settings: Settings, *, older_than: timedelta, dry_run: bool = False) -> PurgeReport:
    """Delete the job rows that ended (DONE or ERROR) more than `older_than` ago, with their
    history and spooled pages (foreign-key cascades) and what is left of their RQ jobs, in
    keyset batches. Novels and chapters are never touched, nor active jobs."""
    ended = _ended_before(utcnow() - older_than)
    report = PurgeReport()
    if dry_run:
        with session_scope() as session:
            rows = select(func.count(IngestionJob.id)).where(ended)
            report.jobs = int(session.execute(rows).scalar_one())
            events = select(func.count(JobEvent.id)).join(IngestionJob).where(ended)
            report.events = int(session.execute(events).scalar_one())
        return report
    old = select(IngestionJob.id).where(ended)
    for batch in keyset_batches(old, IngestionJob.id, settings.process_queue_batch):
        _purge_batch([job_id for (job_id,) in batch], ended, settings=settings, report=report)
    return report


def _ended_before(cutoff: datetime) -> ColumnElement[bool]:
    ended_at = func.coalesce(IngestionJob.finished_at, IngestionJob.updated_at)
    return IngestionJob.status.in_([s.value for s in TERMINAL]) & (ended_at < cutoff)


def _purge_batch(
    job_ids: list[int], ended: ColumnElement[bool], *, settings: Settings, report: PurgeReport
) -> None:
    with session_scope() as session:
        events = (
            select(func.count(JobEvent.id))
            .join(IngestionJob)
            .where(JobEvent.job_id.in_(job_ids), ended)
        )
        report.events += int(session.execute(events).scalar_one())
        # checked again here: a row retried since the batch was read is kept
        purged = delete(IngestionJob).where(IngestionJob.id.in_(job_ids), ended)
        gone = list(session.execute(purged.returning(IngestionJob.id)).scalars())
    report.jobs += len(gone)
    if gone and report.redis_error is None:
        try:
            report.rq_jobs += ingestion_queue.delete_spent(gone, settings=settings)
        except QueueUnavailableError as error:  # they expire on their own (RESULT_TTL)
            report.redis_error = str(error)
