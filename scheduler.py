"""Scheduled refresh: when each stored novel is due to be read from its site again, and
the pass that submits the refreshes that are due.

One pass (`schedule_due`, run by every reconciler pass and by `cli.py schedule`):
1. novels with no `next_refresh_at` (stored before scheduled refresh existed, or while
   REFRESH_INTERVAL was 0) get one: their last check (or last update) plus the jittered
   interval. One that is already past is due now;
2. due novels (`next_refresh_at <= now`) without an active job for the same fiction,
   oldest due first, at most REFRESH_BATCH, each get a low-priority refresh job
   (origin "schedule"), and their `next_refresh_at` moves on by the jittered interval.

Exactly one pass acts at a time, however many processes run one: a pass holds a Redis lock
(SET NX with a token and a TTL, renewed as it goes, released by compare-and-delete) and a
pass that does not get it does nothing. Behind the lock, each submission is a
compare-and-set on the novel's `next_refresh_at`, committed in the same transaction as the
job row: a novel is submitted once per due time even if two passes overlap (a lock that
expired under a stalled pass), and a failed submission leaves it due for the next pass.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Exists

import ingestion_queue
import jobs
from config import Settings
from db import OUTAGE_ERRORS, session_scope
from errors import IngestError, QueueUnavailableError, StorageUnavailableError
from models import ACTIVE, IngestionJob, Novel, Origin, Priority
from models.base import utcnow

log = logging.getLogger(__name__)

COMPLETED = "completed"
LOCK_TTL = 60  # seconds; renewed before every submission, so only a stalled pass loses it


def next_refresh_at(
    status: str | None, *, settings: Settings, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When a novel checked at `now` is due again: REFRESH_INTERVAL, or
    REFRESH_INTERVAL_COMPLETED for a completed one, spread by up to REFRESH_JITTER of
    itself either way so that novels ingested together do not all come due together.
    None when that interval is 0 (scheduled refresh off)."""
    interval = (
        settings.refresh_interval_completed if status == COMPLETED else settings.refresh_interval
    )
    if interval <= 0:
        return None
    spread = (rng or random).uniform(-1.0, 1.0) * settings.refresh_jitter
    return now + timedelta(seconds=interval * (1.0 + spread))


@dataclass
class ScheduleReport:
    """What one scheduler pass did."""

    skipped: str | None = None  # why the pass did nothing: "off" or "locked"
    backfilled: int = 0  # novels given their first next_refresh_at
    submitted: list[int] = field(default_factory=list)  # refresh jobs created
    busy: int = 0  # due novels left alone: they have an active job
    raced: int = 0  # due novels another pass (or a finished job) moved on meanwhile
    failed: int = 0  # due novels whose URL no longer resolves (logged; tried next time)

    def summary(self) -> str:
        if self.skipped == "off":
            return "scheduled refresh is off (REFRESH_INTERVAL=0)"
        if self.skipped == "locked":
            return "another scheduler pass holds the lock: nothing done"
        parts = [f"scheduled {len(self.submitted)} refreshes"]
        if self.backfilled:
            parts.append(f"{self.backfilled} novels given a refresh time")
        if self.busy:
            parts.append(f"{self.busy} due novels have an active job")
        if self.raced:
            parts.append(f"{self.raced} taken by another pass")
        if self.failed:
            parts.append(f"{self.failed} could not be submitted")
        return ", ".join(parts)


def schedule_due(settings: Settings, *, now: datetime | None = None) -> ScheduleReport:
    """One scheduler pass (see the module's docstring). Raises QueueUnavailableError or
    StorageUnavailableError when Redis or the database is down; what was submitted stays
    submitted and the rest is done by the next pass."""
    if settings.refresh_interval <= 0:
        return ScheduleReport(skipped="off")
    try:
        lock = PassLock(ingestion_queue.redis_connection(settings), lock_key(settings))
        if not lock.acquire():
            return ScheduleReport(skipped="locked")
        try:
            return run_pass(settings, now=now or utcnow(), still_ours=lock.extend)
        finally:
            lock.release()
    except RedisError as error:
        raise QueueUnavailableError(f"Redis unavailable: {error}") from error
    except OUTAGE_ERRORS as error:
        cause = getattr(error, "orig", None) or error
        raise StorageUnavailableError(f"database unavailable: {cause}") from error


def lock_key(settings: Settings) -> str:
    # Per queue name, like everything else of one deployment sharing a Redis database.
    return f"{ingestion_queue.KEY_PREFIX}:refresh-scheduler:{settings.queue_name}"


class PassLock:
    """A Redis lock held by one pass: taken with SET NX and a random token, renewed and
    released only while it still holds that token."""

    _EXTEND = """
    if redis.call('get', KEYS[1]) == ARGV[1] then
      return redis.call('expire', KEYS[1], ARGV[2])
    end
    return 0
    """

    def __init__(self, connection: Redis, key: str, *, ttl: int = LOCK_TTL) -> None:
        self.connection, self.key, self.ttl = connection, key, ttl
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(self.connection.set(self.key, self.token, nx=True, ex=self.ttl))

    def extend(self) -> bool:
        """Renew the lock; False if it expired and another pass may hold it now."""
        return bool(self.connection.eval(self._EXTEND, 1, self.key, self.token, self.ttl))

    def release(self) -> None:
        try:
            ingestion_queue.release_locks(self.connection, [self.key], self.token)
        except RedisError:  # it expires on its own
            log.warning("could not release the scheduler lock; it expires in %s s", self.ttl)


def run_pass(
    settings: Settings, *, now: datetime, still_ours: Callable[[], bool]
) -> ScheduleReport:
    """The pass itself, for the holder of the lock. `still_ours` renews the lock; it is
    asked between batches and before each submission, and the pass stops if the lock was
    lost (the next pass does the rest)."""
    report = ScheduleReport(backfilled=backfill(settings, now=now, still_ours=still_ours))
    with session_scope() as session:
        due = _due(session, settings=settings, now=now)
        report.busy = _busy(session, now=now)
    for novel_id, status, seen in due:
        if not still_ours():
            log.warning("scheduler lock lost mid-pass; the next pass does the rest")
            break
        _submit(novel_id, status, seen, settings=settings, now=now, report=report)
    if report.submitted or report.backfilled:
        log.info("scheduler: %s", report.summary())
    return report


def backfill(settings: Settings, *, now: datetime, still_ours: Callable[[], bool]) -> int:
    """Give novels without a next_refresh_at one, from their last check (else their last
    update) plus the jittered interval; return how many were given one."""
    done, last = 0, 0
    while still_ours():
        with session_scope() as session:
            stmt = (
                select(Novel.id, Novel.status, Novel.last_checked_at, Novel.updated_at)
                .where(Novel.next_refresh_at.is_(None), Novel.id > last)
                .order_by(Novel.id)
                .limit(settings.refresh_batch)
            )
            rows = session.execute(stmt).all()
            for novel_id, status, checked, updated in rows:
                nxt = next_refresh_at(status, settings=settings, now=checked or updated or now)
                if nxt is not None:  # None: a completed novel, REFRESH_INTERVAL_COMPLETED=0
                    done += _advance(session, novel_id, seen=None, nxt=nxt)
        if not rows:
            break
        last = rows[-1].id
    return done


def _due(
    session: Session, *, settings: Settings, now: datetime
) -> list[tuple[int, str | None, datetime]]:
    stmt = (
        select(Novel.id, Novel.status, Novel.next_refresh_at)
        .where(Novel.next_refresh_at <= now, ~_has_active_job())
        .order_by(Novel.next_refresh_at, Novel.id)
        .limit(settings.refresh_batch)
    )
    return [(novel_id, status, seen) for novel_id, status, seen in session.execute(stmt)]


def _busy(session: Session, *, now: datetime) -> int:
    stmt = select(func.count(Novel.id)).where(Novel.next_refresh_at <= now, _has_active_job())
    return int(session.execute(stmt).scalar_one())


def _has_active_job() -> Exists:
    """An active job for the novel's fiction (by site and site's id, whatever its URL)."""
    return exists().where(
        IngestionJob.site == Novel.site,
        IngestionJob.site_novel_id == Novel.site_novel_id,
        IngestionJob.status.in_([s.value for s in ACTIVE]),
    )


def _advance(
    session: Session, novel_id: int, *, seen: datetime | None, nxt: datetime | None
) -> int:
    """Compare-and-set a novel's next_refresh_at from `seen` to `nxt`; 1 if it moved.
    The caller commits."""
    unchanged = Novel.next_refresh_at.is_(None) if seen is None else Novel.next_refresh_at == seen
    stmt = (
        update(Novel)
        .where(Novel.id == novel_id, unchanged)
        # Rescheduling is not a change of the novel: keep updated_at (its onupdate).
        .values(next_refresh_at=nxt, updated_at=Novel.updated_at)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def _submit(
    novel_id: int,
    status: str | None,
    seen: datetime,
    *,
    settings: Settings,
    now: datetime,
    report: ScheduleReport,
) -> None:
    """Move the novel's due time on and create its job, committed together: a pass that
    dies in between leaves the novel due, and a second pass finds it moved on."""
    nxt = next_refresh_at(status, settings=settings, now=now)
    with session_scope() as session:
        if not _advance(session, novel_id, seen=seen, nxt=nxt):
            report.raced += 1
            return
        if nxt is None:  # completed, and REFRESH_INTERVAL_COMPLETED=0: no more refreshes
            return
        try:
            submission = jobs.refresh(
                session, novel_id, settings=settings, priority=Priority.LOW, origin=Origin.SCHEDULE
            )
        except IngestError as error:  # its URL no longer resolves: try at the next due time
            session.rollback()
            _advance(session, novel_id, seen=seen, nxt=nxt)
            log.warning("scheduler: novel %s not submitted: %s", novel_id, error)
            report.failed += 1
            return
        if submission.created:
            report.submitted.append(submission.job.id)
            return
        # A job for the fiction started meanwhile. The move on stays; if the submission
        # rolled it back (it lost a race to insert the job), it is made again.
        _advance(session, novel_id, seen=seen, nxt=nxt)
        report.busy += 1
