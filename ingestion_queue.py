"""The only module that talks to RQ: queue names, enqueue, retry policy, the job function.

An ingestion job's RQ id is deterministic (`ingestion-<row id>`), so enqueueing the same
row twice cannot create two RQ jobs, and anything can find the RQ job of a row.

There is one RQ queue per priority: `<QUEUE_NAME>-high`, `<QUEUE_NAME>` (normal) and
`<QUEUE_NAME>-low`. Workers listen on all three in that order, so RQ's own (atomic)
dequeue serves high first. A row's RQ job stays on its queue for good: RQ puts retries
back on the job's origin queue, and the functions that look up or cancel an RQ job find it
by id, whatever its queue.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.scheduler import RQScheduler
from rq.timeouts import JobTimeoutException

from config import Settings, get_settings
from errors import QueueUnavailableError, safe_message
from models.ingestion_job import Priority

log = logging.getLogger(__name__)

KEY_PREFIX = "novel-ingest"
CRASH_RETRY_INTERVALS = [1, 2, 4]  # a killed horse: RQ runs the job again after these waits
HARD_TIMEOUT_MARGIN = 120  # RQ's own kill comes this long after the job's soft timeout
REDIS_RECONNECT_MAX = 5.0  # seconds between reconnects at most, while Redis is down
ENQUEUE_LOCK_TTL = 30  # seconds a caller may hold a row's enqueue lock
PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent dies
LIVE = {RQStatus.QUEUED, RQStatus.STARTED, RQStatus.SCHEDULED, RQStatus.DEFERRED}


def rq_job_id(job_id: int) -> str:
    return f"ingestion-{job_id}"


def row_id(rq_id: str) -> int | None:
    prefix, _, number = rq_id.partition("-")
    return int(number) if prefix == "ingestion" and number.isdigit() else None


@lru_cache(maxsize=8)
def _redis(url: str) -> Redis:
    return Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
    )


def redis_connection(settings: Settings | None = None) -> Redis:
    return _redis((settings or get_settings()).redis_url)


def unavailable(error: RedisError) -> QueueUnavailableError:
    """The error callers see when Redis fails: its own line, without credentials."""
    return QueueUnavailableError(f"Redis unavailable: {safe_message(str(error), limit=200)}")


SERVING_ORDER = (Priority.HIGH, Priority.NORMAL, Priority.LOW)  # what workers take first


def queue_name(priority: Priority, settings: Settings | None = None) -> str:
    """The RQ queue of a priority: QUEUE_NAME for normal, QUEUE_NAME-high / -low."""
    base = (settings or get_settings()).queue_name
    return base if priority is Priority.NORMAL else f"{base}-{priority.value}"


def queue_for(priority: Priority, settings: Settings | None = None) -> Queue:
    settings = settings or get_settings()
    return Queue(
        queue_name(priority, settings),
        connection=redis_connection(settings),
        default_timeout=settings.job_timeout + HARD_TIMEOUT_MARGIN,
    )


def queues(settings: Settings | None = None) -> list[Queue]:
    """Every ingestion queue, in the order workers serve them: high, normal, low."""
    return [queue_for(priority, settings) for priority in SERVING_ORDER]


def callback_queue(settings: Settings | None = None) -> Queue:
    """`<QUEUE_NAME>-callbacks`: deliveries of callback_url POSTs (callback.py); workers
    serve it before the ingestion queues (a delivery is one short request)."""
    settings = settings or get_settings()
    return Queue(
        f"{settings.queue_name}-callbacks",
        connection=redis_connection(settings),
        default_timeout=int(settings.callback_timeout) + 30,
    )


def callback_rq_id(job_id: int) -> str:
    return f"callback-{job_id}"


def enqueue_callback(job_id: int, *, settings: Settings | None = None) -> bool:
    """Queue the delivery of a job's callback unless one is waiting or running already
    (RQ id `callback-<row id>`). Failed deliveries are retried by RQ with backoff
    (CALLBACK_ATTEMPTS, CALLBACK_BACKOFF doubling): a callback's attempts are its own,
    apart from the ingestion's. True if queued now."""
    settings = settings or get_settings()
    connection = redis_connection(settings)
    rq_id = callback_rq_id(job_id)
    try:
        with suppress(NoSuchJobError, InvalidJobOperation):
            job = Job.fetch(rq_id, connection=connection)
            if job.get_status() in LIVE:
                return False
            job.delete()
        intervals = [
            math.ceil(settings.callback_backoff * 2**n) for n in range(settings.callback_attempts)
        ]
        retry = (
            Retry(max=settings.callback_attempts - 1, interval=intervals) if intervals[1:] else None
        )
        callback_queue(settings).enqueue(
            "callback.deliver",
            job_id,
            job_id=rq_id,
            retry=retry,
            result_ttl=settings.result_ttl,
            failure_ttl=settings.failure_ttl,
            description=f"callback of ingest job {job_id}",
        )
    except RedisError as error:
        raise unavailable(error) from error
    return True


def get_queue(settings: Settings | None = None) -> Queue:
    """The normal-priority queue (QUEUE_NAME)."""
    return queue_for(Priority.NORMAL, settings)


def enqueue(
    job_id: int, *, priority: Priority = Priority.NORMAL, settings: Settings | None = None
) -> bool:
    """Push a row onto its priority's queue unless it already has a live RQ job. True if
    pushed."""
    return bool(enqueue_many([(job_id, priority)], settings=settings))


def enqueue_many(
    rows: Sequence[tuple[int, Priority]], *, settings: Settings | None = None
) -> list[int]:
    """Push every row (id, priority) that has no live RQ job onto its priority's queue;
    return the ids pushed.

    A short Redis lock per row makes concurrent callers (API, CLI, reconciler) agree on
    who pushes it; the lock is released once the RQ job exists. The pushes of all
    priorities go in one Redis transaction.
    """
    settings = settings or get_settings()
    priorities = {job_id: Priority(priority) for job_id, priority in rows}
    connection = redis_connection(settings)
    token = uuid.uuid4().hex
    try:
        locked = _lock(connection, list(priorities), token)
        try:
            fresh = [i for i in locked if not _live(connection, i)]
            _push(connection, [(i, priorities[i]) for i in fresh], settings)
        finally:
            _unlock(connection, locked, token)
    except RedisError as error:
        raise unavailable(error) from error
    return fresh


def requeue(job_id: int, *, priority: Priority, settings: Settings | None = None) -> bool:
    """Move a row's waiting RQ job onto the queue of `priority` (a scheduled refresh a user
    has now asked for). True if it waits there now; False if it is running or scheduled
    for a retry (it keeps its place) or another caller is pushing it."""
    settings = settings or get_settings()
    connection = redis_connection(settings)
    token = uuid.uuid4().hex
    try:
        if not _lock(connection, [job_id], token):
            return False
        try:
            try:
                job = Job.fetch(rq_job_id(job_id), connection=connection)
                if job.get_status() != RQStatus.QUEUED:
                    return False
                job.delete(remove_from_queue=True)
            except NoSuchJobError:
                pass  # not on any queue: push it
            _push(connection, [(job_id, priority)], settings)
        finally:
            _unlock(connection, [job_id], token)
    except RedisError as error:
        raise unavailable(error) from error
    return True


def _push(connection: Redis, rows: Sequence[tuple[int, Priority]], settings: Settings) -> None:
    every = queues(settings)
    with connection.pipeline() as pipe:
        # RQ lists a queue (rq info, rq-dashboard) once a job was pushed to it; list all
        # three from the first push, so an empty high or low queue shows as empty.
        pipe.sadd(Queue.redis_queues_keys, *(queue.key for queue in every))
        for priority, queue in zip(SERVING_ORDER, every, strict=True):
            ids = [job_id for job_id, p in rows if p is priority]
            if ids:
                queue.enqueue_many([_prepare(i, settings) for i in ids], pipeline=pipe)
        pipe.execute()


def _lock_key(job_id: int) -> str:
    return f"{KEY_PREFIX}:enqueue-lock:{job_id}"


def _lock(connection: Redis, job_ids: Sequence[int], token: str) -> list[int]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.set(_lock_key(job_id), token, nx=True, ex=ENQUEUE_LOCK_TTL)
        granted = pipe.execute()
    return [job_id for job_id, ok in zip(job_ids, granted, strict=True) if ok]


# Delete each key only while it still holds our token: a caller slower than the lock's
# TTL must not release a lock that another caller has taken since.
_RELEASE = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then released = released + redis.call('del', key) end
end
return released
"""


def _unlock(connection: Redis, job_ids: Iterable[int], token: str) -> None:
    release_locks(connection, [_lock_key(job_id) for job_id in job_ids], token)


def release_locks(connection: Redis, keys: Sequence[str], token: str) -> int:
    """Delete each lock key that still holds `token`; return how many were deleted."""
    if not keys:
        return 0
    return int(connection.eval(_RELEASE, len(keys), *keys, token))


def _live(connection: Redis, job_id: int) -> bool:
    state = run_state(job_id, connection=connection)
    if state in (RunState.ENDED, RunState.ORPHANED):  # a spent or dead RQ job: replace it
        Job(rq_job_id(job_id), connection=connection).delete()
    return state is RunState.LIVE


class RunState(StrEnum):
    """What RQ knows of a row's RQ job."""

    ABSENT = "absent"  # no RQ job (never pushed, expired, or Redis lost it)
    LIVE = "live"  # waiting, scheduled, or running on a worker that is alive
    ORPHANED = "orphaned"  # marked running, but its worker stopped sending heartbeats
    ENDED = "ended"  # finished, failed, stopped or cancelled


def run_state(job_id: int, *, connection: Redis | None = None) -> RunState:
    """The state of a row's RQ job, found by its id on whichever queue it is."""
    connection = connection or redis_connection()
    try:
        job = Job.fetch(rq_job_id(job_id), connection=connection)
        status = job.get_status()
    except (NoSuchJobError, InvalidJobOperation):
        return RunState.ABSENT
    if status not in LIVE:
        return RunState.ENDED
    if status == RQStatus.STARTED and not _worker_alive(connection, job.worker_name):
        return RunState.ORPHANED
    return RunState.LIVE


def _worker_alive(connection: Redis, name: str | None) -> bool:
    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None or worker.last_heartbeat is None:
        return False
    silence = (datetime.now(UTC) - worker.last_heartbeat.replace(tzinfo=UTC)).total_seconds()
    return silence < 3 * get_settings().worker_heartbeat + 5


def _prepare(job_id: int, settings: Settings) -> Any:
    return Queue.prepare_data(
        perform,
        args=(job_id,),
        job_id=rq_job_id(job_id),
        timeout=settings.job_timeout + HARD_TIMEOUT_MARGIN,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.failure_ttl,
        retry=Retry(max=settings.job_max_attempts, interval=CRASH_RETRY_INTERVALS),
        description=f"ingest job {job_id}",
    )


def enqueue_due_retries(settings: Settings | None = None) -> int:
    """Move retries whose time has come onto the queue, if no RQ scheduler is doing it.

    RQ's scheduler runs in one worker at a time, under a lock. Its process ends on a Redis
    error, and a worker only restarts it in its maintenance pass (every 10 minutes), so
    retries scheduled across a Redis outage would wait that long. Taking the same lock
    first means this never competes with a live scheduler; the locks are per queue, and
    only the queues whose lock it got are served. Returns how many were moved.
    """
    every = queues(settings)
    scheduler = RQScheduler(every, connection=every[0].connection)
    try:
        owned = scheduler.acquire_locks()
        if not owned:
            return 0
        try:
            now = int(time.time())
            served = [q for q in every if q.name in owned]
            due = sum(len(q.scheduled_job_registry.get_jobs_to_schedule(now)) for q in served)
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
    except RedisError as error:
        raise unavailable(error) from error
    return due


def cancel(job_id: int, *, settings: Settings | None = None) -> None:
    """Stop the RQ side of a job: drop it from its queue (whichever priority), or stop its
    running horse."""
    connection = redis_connection(settings)
    try:
        job = Job.fetch(rq_job_id(job_id), connection=connection)
        with suppress(InvalidJobOperation):  # it ended or was cancelled meanwhile
            if job.get_status() == RQStatus.STARTED:
                send_stop_job_command(connection, job.id)
            else:
                job.cancel()
    except NoSuchJobError:
        return
    except RedisError as error:
        raise unavailable(error) from error


def perform(job_id: int) -> Retry | str:
    """The RQ job function: run one ingestion; ask RQ to retry when the run says so."""
    from ingestion import abandon, run_ingestion

    settings = get_settings()
    try:
        outcome = run_ingestion(job_id, settings=settings, fatal=(JobTimeoutException,))
    except JobTimeoutException:
        abandon(job_id, reason=f"timed out after {settings.job_timeout} s", final=True)
        return "error"
    if outcome.retry_in is not None:
        return Retry(max=settings.job_max_attempts, interval=math.ceil(outcome.retry_in))
    return outcome.status.value if outcome.status else "skipped"


class IngestionWorker(Worker):
    """A forking worker whose children die with it, and that settles a job's row when its
    work-horse dies.

    RQ then retries the RQ job (CRASH_RETRY); the row goes back to QUEUED so the retry can
    claim it, or to ERROR once the retries are spent.
    """

    # RQ backs off up to 60 s between reconnects while Redis is down; a queue that is back
    # should be served within seconds, and a reconnect attempt costs next to nothing.
    max_connection_wait_time = REDIS_RECONNECT_MAX

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", get_settings().worker_heartbeat)
        super().__init__(*args, **kwargs)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        _children_die_with_their_parent()
        return bool(super().work(*args, **kwargs))

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        job_id = row_id(job.id)
        if job_id is None:
            return
        from ingestion import abandon

        limit = get_settings().job_timeout
        # RQ's own monitor kills a horse that outlives its hard timeout (a hang in C code,
        # where the horse's alarm cannot reach): that is a timeout, not a crash to retry.
        timed_out = _running_for(job) >= limit
        reason = f"timed out after {limit} s" if timed_out else f"work-horse died (exit {ret_val})"
        try:
            abandon(job_id, reason=reason, final=timed_out)
        except Exception:  # the reconciler settles it later
            log.exception("could not settle job %s after its work-horse died", job_id)
        _free_sites_of(self.connection, retpid)


def _free_sites_of(connection: Redis, pid: int) -> None:
    """A dead horse's requests are not in flight any more: free its sites' slots now, so
    the fleet does not wait out its leases (crawler/pacing.py)."""
    try:
        from crawler.pacing import release_held_by  # the worker has Scrapy loaded already

        freed = release_held_by(connection, pid)
    except Exception:  # they expire on their own
        log.warning("could not free the request slots of work-horse %s", pid, exc_info=True)
        return
    if freed:
        log.info("freed %s request slots held by work-horse %s", freed, pid)


def _running_for(job: Job) -> float:
    if job.started_at is None:
        return 0.0
    return (datetime.now(UTC) - job.started_at.replace(tzinfo=UTC)).total_seconds()


_forking = {"pid": 0, "hooked": False}


def _children_die_with_their_parent() -> None:
    """From now on, every process this one forks is SIGKILLed by the kernel if it dies.

    A worker's children are its work-horses and RQ's scheduler. RQ puts a horse in a
    process group of its own, so neither a supervisor's group kill nor a SIGKILL of the
    worker reaches it: an orphaned horse would go on writing under an RQ job id that the
    reconciler may have handed to a new run, and an orphaned scheduler would run on,
    unsupervised, holding the scheduler lock.
    """
    if _forking["hooked"] or not sys.platform.startswith("linux"):
        return
    os.register_at_fork(before=_remember_parent, after_in_child=_die_with_parent)
    _forking["hooked"] = True


def _remember_parent() -> None:
    _forking["pid"] = os.getpid()


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != _forking["pid"]:  # the parent died before the request took effect
        os._exit(1)
