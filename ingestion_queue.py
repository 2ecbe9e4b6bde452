"""The only module that talks to RQ: queue names, enqueue, retry policy, the job function.

An ingestion job's RQ id is deterministic (`ingestion-<row id>`), so enqueueing the same
row twice cannot create two RQ jobs, and anything can find the RQ job of a row.

There is one RQ queue per priority: `<QUEUE_NAME>-high`, `<QUEUE_NAME>` (normal) and
`<QUEUE_NAME>-low`. Workers listen on all three in that order, so RQ's own (atomic)
dequeue serves high first. A row's RQ job stays on its queue for good: RQ puts retries
back on the job's origin queue, and the functions that look up or cancel an RQ job find it
by id, whatever its queue.

RQ's state says what the row says (rq info, rq-dashboard): an RQ job ends finished only
when its row is DONE, failed (with the row's error_message in its result) when ERROR,
canceled when a user cancelled it; `perform` and the worker's `align` see to it. The row's
`attempts` is the one retry budget: no RQ Retry is set at enqueue; a retry (a retryable
failure, a killed horse) is the same RQ job scheduled again, only while the row has
attempts left. A row counts as enqueued only where RQ really keeps it: on its queue's
list, in the scheduled or deferred registry, or started on a live worker (`Pusher`).
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
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import ExecutionRegistry
from rq.job import Job
from rq.job import JobStatus as RQStatus
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.scheduler import RQScheduler
from rq.timeouts import JobTimeoutException
from rq.worker import BaseWorker

from config import Settings, get_settings
from errors import CANCELLED_BY_USER, JobFailed, QueueUnavailableError, safe_message
from models.ingestion_job import JobStatus, Priority

log = logging.getLogger(__name__)

KEY_PREFIX = "novel-ingest"
CRASH_RETRY_INTERVALS = [1, 2, 4]  # a killed horse's job runs again after these waits (by attempt)
RQ_RETRY_MAX = 2**31  # a Retry's max: out of reach, the row's attempts decide (see perform)
SUSPECT_PAUSE = 1.0  # seconds between two looks at a queued RQ job no queue list holds
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


def _off_its_list(connection: Redis, job: Job) -> bool:
    """A job whose hash says queued but that is on no list (its queue was DEL'd by hand).
    A delivery popped by a worker this instant may look so too: delivering twice is
    refused by callback.deliver's claim of the attempt."""
    if job.get_status(refresh=False) != RQStatus.QUEUED:
        return False
    return connection.lpos(Queue(job.origin, connection=connection).key, job.id) is None


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
            if job.get_status() in LIVE and not _off_its_list(connection, job):
                return False
            job.delete()  # spent, or stranded by a queue emptied by hand
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
    """Push every row (id, priority) whose RQ job is not waiting or running where RQ
    keeps such jobs onto its priority's queue; return the ids pushed (see Pusher)."""
    pusher = Pusher(settings or get_settings())
    return pusher.push(rows) + pusher.settle()


class Pusher:
    """The pushes of one caller (one enqueue_many call, or one pass of process-queue).

    A row is pushed when its RQ job is absent, spent (finished, failed, stopped,
    cancelled), orphaned (started on a worker that stopped sending heartbeats) or lost: its
    hash says waiting but neither its queue's list nor the scheduled or deferred registry
    holds it (`redis-cli DEL rq:queue:...`, a Redis that lost part of its data).

    A short Redis lock per row makes concurrent callers (API, CLI, reconciler) agree on
    who pushes it; the lock is released once the RQ job exists. The pushes of all
    priorities go in one Redis transaction, with the removal of the spent job they replace.

    The queue lists are read once per caller into a set (never one scan per row). A hash
    that says queued while that set lacks the id is only a suspect: the set may be older
    than a push, and a worker pops a job (one BLPOP over several lists) a moment before it
    records its execution. `settle()` reads the lists again, waits SUSPECT_PAUSE and looks
    at each suspect once more under its lock: only one whose hash, executions and
    registries did not change in between, and that the fresh lists lack, is pushed.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection = redis_connection(settings)
        self._listed: set[str] | None = None
        self._suspects: dict[int, tuple[Priority, Glance]] = {}

    def push(self, rows: Sequence[tuple[int, Priority]]) -> list[int]:
        """Push the rows that need it now; keep the suspects for settle(). Returns the ids
        pushed."""
        priorities = {job_id: Priority(priority) for job_id, priority in rows}
        try:
            return self._locked(
                list(priorities), lambda ids, seen: self._first_look(ids, seen, priorities)
            )
        except RedisError as error:
            raise unavailable(error) from error

    def states(self, job_ids: Sequence[int]) -> list[RunState]:
        """Where each row's RQ job is, at one look, against the lists as this caller read
        them (what push() judges, without pushing: a LOST queued job may be a suspect)."""
        try:
            seen = glance(self.connection, job_ids)
            return judge(self.connection, seen, on_list=self._on_list)
        except RedisError as error:
            raise unavailable(error) from error

    def settle(self) -> list[int]:
        """Push the suspects still lost at a second look, SUSPECT_PAUSE later."""
        suspects, self._suspects = self._suspects, {}
        if not suspects:
            return []
        try:
            listed = listed_ids(self.connection, self.settings)
            unseen = {i: s for i, s in suspects.items() if s[1].rq_id not in listed}
            if not unseen:
                return []
            time.sleep(SUSPECT_PAUSE)
            pushed: list[int] = []
            ids = list(unseen)
            for start in range(0, len(ids), self.settings.process_queue_batch):
                chunk = ids[start : start + self.settings.process_queue_batch]
                pushed += self._locked(
                    chunk, lambda locked, seen: self._second_look(locked, seen, unseen)
                )
        except RedisError as error:
            raise unavailable(error) from error
        return pushed

    def _locked(
        self, job_ids: list[int], act: Callable[[list[int], list[Glance]], list[int]]
    ) -> list[int]:
        """`act` on the rows whose lock this caller got, with a look at each taken under
        the lock; the locks are released after."""
        token = uuid.uuid4().hex
        try:
            locked, glances = lock_and_glance(self.connection, job_ids, token)
            return act(locked, glances)
        finally:
            # every row asked for: the script may have run when its reply was lost, and
            # only the keys that still hold this caller's token are released
            _unlock(self.connection, job_ids, token)

    def _first_look(
        self, job_ids: list[int], glances: list[Glance], priorities: dict[int, Priority]
    ) -> list[int]:
        states = judge(self.connection, glances, on_list=self._on_list)
        pushing: list[tuple[int, Glance]] = []
        for job_id, seen, state in zip(job_ids, glances, states, strict=True):
            if state is RunState.LOST and seen.status == RQStatus.QUEUED.value:
                self._suspects[job_id] = (priorities[job_id], seen)
            elif state is not RunState.LIVE:
                pushing.append((job_id, seen))
        return self._push(pushing, {i: priorities[i] for i, _ in pushing})

    def _second_look(
        self,
        job_ids: list[int],
        glances: list[Glance],
        unseen: dict[int, tuple[Priority, Glance]],
    ) -> list[int]:
        lost = [(i, seen) for i, seen in zip(job_ids, glances, strict=True) if seen == unseen[i][1]]
        return self._push(lost, {i: unseen[i][0] for i, _ in lost})

    def _push(self, rows: list[tuple[int, Glance]], priorities: dict[int, Priority]) -> list[int]:
        replaced = [seen for _, seen in rows]
        _push(self.connection, list(priorities.items()), self.settings, replaced=replaced)
        return [job_id for job_id, _ in rows]

    def _on_list(self, rq_id: str) -> bool:
        if self._listed is None:  # read once, and only when some hash says queued
            self._listed = listed_ids(self.connection, self.settings)
        return rq_id in self._listed


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


def _push(
    connection: Redis,
    rows: Sequence[tuple[int, Priority]],
    settings: Settings,
    *,
    replaced: Sequence[Glance] = (),
) -> None:
    if not rows:
        return
    every = queues(settings)
    with connection.pipeline() as pipe:
        for seen in replaced:
            if seen.status is not None:
                _forget(pipe, seen, every)
        # RQ lists a queue (rq info, rq-dashboard) once a job was pushed to it; list all
        # three from the first push, so an empty high or low queue shows as empty.
        pipe.sadd(Queue.redis_queues_keys, *(queue.key for queue in every))
        for priority, queue in zip(SERVING_ORDER, every, strict=True):
            ids = [job_id for job_id, p in rows if p is priority]
            if ids:
                queue.enqueue_many([_prepare(i, settings) for i in ids], pipeline=pipe)
        pipe.execute()


def _forget(pipe: Pipeline, seen: Glance, every: Sequence[Queue]) -> None:
    """Queue the removal of a spent or lost RQ job: its hash, and its id in every registry
    of every ingestion queue (a fresh job of the same id replaces it in the same
    transaction)."""
    pipe.delete(Job.key_for(seen.rq_id), ExecutionRegistry.key_template.format(seen.rq_id))
    for queue in every:
        for registry in _ENDED_REGISTRIES:
            pipe.zrem(registry.key_template.format(queue.name), seen.rq_id)
        if seen.executions:
            running = StartedJobRegistry.key_template.format(queue.name)
            pipe.zrem(running, *(f"{seen.rq_id}:{e}" for e in seen.executions))


_ENDED_REGISTRIES = (
    FinishedJobRegistry,
    FailedJobRegistry,
    CanceledJobRegistry,
    ScheduledJobRegistry,
    DeferredJobRegistry,
)


def _lock_key(job_id: int) -> str:
    return f"{KEY_PREFIX}:enqueue-lock:{job_id}"


def _lock(connection: Redis, job_ids: Sequence[int], token: str) -> list[int]:
    if not job_ids:
        return []
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


class RunState(StrEnum):
    """Where a row's RQ job really is."""

    ABSENT = "absent"  # no RQ job (never pushed, expired, or Redis lost it)
    LIVE = "live"  # on its queue's list, scheduled, deferred, or running on a live worker
    ORPHANED = "orphaned"  # marked running, but its worker stopped sending heartbeats
    ENDED = "ended"  # finished, failed, stopped or cancelled
    LOST = "lost"  # its hash says waiting, but no queue list or registry holds it


@dataclass(frozen=True)
class Glance:
    """One look at a row's RQ job, read in one transaction: its hash's fields, the
    executions it has had, and whether a scheduled or deferred registry holds it."""

    rq_id: str
    status: str | None
    worker: str | None
    origin: str | None
    enqueued_at: str | None
    executions: tuple[str, ...]
    scheduled: bool
    deferred: bool


# One look at each RQ job, atomically (a script runs alone): its hash's fields, whether its
# origin's scheduled and deferred registries hold it, and its executions. Registry keys are
# built from the hash's origin, as RQ names them (one Redis, not a cluster). A job with no
# hash answers 0 (most rows of a backlog: a short reply is cheaper to read).
_LOOK = """
local function look(key, id)
  local f = redis.call('hmget', key, 'status', 'worker_name', 'origin', 'enqueued_at')
  if not f[1] then return 0 end
  local scheduled, deferred = 0, 0
  local origin = f[3] or ''
  if redis.call('zscore', 'rq:scheduled:' .. origin, id) then scheduled = 1 end
  if redis.call('zscore', 'rq:deferred:' .. origin, id) then deferred = 1 end
  local runs = redis.call('zrange', 'rq:executions:' .. id, 0, -1)
  return {f[1], f[2] or '', f[3] or '', f[4] or '', scheduled, deferred, runs}
end
"""
_GLANCE = (
    _LOOK
    + """
local out = {}
for i, key in ipairs(KEYS) do out[i] = look(key, ARGV[i]) end
return out
"""
)
# The enqueue lock of each row (SET NX EX, as _lock) and, for each lock granted, one look
# at its RQ job, in one script: one round trip per batch instead of two, and no change to
# the job between the lock and the look. KEYS: the n lock keys, then the n job hashes;
# ARGV: token, TTL, then the n RQ ids. A lock not granted answers nil.
_LOCK_AND_GLANCE = (
    _LOOK
    + """
local n = #KEYS / 2
local out = {}
for i = 1, n do
  if redis.call('set', KEYS[i], ARGV[1], 'NX', 'EX', ARGV[2]) then
    out[i] = look(KEYS[n + i], ARGV[2 + i])
  else
    out[i] = false
  end
end
return out
"""
)


def glance(connection: Redis, job_ids: Sequence[int]) -> list[Glance]:
    """A Glance at each row's RQ job: one script, one round trip, atomic (a job moved
    between a registry and a list meanwhile is seen in one place or the other)."""
    if not job_ids:
        return []
    rq_ids = [rq_job_id(job_id) for job_id in job_ids]
    keys = [Job.key_for(rq_id) for rq_id in rq_ids]
    replies = connection.eval(_GLANCE, len(keys), *keys, *rq_ids)
    return [_glance_of(rq_id, reply) for rq_id, reply in zip(rq_ids, replies, strict=True)]


def lock_and_glance(
    connection: Redis, job_ids: Sequence[int], token: str
) -> tuple[list[int], list[Glance]]:
    """Take each row's enqueue lock under `token`; the rows locked and a Glance at each
    one's RQ job, taken in the same script (one round trip, atomic)."""
    if not job_ids:
        return [], []
    rq_ids = [rq_job_id(job_id) for job_id in job_ids]
    keys = [_lock_key(job_id) for job_id in job_ids] + [Job.key_for(i) for i in rq_ids]
    replies = connection.eval(_LOCK_AND_GLANCE, len(keys), *keys, token, ENQUEUE_LOCK_TTL, *rq_ids)
    locked: list[int] = []
    glances: list[Glance] = []
    for job_id, rq_id, reply in zip(job_ids, rq_ids, replies, strict=True):
        if reply is not None:
            locked.append(job_id)
            glances.append(_glance_of(rq_id, reply))
    return locked, glances


def _glance_of(rq_id: str, reply: list[Any] | int) -> Glance:
    if not isinstance(reply, list):  # 0: no RQ job (the script's short answer)
        return Glance(rq_id, None, None, None, None, (), scheduled=False, deferred=False)
    status, worker, origin, enqueued_at, scheduled, deferred, executions = reply
    return Glance(
        rq_id=rq_id,
        status=_text(status) or None,
        worker=_text(worker) or None,
        origin=_text(origin) or None,
        enqueued_at=_text(enqueued_at) or None,
        executions=tuple(sorted(_text(e) or "" for e in executions)),
        scheduled=bool(scheduled),
        deferred=bool(deferred),
    )


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def listed_ids(connection: Redis, settings: Settings | None = None) -> set[str]:
    """The ids on every ingestion queue's list now (one read per list)."""
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues(settings):
            pipe.lrange(queue.key, 0, -1)
        lists = pipe.execute()
    return {_text(rq_id) or "" for ids in lists for rq_id in ids}


def judge(
    connection: Redis, glances: Sequence[Glance], *, on_list: Callable[[str], bool]
) -> list[RunState]:
    """Where each glanced RQ job is; `on_list` tells whether a queue's list holds an id."""
    return [_judged(connection, seen, on_list) for seen in glances]


def _judged(connection: Redis, seen: Glance, on_list: Callable[[str], bool]) -> RunState:
    if seen.status is None:
        return RunState.ABSENT
    if seen.status == RQStatus.QUEUED.value:
        held = on_list(seen.rq_id)
    elif seen.status == RQStatus.SCHEDULED.value:
        held = seen.scheduled
    elif seen.status == RQStatus.DEFERRED.value:
        held = seen.deferred
    elif seen.status == RQStatus.STARTED.value:
        return RunState.LIVE if _running(connection, seen) else RunState.ORPHANED
    else:
        return RunState.ENDED
    return RunState.LIVE if held else RunState.LOST


def _running(connection: Redis, seen: Glance) -> bool:
    """Started, with an execution in its queue's started registry, on a live worker."""
    if not seen.origin or not seen.executions:
        return False
    key = StartedJobRegistry.key_template.format(seen.origin)
    with connection.pipeline(transaction=False) as pipe:
        for execution in seen.executions:
            pipe.zscore(key, f"{seen.rq_id}:{execution}")
        registered = any(score is not None for score in pipe.execute())
    return registered and _worker_alive(connection, seen.worker)


def run_state(job_id: int, *, connection: Redis | None = None) -> RunState:
    """Where a row's RQ job is, at one look (its queue's list is searched: one row only)."""
    connection = connection or redis_connection()

    def on_list(rq_id: str) -> bool:
        return any(connection.lpos(queue.key, rq_id) is not None for queue in queues())

    [seen] = glance(connection, [job_id])
    return _judged(connection, seen, on_list)


def _worker_alive(connection: Redis, name: str | None) -> bool:
    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=connection)
    if worker is None or worker.last_heartbeat is None:
        return False
    silence = (datetime.now(UTC) - worker.last_heartbeat.replace(tzinfo=UTC)).total_seconds()
    return silence < 3 * get_settings().worker_heartbeat + 5


def _prepare(job_id: int, settings: Settings) -> Any:
    # No RQ Retry: the row's attempts are the only retry budget (see perform and align).
    return Queue.prepare_data(
        perform,
        args=(job_id,),
        job_id=rq_job_id(job_id),
        timeout=settings.job_timeout + HARD_TIMEOUT_MARGIN,
        result_ttl=settings.result_ttl,
        failure_ttl=settings.failure_ttl,
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
    every = served_queues(settings or get_settings())  # callback retries too
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
    """The RQ job function: run one ingestion, and end the RQ job the way its row ended.

    Returns "done" (RQ: finished) when the row is DONE; raises JobFailed with the row's
    error_message (RQ: failed) when it is ERROR; returns a Retry (RQ: scheduled) when the
    row went back to QUEUED for another attempt.

    The row's `attempts` is the only retry budget: the run (ingestion.Run.fail, abandon)
    decides QUEUED or ERROR by JOB_MAX_ATTEMPTS. RQ only carries out the wait; the
    Retry's own `max` (RQ_RETRY_MAX) is out of reach, so RQ never ends a job on its count.
    """
    from ingestion import abandon, run_ingestion

    settings = get_settings()
    try:
        outcome = run_ingestion(job_id, settings=settings, fatal=(JobTimeoutException,))
    except JobTimeoutException:
        abandon(job_id, reason=f"timed out after {settings.job_timeout} s", final=True)
        _tell_callback(job_id, settings)
        return _as_the_row_ended(job_id)
    if outcome.retry_in is not None:
        return _retry_in(outcome.retry_in)
    if outcome.callback_due is not False:  # a DONE run read it as it ended the row
        _tell_callback(job_id, settings)
    if outcome.status is JobStatus.DONE:
        return JobStatus.DONE.value
    return _as_the_row_ended(job_id)


def _tell_callback(job_id: int, settings: Settings) -> None:
    """The fast path of a callback_url delivery: queued as the run ends (the reconciler's
    pass queues any that this missed). Does nothing for a job without one, or not ended."""
    import callback

    callback.notify(job_id, settings)


def _as_the_row_ended(job_id: int) -> Retry | str:
    """What RQ records for a run that did not end the row itself: a duplicate or late run,
    a run that lost its row (cancelled, taken over), a run out of time."""
    row = row_state(job_id)
    if row is None:
        raise JobFailed(f"job {job_id} no longer exists")
    if row.status is JobStatus.DONE:
        return JobStatus.DONE.value
    if row.status is JobStatus.ERROR:
        raise JobFailed(row.error or "failed")
    if row.status is JobStatus.QUEUED:
        return _retry_in(crash_delay(row.attempts))
    return "skipped"  # another run holds the row: it ends the RQ job


def _retry_in(seconds: float) -> Retry:
    return Retry(max=RQ_RETRY_MAX, interval=math.ceil(seconds))


def crash_delay(attempts: int) -> int:
    """Seconds before a job whose run died (attempt `attempts`) is run again."""
    return CRASH_RETRY_INTERVALS[min(max(attempts, 1), len(CRASH_RETRY_INTERVALS)) - 1]


@dataclass(frozen=True)
class RowState:
    status: JobStatus
    attempts: int
    error: str | None


def row_state(job_id: int) -> RowState | None:
    """A job row's status, attempts and error_message; None if there is no such row."""
    from db import session_scope
    from models import IngestionJob

    with session_scope() as session:
        row = session.get(IngestionJob, job_id)
        if row is None:
            return None
        return RowState(JobStatus(row.status), row.attempts, row.error_message)


def align(job_id: int, *, connection: Redis) -> None:
    """After a work-horse ended, bring the row's RQ job in line with the row where RQ's own
    bookkeeping could not: a cancelled row's job is cancelled (CanceledJobRegistry), a row
    back in QUEUED (its horse was killed with attempts left) has its job scheduled again
    after the crash delay, a DONE row's job is finished. Only a failed or stopped RQ job
    is looked at: one Redis read otherwise."""
    rq_id = rq_job_id(job_id)
    status = _text(connection.hget(Job.key_for(rq_id), "status"))
    if status not in (RQStatus.FAILED.value, RQStatus.STOPPED.value):
        return
    row = row_state(job_id)
    if row is None:
        return
    if row.status is JobStatus.ERROR and row.error == CANCELLED_BY_USER:
        with suppress(NoSuchJobError, InvalidJobOperation):
            Job.fetch(rq_id, connection=connection).cancel()
    elif row.status is JobStatus.QUEUED:
        _reschedule(connection, job_id, delay=crash_delay(row.attempts))
    elif row.status is JobStatus.DONE:
        _finish(connection, rq_id)


def _reschedule(connection: Redis, job_id: int, *, delay: int) -> bool:
    """Schedule a failed or stopped RQ job again (the same job: its results stay), under
    the row's enqueue lock, unless another caller replaced it meanwhile."""
    token = uuid.uuid4().hex
    if not _lock(connection, [job_id], token):
        return False  # another caller is pushing it
    try:
        job = Job.fetch(rq_job_id(job_id), connection=connection)
        if job.get_status() not in (RQStatus.FAILED, RQStatus.STOPPED):
            return False
        with connection.pipeline() as pipe:
            job.failed_job_registry.remove(job, pipeline=pipe)
            queue = Queue(job.origin, connection=connection)
            queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=delay), pipeline=pipe)
            pipe.execute()
        log.info("job %s: run again in %s s", job_id, delay)
        return True
    except NoSuchJobError:
        return False
    finally:
        _unlock(connection, [job_id], token)


def _finish(connection: Redis, rq_id: str) -> None:
    """A failed RQ job whose row is DONE (its horse died after the commit): finished."""
    with suppress(NoSuchJobError):
        job = Job.fetch(rq_id, connection=connection)
        with connection.pipeline() as pipe:
            job.failed_job_registry.remove(job, pipeline=pipe)
            job.set_status(RQStatus.FINISHED, pipeline=pipe)
            job.finished_job_registry.add(job, ttl=job.get_result_ttl(500), pipeline=pipe)
            pipe.execute()


class IngestionWorker(Worker):
    """A forking worker whose children die with it, that settles a job's row when its
    work-horse dies, aligns each RQ job with its row once the horse ended (`align`), and
    runs the reconciler's pass in a child process of its own (reconciler.Companion).

    A killed horse: its row goes back to QUEUED (attempts left) or to ERROR (abandon);
    RQ records the RQ job failed, then `align` schedules a QUEUED row's job again after
    the crash delay (CRASH_RETRY_INTERVALS by attempt).
    """

    # RQ backs off up to 60 s between reconnects while Redis is down; a queue that is back
    # should be served within seconds, and a reconnect attempt costs next to nothing.
    max_connection_wait_time = REDIS_RECONNECT_MAX

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", get_settings().worker_heartbeat)
        super().__init__(*args, **kwargs)
        self._death_notes: dict[str, str] = {}  # RQ id -> what its row says of the death
        self._companion: Any = None

    def work(self, *args: Any, **kwargs: Any) -> bool:
        import reconciler  # imports this module

        _children_die_with_their_parent()
        self._companion = reconciler.Companion.start(get_settings(), holder=self.name)
        try:
            return bool(super().work(*args, **kwargs))
        finally:
            self._companion.stop()

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """In the horse: RQ's own lines about the job ("Job OK") carry its id too."""
        import logs

        with logs.job_context(job_id=row_id(job.id)):
            return bool(super().perform_job(job, queue))

    def execute_job(self, job: Job, queue: Queue) -> None:
        super().execute_job(job, queue)
        job_id = row_id(job.id)
        if job_id is not None:
            try:
                align(job_id, connection=self.connection)
            except Exception:  # the reconciler settles it later
                log.exception("could not align RQ job %s with its row", job.id)
        if self._companion is not None:
            self._companion.keep_alive()

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        if self._companion is not None:
            self._companion.keep_alive()

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
            if abandon(job_id, reason=reason, final=timed_out) is JobStatus.ERROR:
                row = row_state(job_id)
                self._death_notes[job.id] = row.error if row and row.error else reason
                _tell_callback(job_id, get_settings())
        except Exception:  # the reconciler settles it later
            log.exception("could not settle job %s after its work-horse died", job_id)
        _free_sites_of(self.connection, retpid)

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
    ) -> None:
        note = self._death_notes.pop(job.id, None)
        if note:  # the row's own words, after RQ's
            exc_string = f"{exc_string}\n{note}" if exc_string else note
        super().handle_job_failure(job, queue, started_job_registry, exc_string=exc_string)


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


# --- what the operators' commands read (cli.py stats, workers, purge; GET /stats) -------


def served_queues(settings: Settings) -> list[Queue]:
    """Every queue the workers serve, in their order: callbacks, high, normal, low."""
    return [callback_queue(settings), *queues(settings)]


def queue_depths(settings: Settings) -> dict[str, int]:
    """Jobs waiting on each served queue, by queue name."""
    try:
        return {queue.name: queue.count for queue in served_queues(settings)}
    except RedisError as error:
        raise unavailable(error) from error


@dataclass(frozen=True)
class WorkerView:
    """One RQ worker as `cli.py workers` shows it."""

    name: str
    state: str  # idle, busy, suspended ...
    current_job: str | None  # the RQ id of the job it runs now
    queues: list[str]
    last_heartbeat: datetime | None  # UTC
    successful: int  # jobs it finished
    failed: int  # jobs that failed on it


def workers(settings: Settings) -> list[WorkerView]:
    """The workers registered on any served queue, each once, by name."""
    try:
        found: dict[str, BaseWorker] = {}
        for queue in served_queues(settings):
            for worker in Worker.all(queue=queue):
                found.setdefault(worker.name, worker)
        return [_view(worker) for _, worker in sorted(found.items())]
    except RedisError as error:
        raise unavailable(error) from error


def _view(worker: BaseWorker) -> WorkerView:
    return WorkerView(
        name=worker.name,
        state=str(worker.get_state()),
        current_job=worker.get_current_job_id(),
        queues=worker.queue_names(),
        last_heartbeat=worker.last_heartbeat,
        successful=worker.successful_job_count,
        failed=worker.failed_job_count,
    )


def delete_spent(job_ids: Sequence[int], *, settings: Settings) -> int:
    """Delete the RQ jobs of these rows that have ended (a waiting or running one is left
    alone); returns how many were deleted."""
    connection = redis_connection(settings)
    try:
        found = Job.fetch_many([rq_job_id(job_id) for job_id in job_ids], connection=connection)
        spent = [job for job in found if job is not None and not _is_live(job)]
        with connection.pipeline() as pipe:
            for job in spent:
                job.delete(pipeline=pipe)
            pipe.execute()
    except RedisError as error:
        raise unavailable(error) from error
    return len(spent)


def _is_live(job: Job) -> bool:
    return job.get_status(refresh=False) in LIVE  # as fetched: no round trip per job
