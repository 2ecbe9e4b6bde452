"""Bring every job row and its RQ job back into agreement.

One pass:
1. a running row (CRAWLING/PARSING/SAVING) whose RQ job is gone, ended, or held by a
   worker that stopped sending heartbeats goes back to QUEUED (or ERROR once its attempts
   are spent) -- after `stuck_grace` seconds without any update, so a run that is just
   finishing is left alone;
2. retries whose time has come are moved onto the queue when no RQ scheduler holds the
   scheduler lock (RQ's scheduler process dies with a Redis outage);
3. every QUEUED row with no live RQ job is pushed onto its priority's queue (this is also
   `cli.py process-queue`);
4. the refresh scheduler's pass (scheduler.schedule_due): novels due for a refresh get a
   low-priority job; under a Redis lock, so one pass acts however many run;
5. the spooled pages of jobs that ended more than SPOOL_RETENTION ago are deleted.
Run it in a loop (`cli.py reconcile --loop`, one per deployment); each pass is safe to
run concurrently with the API, the workers and another pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

import ingestion_queue
import scheduler
import spool
from config import Settings
from db import keyset_batches, session_scope
from ingestion import abandon
from ingestion_queue import RunState
from models import RUNNING, IngestionJob, JobStatus, Priority
from models.base import utcnow
from scheduler import ScheduleReport

log = logging.getLogger(__name__)


@dataclass
class PushReport:
    found: int = 0  # QUEUED rows seen
    pushed: int = 0  # pushed onto the queue now
    already: int = 0  # had a live RQ job already


@dataclass
class ReconcileReport:
    recovered: list[int] = field(default_factory=list)  # running rows sent back to QUEUED
    failed: list[int] = field(default_factory=list)  # running rows ended as ERROR
    push: PushReport = field(default_factory=PushReport)
    retries_due: int = 0  # scheduled retries moved to the queue (no scheduler was running)
    schedule: ScheduleReport = field(default_factory=ScheduleReport)  # the refresh scheduler
    spool_expired: int = 0  # spooled pages of ended jobs deleted


def queued_batches(batch: int) -> Iterator[list[tuple[int, Priority]]]:
    """(id, priority) of QUEUED rows, in batches, by keyset pagination (rows may change
    meanwhile)."""
    queued = select(IngestionJob.id, IngestionJob.priority).where(
        IngestionJob.status == JobStatus.QUEUED.value
    )
    for rows in keyset_batches(queued, IngestionJob.id, batch):
        yield [(job_id, Priority(priority)) for job_id, priority in rows]


def push_queued(
    settings: Settings, *, on_batch: Callable[[int, int], None] | None = None
) -> PushReport:
    """Enqueue every QUEUED row that has no live RQ job (each exactly once)."""
    report = PushReport()
    for rows in queued_batches(settings.process_queue_batch):
        pushed = ingestion_queue.enqueue_many(rows, settings=settings)
        report.found += len(rows)
        report.pushed += len(pushed)
        report.already += len(rows) - len(pushed)
        if on_batch is not None:
            on_batch(len(rows), len(pushed))
    return report


def stale_running(settings: Settings) -> list[tuple[int, str | None]]:
    """Running rows not updated for `stuck_grace` seconds, with the run that holds each."""
    cutoff = utcnow() - timedelta(seconds=settings.stuck_grace)
    with session_scope() as session:
        stmt = select(IngestionJob.id, IngestionJob.run_id).where(
            IngestionJob.status.in_([s.value for s in RUNNING]), IngestionJob.updated_at < cutoff
        )
        return [(job_id, run_id) for job_id, run_id in session.execute(stmt)]


def recover_running(settings: Settings, report: ReconcileReport) -> None:
    for job_id, run_id in stale_running(settings):
        state = ingestion_queue.run_state(job_id)
        if state is RunState.LIVE:
            continue
        # Only the run judged lost: a run that claimed the job since is alive and left be.
        reason = f"its worker was lost (RQ job {state.value})"
        outcome = abandon(job_id, reason=reason, run_id=run_id)
        if outcome is JobStatus.QUEUED:
            report.recovered.append(job_id)
        elif outcome is JobStatus.ERROR:
            report.failed.append(job_id)


def reconcile(settings: Settings) -> ReconcileReport:
    report = ReconcileReport()
    recover_running(settings, report)
    report.retries_due = ingestion_queue.enqueue_due_retries(settings)
    report.push = push_queued(settings)
    report.schedule = scheduler.schedule_due(settings)
    with session_scope() as session:
        report.spool_expired = spool.expire(session, retention=settings.spool_retention)
    if _eventful(report):
        log.info(
            "reconcile: recovered %s, failed %s, pushed %s queued rows, %s due retries,"
            " %s spooled pages expired; %s",
            report.recovered,
            report.failed,
            report.push.pushed,
            report.retries_due,
            report.spool_expired,
            report.schedule.summary(),
        )
    return report


def _eventful(report: ReconcileReport) -> bool:
    schedule = report.schedule
    return bool(
        report.recovered
        or report.failed
        or report.push.pushed
        or report.retries_due
        or report.spool_expired
        or schedule.submitted
        or schedule.backfilled
    )


def run_forever(settings: Settings, *, passes: int | None = None) -> None:
    """Reconcile every `reconcile_interval` seconds; outages are logged, never fatal."""
    done = 0
    while passes is None or done < passes:
        try:
            reconcile(settings)
        except Exception:  # Redis or the database is down: try again next pass
            log.exception("reconcile pass failed; retrying in %s s", settings.reconcile_interval)
        done += 1
        time.sleep(settings.reconcile_interval)
