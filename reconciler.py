"""Bring every job row and its RQ job back into agreement.

One pass:
1. a running row (CRAWLING/PARSING/SAVING) whose RQ job is gone, ended, or held by a
   worker that stopped sending heartbeats goes back to QUEUED (or ERROR once its attempts
   are spent) -- after `stuck_grace` seconds without any update, so a run that is just
   finishing is left alone;
2. retries whose time has come are moved onto the queue when no RQ scheduler holds the
   scheduler lock (RQ's scheduler process dies with a Redis outage);
3. every QUEUED row whose RQ job is not where RQ keeps live jobs (its queue's list, the
   scheduled or deferred registry, or started on a live worker) is pushed onto its
   priority's queue, exactly once (this is also `cli.py process-queue`; see
   ingestion_queue.Pusher);
4. the refresh scheduler's pass (scheduler.schedule_due): novels due for a refresh get a
   low-priority job; under a Redis lock, so one pass acts however many run;
5. the spooled pages of jobs that ended more than SPOOL_RETENTION ago are deleted;
6. the pending callback of every ended job with no delivery queued is queued (callback.py).
Each pass is safe to run concurrently with the API, the workers and another pass; still,
one pass at a time is enough for a whole deployment. Every worker takes part
(WORKER_RECONCILE, on by default) through a `Companion`: a child process of the worker
that tries every LOCK_POLL seconds for a Redis lock (`take_turn`). The holder runs a
pass, renewing the lock (RECONCILE_LOCK_TTL) while it runs, then keeps it until
RECONCILE_INTERVAL has passed since the pass began: one pass per interval over the fleet.
A holder that dies (SIGKILL, OOM, its host gone) stops renewing, so another process takes
over within RECONCILE_LOCK_TTL. `cli.py reconcile --loop` takes turns under the same lock.

Why a child process, not a thread of the worker: the worker forks a work-horse per job,
and a fork copies whatever a thread holds at that instant (a half-used database or Redis
connection, a lock) into the horse; a process of its own shares nothing with the horses,
cannot slow the worker's job loop, never runs inside a horse, and dies with its worker
(ingestion_queue._children_die_with_their_parent) like RQ's scheduler process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.process import BaseProcess
from types import FrameType

from redis.exceptions import LockError, RedisError
from redis.lock import Lock
from setproctitle import setproctitle
from sqlalchemy import select

import callback
import ingestion_queue
import scheduler
import spool
from config import Settings, get_settings
from db import keyset_batches, session_scope
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
    callbacks_queued: int = 0  # callbacks of ended jobs queued (none was waiting)


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
    """Enqueue every QUEUED row whose RQ job is not live where RQ keeps it (each exactly
    once); the suspects (queued, yet on no list) get their second look at the end."""
    report = PushReport()
    pusher = ingestion_queue.Pusher(settings)
    for rows in queued_batches(settings.process_queue_batch):
        pushed = pusher.push(rows)
        report.found += len(rows)
        report.pushed += len(pushed)
        if on_batch is not None:
            on_batch(len(rows), len(pushed))
    late = pusher.settle()
    report.pushed += len(late)
    if late and on_batch is not None:
        on_batch(0, len(late))
    report.already = report.found - report.pushed
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
    stale = stale_running(settings)
    if not stale:
        return
    # Imported here: ingestion loads Scrapy (~1 s), which `cli.py process-queue` and the
    # other commands that import this module never need.
    from ingestion import abandon

    for job_id, run_id in stale:
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
    report.callbacks_queued = callback.pass_due(settings)
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


LOCK_POLL = 1.0  # seconds between a process's tries for the pass lock


def lock_key(settings: Settings) -> str:
    """The pass lock of a deployment (one per QUEUE_NAME on a Redis)."""
    return f"{ingestion_queue.KEY_PREFIX}:reconcile-lock:{settings.queue_name}"


def pass_lock(settings: Settings) -> Lock:
    connection = ingestion_queue.redis_connection(settings)
    return connection.lock(
        lock_key(settings), timeout=settings.reconcile_lock_ttl, thread_local=False
    )


def take_turn(settings: Settings, *, holder: str) -> ReconcileReport | None:
    """Run a pass if this process gets the pass lock; None if another holds it (a pass is
    running, or ran less than RECONCILE_INTERVAL ago). The lock's value names the holder."""
    lock = pass_lock(settings)
    if not lock.acquire(blocking=False, token=f"{holder}/{uuid.uuid4().hex[:8]}"):
        return None
    began = time.monotonic()
    try:
        with _renewed(lock, every=settings.reconcile_lock_ttl / 3):
            log.info("reconcile pass by %s: began", holder)
            report = reconcile(settings)
            log.info("reconcile pass by %s: ended", holder)
    except BaseException:
        _release(lock)  # another process may try at once
        raise
    _hold(lock, settings.reconcile_interval - (time.monotonic() - began))
    return report


@contextmanager
def _renewed(lock: Lock, *, every: float) -> Iterator[None]:
    """Reset the lock's TTL every `every` seconds while the block runs."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(every):
            try:
                lock.reacquire()
            except LockError:  # expired and taken: the pass ends, the next is the taker's
                log.warning("reconcile pass outlived its lock; another process holds it now")
                return
            except RedisError:
                log.warning("could not renew the reconcile lock", exc_info=True)

    renewer = threading.Thread(target=renew, name="reconcile-lock", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()


def _hold(lock: Lock, seconds: float) -> None:
    """Keep the lock (token checked) for the rest of the interval, so the fleet runs one
    pass per RECONCILE_INTERVAL; release it if the pass took longer."""
    try:
        if seconds >= 0.01:
            lock.extend(seconds, replace_ttl=True)
        else:
            lock.release()
    except LockError:
        log.warning("reconcile lock expired during the pass")


def _release(lock: Lock) -> None:
    with suppress(LockError, RedisError):
        lock.release()


def run_forever(settings: Settings, *, passes: int | None = None) -> None:
    """Take a turn at the pass lock every LOCK_POLL seconds (`passes`: how many tries);
    outages are logged, never fatal."""
    holder = _holder_name("reconcile-loop")
    tried = 0
    while passes is None or tried < passes:
        try:
            take_turn(settings, holder=holder)
        except Exception:  # Redis or the database is down: try again next time
            log.exception("reconcile pass failed; trying again in %s s", LOCK_POLL)
        tried += 1
        time.sleep(LOCK_POLL)


def _holder_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


class Companion:
    """A worker's child process that takes turns at the reconciler's pass (see the
    module's docstring); nothing when WORKER_RECONCILE is false."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self._process: BaseProcess | None = None

    @classmethod
    def start(cls, settings: Settings, *, holder: str) -> Companion:
        companion = cls(holder)
        if settings.worker_reconcile:
            companion._spawn()
        return companion

    def keep_alive(self) -> None:
        """Start it again if it died (the worker calls this between jobs)."""
        if self._process is not None and not self._process.is_alive():
            log.warning("the reconciler companion of %s died; starting it again", self.holder)
            self._process.join(0)
            self._spawn()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)

    def _spawn(self) -> None:
        context = multiprocessing.get_context("fork")  # the worker's preloaded modules, free
        self._process = context.Process(
            target=_companion_main, args=(self.holder,), name="reconciler", daemon=True
        )
        self._process.start()


def _companion_main(holder: str) -> None:
    setproctitle(f"novel-ingest reconciler of {holder}")  # not its worker's title: ps, tests
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)
    settings = get_settings()
    while True:
        try:
            take_turn(settings, holder=holder)
        except Exception:  # Redis or the database is down: try again next time
            log.exception("reconcile pass failed; trying again in %s s", LOCK_POLL)
        time.sleep(LOCK_POLL)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
