"""The reconciler against real Redis and PostgreSQL: lost jobs are found and sent back."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import update

import ingestion_queue
import reconciler
import scheduler
from config import get_settings
from db import session_scope
from models import IngestionJob, JobStatus, Novel, Priority
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


def test_a_lost_low_priority_row_goes_back_onto_the_low_queue(redis_conn: Redis) -> None:
    job_id = _row(JobStatus.CRAWLING)
    with session_scope() as session:
        session.execute(
            update(IngestionJob).where(IngestionJob.id == job_id).values(priority="low")
        )
    report = reconciler.reconcile(get_settings())
    assert report.recovered == [job_id]
    assert redis_conn.lrange(f"{QUEUE_KEY}-low", 0, -1) == [f"ingestion-{job_id}".encode()]
    assert redis_conn.llen(QUEUE_KEY) == 0


def test_queued_batches_carry_each_rows_priority() -> None:
    normal = _row(JobStatus.QUEUED)
    high = _row(JobStatus.QUEUED)
    with session_scope() as session:
        session.execute(update(IngestionJob).where(IngestionJob.id == high).values(priority="high"))
    assert list(reconciler.queued_batches(10)) == [
        [(normal, Priority.NORMAL), (high, Priority.HIGH)]
    ]


def test_a_reconcile_pass_schedules_due_refreshes(redis_conn: Redis) -> None:
    with session_scope() as session:
        novel = Novel(
            site="royalroad",
            site_novel_id="4711",
            url="https://www.royalroad.com/fiction/4711",
            title="Due",
            next_refresh_at=utcnow() - timedelta(minutes=5),
        )
        session.add(novel)
    report = reconciler.reconcile(get_settings())
    assert len(report.schedule.submitted) == 1
    assert "scheduled 1 refreshes" in report.schedule.summary()
    [job_id] = report.schedule.submitted
    assert redis_conn.lrange(f"{QUEUE_KEY}-low", 0, -1) == [f"ingestion-{job_id}".encode()]
    assert reconciler.reconcile(get_settings()).schedule.submitted == []  # once per due time


def test_a_reconcile_pass_leaves_scheduling_to_the_lock_holder(redis_conn: Redis) -> None:
    redis_conn.set(scheduler.lock_key(get_settings()), "another-reconciler", ex=60)
    assert reconciler.reconcile(get_settings()).schedule.skipped == "locked"


def test_one_pass_at_a_time_and_one_per_interval_over_the_fleet(redis_conn: Redis) -> None:
    settings = get_settings().model_copy(update={"reconcile_interval": 30})
    assert reconciler.take_turn(settings, holder="worker-a") is not None
    assert reconciler.take_turn(settings, holder="worker-b") is None  # a pass ran just now
    holder = redis_conn.get(reconciler.lock_key(settings))
    assert holder is not None and holder.decode().startswith("worker-a/")
    ttl = redis_conn.ttl(reconciler.lock_key(settings))
    assert 25 <= ttl <= 30  # held for the rest of the interval, not the lock's full TTL


def test_a_dead_holders_lock_is_taken_over_once_it_expires(redis_conn: Redis) -> None:
    settings = get_settings().model_copy(update={"reconcile_lock_ttl": 5})
    key = reconciler.lock_key(settings)
    redis_conn.set(key, "a-dead-worker/0", px=300)  # its holder stopped renewing it
    assert reconciler.take_turn(settings, holder="worker-b") is None
    time.sleep(0.4)
    assert reconciler.take_turn(settings, holder="worker-b") is not None
    holder = redis_conn.get(key)
    assert holder is not None and holder.decode().startswith("worker-b/")


def test_a_pass_longer_than_the_lock_ttl_keeps_the_lock(
    redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings().model_copy(update={"reconcile_lock_ttl": 1, "reconcile_interval": 1})
    key = reconciler.lock_key(settings)
    passed = reconciler.reconcile
    seen: list[bytes | None] = []

    def slow_pass(settings: object) -> reconciler.ReconcileReport:
        time.sleep(2.5)  # the lock's TTL is 1 s: only the renewals keep it
        seen.append(redis_conn.get(key))
        return passed(settings)  # type: ignore[arg-type]

    monkeypatch.setattr(reconciler, "reconcile", slow_pass)
    assert reconciler.take_turn(settings, holder="slow") is not None
    assert seen[0] is not None and seen[0].decode().startswith("slow/")


def test_a_failed_pass_releases_the_lock_at_once(
    redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(settings: object) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(reconciler, "reconcile", broken)
    with pytest.raises(RuntimeError):
        reconciler.take_turn(get_settings(), holder="unlucky")
    assert redis_conn.get(reconciler.lock_key(get_settings())) is None
