"""Enqueueing against real Redis: deterministic ids, each row pushed once, process-queue."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from redis import Redis

import ingestion_queue
from models import JobStatus
from tests.utils.factories import make_jobs
from tests.utils.services import QUEUE_KEY, ROOT

pytestmark = pytest.mark.usefixtures("pg_db")


def _orphans(count: int, *, status: JobStatus = JobStatus.QUEUED) -> list[int]:
    """Rows committed but never pushed: what a crash between commit and enqueue leaves."""
    return make_jobs(count, status=status)


def _queued(redis_conn: Redis) -> list[str]:
    return [j.decode() for j in redis_conn.lrange(QUEUE_KEY, 0, -1)]


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
        pushed = list(pool.map(lambda _: ingestion_queue.enqueue_many(ids), range(8)))
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
    from config import get_settings
    from errors import QueueUnavailableError

    [job_id] = _orphans(1)
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    with pytest.raises(QueueUnavailableError, match="Redis unavailable"):
        ingestion_queue.enqueue(job_id)
