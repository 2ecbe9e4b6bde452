"""Enqueueing against real Redis: deterministic ids, each row pushed once onto its
priority's queue, process-queue."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq.scheduler import RQScheduler

import ingestion_queue
from config import get_settings
from db import session_scope
from models import IngestionJob, JobStatus, Priority
from tests.utils.factories import make_job, make_jobs
from tests.utils.services import QUEUE_KEY, QUEUE_NAME, ROOT

HIGH_KEY, LOW_KEY = f"{QUEUE_KEY}-high", f"{QUEUE_KEY}-low"

pytestmark = pytest.mark.usefixtures("pg_db")


def _orphans(count: int, *, status: JobStatus = JobStatus.QUEUED) -> list[int]:
    """Rows committed but never pushed: what a crash between commit and enqueue leaves."""
    return make_jobs(count, status=status)


def _queued(redis_conn: Redis, key: str = QUEUE_KEY) -> list[str]:
    return [j.decode() for j in redis_conn.lrange(key, 0, -1)]


def _normal(ids: list[int]) -> list[tuple[int, Priority]]:
    return [(i, Priority.NORMAL) for i in ids]


def _set_priority(ids: list[int], priority: Priority) -> None:
    with session_scope() as session:
        for job_id in ids:
            row = session.get(IngestionJob, job_id)
            assert row is not None
            row.priority = priority.value


def _process_queue() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "cli.py", "process-queue"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_enqueue_uses_a_deterministic_id_and_pushes_once(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    assert ingestion_queue.enqueue(job_id) is True
    assert ingestion_queue.enqueue(job_id) is False
    assert _queued(redis_conn) == [f"ingestion-{job_id}"]
    assert ingestion_queue.run_state(job_id) is ingestion_queue.RunState.LIVE


def test_concurrent_enqueues_of_the_same_rows_push_each_once(redis_conn: Redis) -> None:
    ids = _orphans(40)
    with ThreadPoolExecutor(8) as pool:
        pushed = list(pool.map(lambda _: ingestion_queue.enqueue_many(_normal(ids)), range(8)))
    assert sorted(i for batch in pushed for i in batch) == ids
    assert sorted(_queued(redis_conn)) == sorted(f"ingestion-{i}" for i in ids)


def test_process_queue_pushes_orphans_exactly_once_even_when_run_twice(
    redis_conn: Redis,
) -> None:
    ids = _orphans(1203)  # more than two batches
    _orphans(3, status=JobStatus.DONE)  # ended rows are never pushed
    first = _process_queue()
    assert "1203 queued jobs: 1203 pushed, 0 already on the queue" in first.stdout
    second = _process_queue()
    assert "1203 queued jobs: 0 pushed, 1203 already on the queue" in second.stdout
    queued = _queued(redis_conn)
    assert len(queued) == len(set(queued)) == 1203
    assert set(queued) == {f"ingestion-{i}" for i in ids}


def test_two_process_queue_runs_at_once_push_each_row_once(redis_conn: Redis) -> None:
    ids = _orphans(600)
    argv = [sys.executable, "cli.py", "process-queue"]
    runs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL) for _ in range(2)]
    assert [r.wait(60) for r in runs] == [0, 0]
    queued = _queued(redis_conn)
    assert sorted(queued) == sorted(f"ingestion-{i}" for i in ids)


def test_a_spent_rq_job_is_replaced_when_its_row_is_queued_again(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    assert ingestion_queue.enqueue(job_id)
    redis_conn.delete(QUEUE_KEY)
    redis_conn.hset(f"rq:job:ingestion-{job_id}", "status", "failed")
    assert ingestion_queue.run_state(job_id) is ingestion_queue.RunState.ENDED
    assert ingestion_queue.enqueue(job_id) is True
    assert _queued(redis_conn) == [f"ingestion-{job_id}"]


def test_redis_unreachable_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from errors import QueueUnavailableError

    [job_id] = _orphans(1)
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    with pytest.raises(QueueUnavailableError, match="Redis unavailable"):
        ingestion_queue.enqueue(job_id)


def test_cancelling_an_rq_job_twice_is_harmless(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    ingestion_queue.enqueue(job_id)
    ingestion_queue.cancel(job_id)
    ingestion_queue.cancel(job_id)
    assert _queued(redis_conn) == []


def test_an_enqueue_lock_is_released_only_by_its_holder(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    key = f"{ingestion_queue.KEY_PREFIX}:enqueue-lock:{job_id}"
    redis_conn.set(key, "someone-else")  # taken over after our lock expired
    ingestion_queue._unlock(redis_conn, [job_id], "our-token")
    assert redis_conn.get(key) == b"someone-else"
    ingestion_queue._unlock(redis_conn, [job_id], "someone-else")
    assert redis_conn.get(key) is None


def test_a_row_locked_by_another_caller_is_left_to_it(redis_conn: Redis) -> None:
    held, free = _orphans(2)
    key = f"{ingestion_queue.KEY_PREFIX}:enqueue-lock:{held}"
    redis_conn.set(key, "another-caller", ex=30)  # that caller is pushing the row now
    assert ingestion_queue.enqueue_many(_normal([held, free])) == [free]
    assert _queued(redis_conn) == [ingestion_queue.rq_job_id(free)]
    assert not redis_conn.exists(f"rq:job:{ingestion_queue.rq_job_id(held)}")
    assert redis_conn.get(key) == b"another-caller"  # its lock is still its own
    free_lock = f"{ingestion_queue.KEY_PREFIX}:enqueue-lock:{free}"
    assert not redis_conn.exists(free_lock)  # ours, released once pushed


def _schedule_retry(redis_conn: Redis, job_id: int) -> None:
    """The RQ job of a row, waiting in the scheduled registry for a retry that is due."""
    ingestion_queue.enqueue(job_id)
    redis_conn.delete(QUEUE_KEY)
    queue = ingestion_queue.get_queue()
    job = queue.fetch_job(ingestion_queue.rq_job_id(job_id))
    assert job is not None
    queue.schedule_job(job, datetime.now(UTC) - timedelta(seconds=5))


def test_due_retries_are_enqueued_when_no_scheduler_runs(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    _schedule_retry(redis_conn, job_id)
    assert ingestion_queue.run_state(job_id) is ingestion_queue.RunState.LIVE  # scheduled
    assert ingestion_queue.enqueue_due_retries() == 1
    assert _queued(redis_conn) == [f"ingestion-{job_id}"]
    assert ingestion_queue.get_queue().scheduled_job_registry.count == 0


def test_due_retries_are_left_to_a_live_scheduler(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    _schedule_retry(redis_conn, job_id)
    live = RQScheduler(ingestion_queue.queues(), connection=redis_conn)
    assert live.acquire_locks()  # as a worker's scheduler process holds it
    assert ingestion_queue.enqueue_due_retries() == 0
    assert _queued(redis_conn) == []
    live.release_locks()


@pytest.mark.parametrize(
    ("ran_for", "status", "message"),
    [(5, "queued", "work-horse died (exit 9); retrying"), (10_000, "error", "timed out after")],
)
def test_a_killed_horse_is_retried_unless_it_outran_the_timeout(
    redis_conn: Redis, ran_for: float, status: str, message: str
) -> None:
    job_id = make_job(status=JobStatus.SAVING, attempts=1, run_id="its-run")
    ingestion_queue.enqueue(job_id)
    queue = ingestion_queue.get_queue()
    job = queue.fetch_job(ingestion_queue.rq_job_id(job_id))
    assert job is not None
    job.started_at = datetime.now(UTC) - timedelta(seconds=ran_for)
    worker = ingestion_queue.IngestionWorker([queue], connection=redis_conn)
    worker.handle_work_horse_killed(job, 0, 9, None)  # as RQ's monitor calls it
    with session_scope() as session:
        row = session.get(IngestionJob, job_id)
        assert row is not None
        assert row.status == status
        assert message in (row.last_error or "")
    assert get_settings().job_timeout < 10_000


def test_each_priority_has_its_own_queue_served_high_first() -> None:
    names = [queue.name for queue in ingestion_queue.queues()]
    assert names == [f"{QUEUE_NAME}-high", QUEUE_NAME, f"{QUEUE_NAME}-low"]
    assert ingestion_queue.queue_for(Priority.LOW).name == f"{QUEUE_NAME}-low"
    assert ingestion_queue.get_queue().name == QUEUE_NAME


@pytest.mark.parametrize(
    ("priority", "key"),
    [(Priority.HIGH, HIGH_KEY), (Priority.NORMAL, QUEUE_KEY), (Priority.LOW, LOW_KEY)],
)
def test_enqueue_pushes_onto_the_queue_of_its_priority(
    redis_conn: Redis, priority: Priority, key: str
) -> None:
    [job_id] = _orphans(1)
    assert ingestion_queue.enqueue(job_id, priority=priority) is True
    assert ingestion_queue.enqueue(job_id, priority=priority) is False
    assert _queued(redis_conn, key) == [f"ingestion-{job_id}"]
    others = {HIGH_KEY, QUEUE_KEY, LOW_KEY} - {key}
    assert all(redis_conn.llen(other) == 0 for other in others)


def test_a_live_rq_job_on_one_queue_is_not_pushed_again_onto_another(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    assert ingestion_queue.enqueue(job_id, priority=Priority.LOW)
    assert ingestion_queue.enqueue(job_id, priority=Priority.HIGH) is False
    assert (redis_conn.llen(HIGH_KEY), _queued(redis_conn, LOW_KEY)) == (0, [f"ingestion-{job_id}"])


def test_all_three_queues_are_listed_once_anything_is_pushed(redis_conn: Redis) -> None:
    ingestion_queue.enqueue(_orphans(1)[0], priority=Priority.LOW)
    listed = {key.decode() for key in redis_conn.smembers("rq:queues")}
    assert {QUEUE_KEY, HIGH_KEY, LOW_KEY} <= listed


def test_enqueue_many_pushes_each_row_onto_its_own_priority_once(redis_conn: Redis) -> None:
    ids = _orphans(30)
    rows = [(job_id, list(Priority)[n % 3]) for n, job_id in enumerate(ids)]
    with ThreadPoolExecutor(6) as pool:
        pushed = list(pool.map(lambda _: ingestion_queue.enqueue_many(rows), range(6)))
    assert sorted(i for batch in pushed for i in batch) == ids
    for priority, key in (
        (Priority.HIGH, HIGH_KEY),
        (Priority.NORMAL, QUEUE_KEY),
        (Priority.LOW, LOW_KEY),
    ):
        expected = [f"ingestion-{i}" for i, p in rows if p is priority]
        assert sorted(_queued(redis_conn, key)) == sorted(expected)
    assert not redis_conn.keys(f"{ingestion_queue.KEY_PREFIX}:enqueue-lock:*")  # all released


def test_process_queue_pushes_each_row_onto_its_priority_queue(redis_conn: Redis) -> None:
    high, normal, low = _orphans(3), _orphans(4), _orphans(5)
    _set_priority(high, Priority.HIGH)
    _set_priority(low, Priority.LOW)
    out = _process_queue()
    assert "12 queued jobs: 12 pushed, 0 already on the queue" in out.stdout
    assert sorted(_queued(redis_conn, HIGH_KEY)) == sorted(f"ingestion-{i}" for i in high)
    assert sorted(_queued(redis_conn, QUEUE_KEY)) == sorted(f"ingestion-{i}" for i in normal)
    assert sorted(_queued(redis_conn, LOW_KEY)) == sorted(f"ingestion-{i}" for i in low)


def test_a_row_is_cancelled_on_whichever_queue_it_waits(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    ingestion_queue.enqueue(job_id, priority=Priority.LOW)
    ingestion_queue.cancel(job_id)
    assert _queued(redis_conn, LOW_KEY) == []
    assert ingestion_queue.run_state(job_id) is ingestion_queue.RunState.ENDED


def test_due_retries_of_every_priority_are_enqueued(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    ingestion_queue.enqueue(job_id, priority=Priority.LOW)
    redis_conn.delete(LOW_KEY)
    queue = ingestion_queue.queue_for(Priority.LOW)
    job = queue.fetch_job(ingestion_queue.rq_job_id(job_id))
    assert job is not None
    queue.schedule_job(job, datetime.now(UTC) - timedelta(seconds=5))
    assert ingestion_queue.enqueue_due_retries() == 1
    assert _queued(redis_conn, LOW_KEY) == [f"ingestion-{job_id}"]  # back on its own queue


def test_rows_whose_queue_list_was_deleted_are_pushed_again_exactly_once(
    redis_conn: Redis,
) -> None:
    ids = _orphans(30)
    assert "30 queued jobs: 30 pushed" in _process_queue().stdout
    redis_conn.delete(QUEUE_KEY)  # what an operator's `redis-cli DEL` does
    assert ingestion_queue.run_state(ids[0]) is ingestion_queue.RunState.LOST
    assert "30 queued jobs: 30 pushed, 0 already on the queue" in _process_queue().stdout
    assert "30 queued jobs: 0 pushed, 30 already on the queue" in _process_queue().stdout
    queued = _queued(redis_conn)
    assert sorted(queued) == sorted(f"ingestion-{i}" for i in ids)  # each once


def test_a_scheduled_job_missing_from_its_registry_is_pushed_again(redis_conn: Redis) -> None:
    [kept, lost] = _orphans(2)
    ingestion_queue.enqueue_many(_normal([kept, lost]))
    queue = ingestion_queue.get_queue()
    for job_id in (kept, lost):  # both wait for a retry now...
        job = queue.fetch_job(ingestion_queue.rq_job_id(job_id))
        assert job is not None
        queue.remove(job)
        queue.schedule_job(job, datetime.now(UTC) + timedelta(minutes=5))
    redis_conn.zrem(f"rq:scheduled:{QUEUE_NAME}", f"ingestion-{lost}")  # ...one was lost
    assert ingestion_queue.enqueue_many(_normal([kept, lost])) == [lost]
    assert _queued(redis_conn) == [f"ingestion-{lost}"]
    assert ingestion_queue.run_state(kept) is ingestion_queue.RunState.LIVE


def test_a_queued_job_a_worker_pops_meanwhile_is_not_pushed_again(redis_conn: Redis) -> None:
    """A worker pops a job (BLPOP) a moment before it records the execution: the first look
    sees it on no list; the second, a pause later, sees it started, and leaves it."""
    [job_id] = _orphans(1)
    ingestion_queue.enqueue(job_id)
    rq_id = ingestion_queue.rq_job_id(job_id)
    assert redis_conn.lpop(QUEUE_KEY) == rq_id.encode()  # the worker's pop

    def registers() -> None:  # ...and its execution, during the pushing caller's pause
        time.sleep(ingestion_queue.SUSPECT_PAUSE / 3)
        redis_conn.zadd(f"rq:executions:{rq_id}", {"an-execution": time.time() + 60})
        redis_conn.hset(f"rq:job:{rq_id}", "status", "started")

    worker = threading.Thread(target=registers)
    worker.start()
    assert ingestion_queue.enqueue_many(_normal([job_id])) == []
    worker.join()
    assert _queued(redis_conn) == []


def test_a_lost_job_is_judged_without_a_scan_per_row(redis_conn: Redis) -> None:
    ids = _orphans(5)
    ingestion_queue.enqueue_many(_normal(ids))
    redis_conn.lrem(QUEUE_KEY, 0, f"ingestion-{ids[2]}")
    pusher = ingestion_queue.Pusher(get_settings())
    states = pusher.states(ids)
    lost = ingestion_queue.RunState.LOST
    assert [state is lost for state in states] == [False, False, True, False, False]
    assert pusher.push(_normal(ids)) == []  # a suspect only, until its second look
    assert pusher.settle() == [ids[2]]
    assert sorted(_queued(redis_conn)) == sorted(f"ingestion-{i}" for i in ids)


def test_no_rq_retry_is_set_at_enqueue(redis_conn: Redis) -> None:
    [job_id] = _orphans(1)
    ingestion_queue.enqueue(job_id)
    job = ingestion_queue.get_queue().fetch_job(ingestion_queue.rq_job_id(job_id))
    assert job is not None and job.retries_left is None  # the row's attempts count, alone
    assert ingestion_queue.crash_delay(1) == ingestion_queue.CRASH_RETRY_INTERVALS[0]
    assert ingestion_queue.crash_delay(99) == ingestion_queue.CRASH_RETRY_INTERVALS[-1]


def test_a_callback_stranded_by_an_emptied_queue_is_queued_again(redis_conn: Redis) -> None:
    (job_id,) = make_jobs(1)
    assert ingestion_queue.enqueue_callback(job_id)
    assert not ingestion_queue.enqueue_callback(job_id)  # waiting: not twice
    queue = ingestion_queue.callback_queue()
    redis_conn.delete(queue.key)  # an operator empties the queue by hand
    assert ingestion_queue.enqueue_callback(job_id)
    assert queue.job_ids == [ingestion_queue.callback_rq_id(job_id)]
