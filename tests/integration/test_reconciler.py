"""The reconciler against real Redis and PostgreSQL: lost jobs are found and sent back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import update

import ingestion_queue
import reconciler
from config import get_settings
from db import session_scope
from models import IngestionJob, JobStatus
from models.base import utcnow
from tests.utils.factories import make_job
from tests.utils.services import QUEUE_KEY

pytestmark = pytest.mark.usefixtures("pg_db")


def _row(status: JobStatus, *, age: float = 60, attempts: int = 1) -> int:
    run_id = None if status == JobStatus.QUEUED else "dead-run"
    job_id = make_job(status=status, attempts=attempts, run_id=run_id)
    with session_scope() as session:
        session.execute(
            update(IngestionJob)
            .where(IngestionJob.id == job_id)
            .values(updated_at=utcnow() - timedelta(seconds=age))
        )
    return job_id


def _status(job_id: int) -> str:
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        return job.status


def test_running_row_without_an_rq_job_is_requeued_and_pushed(redis_conn: Redis) -> None:
    job_id = _row(JobStatus.CRAWLING)
    report = reconciler.reconcile(get_settings())
    assert report.recovered == [job_id]
    assert _status(job_id) == "queued"
    assert redis_conn.lrange(QUEUE_KEY, 0, -1) == [f"ingestion-{job_id}".encode()]


def test_running_row_held_by_a_dead_worker_is_requeued(redis_conn: Redis) -> None:
    job_id = _row(JobStatus.SAVING)
    ingestion_queue.enqueue(job_id)
    key = f"rq:job:ingestion-{job_id}"
    redis_conn.hset(key, mapping={"status": "started", "worker_name": "gone-worker"})
    redis_conn.lrem(QUEUE_KEY, 0, f"ingestion-{job_id}")
    assert ingestion_queue.run_state(job_id) is ingestion_queue.RunState.ORPHANED
    report = reconciler.reconcile(get_settings())
    assert report.recovered == [job_id]
    assert redis_conn.lrange(QUEUE_KEY, 0, -1) == [f"ingestion-{job_id}".encode()]


def test_recently_updated_rows_are_left_alone(redis_conn: Redis) -> None:
    job_id = _row(JobStatus.PARSING, age=0)
    assert reconciler.reconcile(get_settings()).recovered == []
    assert _status(job_id) == "parsing"


def test_a_row_out_of_attempts_ends_in_error(redis_conn: Redis) -> None:
    job_id = _row(JobStatus.CRAWLING, attempts=get_settings().job_max_attempts)
    report = reconciler.reconcile(get_settings())
    assert report.failed == [job_id]
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None and job.status == "error"
        assert job.error_message is not None
        assert job.error_message.startswith("gave up after 3 attempts: its worker was lost")


def test_live_rq_job_keeps_its_row(redis_conn: Redis) -> None:
    job_id = _row(JobStatus.QUEUED)
    ingestion_queue.enqueue(job_id)
    report = reconciler.reconcile(get_settings())
    assert (report.recovered, report.push.pushed, report.push.already) == ([], 0, 1)


def test_a_run_that_claimed_the_job_meanwhile_is_not_abandoned(
    redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _row(JobStatus.CRAWLING)
    judged = ingestion_queue.run_state

    def new_run_claims_it(row: int, **kwargs: object) -> ingestion_queue.RunState:
        state = judged(row)  # the lost run's RQ job: absent
        with session_scope() as session:  # ...and meanwhile a new run took the row
            session.execute(
                update(IngestionJob).where(IngestionJob.id == row).values(run_id="new-run")
            )
        return state

    monkeypatch.setattr(ingestion_queue, "run_state", new_run_claims_it)
    report = reconciler.reconcile(get_settings())
    assert report.recovered == [] and report.failed == []
    assert _status(job_id) == "crawling"
