"""Submitting jobs: one active job per novel, a user's ask moves a waiting refresh up, a
resubmission after an error takes over the pages its failed run fetched. Retrying a failed
job, purging old ended ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select, update

import ingestion_queue
import jobs
from config import Settings, get_settings
from db import session_scope
from errors import NotFoundError
from models import IngestionJob, JobEvent, JobStatus, Novel, Origin, Priority, SpooledPage
from models.base import utcnow
from models.ingestion_job import transition
from tests.conftest import DEAD_PORT
from tests.fixture_site.server import FixtureSite
from tests.utils.services import clear_settings_caches


def _queued_ids(redis: Redis, priority: Priority) -> list[str]:
    key = ingestion_queue.queue_for(priority).key
    return [raw.decode() for raw in redis.lrange(key, 0, -1)]


def test_a_user_asking_for_a_fiction_whose_refresh_waits_low_moves_it_up(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis
) -> None:
    settings = get_settings()
    url = fixture_site.url("/fiction/1002")
    with session_scope() as session:
        scheduled = jobs.submit(
            session, url, settings=settings, priority=Priority.LOW, origin=Origin.SCHEDULE
        )
    rq_id = ingestion_queue.rq_job_id(scheduled.job.id)
    assert _queued_ids(redis_conn, Priority.LOW) == [rq_id]
    with session_scope() as session:
        asked = jobs.submit(session, url + "/any-slug", settings=settings)
        assert (asked.created, asked.job.id, asked.enqueued) == (False, scheduled.job.id, True)
        assert asked.job.priority == Priority.NORMAL
    assert _queued_ids(redis_conn, Priority.LOW) == []
    assert _queued_ids(redis_conn, Priority.NORMAL) == [rq_id]
    # asking again, or lower, changes nothing
    with session_scope() as session:
        again = jobs.submit(session, url, settings=settings, priority=Priority.LOW)
        assert again.job.priority == Priority.NORMAL
    assert _queued_ids(redis_conn, Priority.NORMAL) == [rq_id]


def test_one_active_job_per_novel_whatever_host_it_is_asked_at(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis
) -> None:
    settings = get_settings()
    with session_scope() as session:
        first = jobs.submit(session, fixture_site.url("/fiction/1002"), settings=settings)
        mirror = jobs.submit(
            session, f"http://127.0.0.1:{DEAD_PORT}/fiction/1002", settings=settings
        )
    assert first.created and not mirror.created
    assert mirror.job.id == first.job.id


def test_a_resubmission_after_an_error_takes_over_the_pages_of_the_failed_run(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis
) -> None:
    settings = get_settings()
    url = fixture_site.url("/fiction/1002")
    with session_scope() as session:
        older = IngestionJob(
            source_url=url, site="royalroad", site_novel_id="1002", status=JobStatus.ERROR
        )
        session.add(older)
        session.flush()
    with session_scope() as session:
        failed = jobs.submit(session, url, settings=settings).job.id
        for job_id, key in ((failed, "a"), (failed, "b"), (older.id, "c")):
            session.add(SpooledPage(job_id=job_id, fetch_key=key, page=b"x", fetched_at=utcnow()))
        session.execute(
            update(IngestionJob)
            .where(IngestionJob.id.in_([failed, older.id]))
            .values(status=JobStatus.ERROR.value, finished_at=utcnow())
        )
    with session_scope() as session:
        resubmitted = jobs.submit(session, url, settings=settings).job.id
    with session_scope() as session:
        rows = session.execute(select(SpooledPage.job_id, SpooledPage.fetch_key)).all()
    # the latest failed job's pages only (an older failure's may repeat them)
    assert sorted(rows) == sorted([(resubmitted, "a"), (resubmitted, "b"), (older.id, "c")])


def _failed_job(url: str, *, settings: Settings) -> int:
    """A submitted job that ended in error, its RQ job ended too (as a run leaves them)."""
    with session_scope() as session:
        job_id = jobs.submit(session, url, settings=settings).job.id
        for target in (JobStatus.CRAWLING, JobStatus.ERROR):
            assert transition(session, job_id, target, message="HTTP 503 from the site")
    ingestion_queue.cancel(job_id, settings=settings)
    return job_id


def test_a_retried_error_job_is_queued_again_with_a_fresh_attempt(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis
) -> None:
    settings = get_settings()
    job_id = _failed_job(fixture_site.url("/fiction/1002"), settings=settings)
    assert _queued_ids(redis_conn, Priority.NORMAL) == []
    with session_scope() as session:
        retried = jobs.retry(session, job_id, settings=settings)
    assert (retried.job.id, retried.job.status, retried.enqueued) == (job_id, "queued", True)
    with session_scope() as session:
        job = jobs.get_job(session, job_id)
        assert (job.attempts, job.error_message, job.finished_at) == (0, None, None)
        lines = [(e.status, e.message) for e in jobs.history(session, job_id)]
    assert lines[-2:] == [("error", "HTTP 503 from the site"), ("queued", jobs.RETRIED_BY_USER)]
    assert _queued_ids(redis_conn, Priority.NORMAL) == [ingestion_queue.rq_job_id(job_id)]


def test_a_retry_is_refused_unless_the_job_ended_in_error(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis
) -> None:
    settings = get_settings()
    with session_scope() as session:
        queued = jobs.submit(session, fixture_site.url("/fiction/1002"), settings=settings).job.id
        with pytest.raises(jobs.JobConflictError, match="only a job that ended in error"):
            jobs.retry(session, queued, settings=settings)
        with pytest.raises(NotFoundError):
            jobs.retry(session, 999, settings=settings)


def test_a_retry_is_refused_while_another_job_of_the_fiction_is_active(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis
) -> None:
    settings = get_settings()
    url = fixture_site.url("/fiction/1002")
    failed = _failed_job(url, settings=settings)
    with session_scope() as session:
        active = jobs.submit(session, url, settings=settings).job.id
        with pytest.raises(jobs.JobConflictError, match=f"job {active} of the same fiction"):
            jobs.retry(session, failed, settings=settings)
    with session_scope() as session:
        assert jobs.get_job(session, failed).status == "error"


def test_a_retry_with_redis_down_stays_queued_for_the_reconciler(
    pg_db: str, fixture_site: FixtureSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _failed_job(fixture_site.url("/fiction/1002"), settings=get_settings())
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{DEAD_PORT}/0")
    clear_settings_caches()
    with session_scope() as session:
        retried = jobs.retry(session, job_id, settings=get_settings())
    assert (retried.job.status, retried.enqueued) == ("queued", False)


def test_retry_all_errors_retries_each_fictions_latest_failed_job(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCESS_QUEUE_BATCH", "2")  # several batches
    clear_settings_caches()
    settings = get_settings()
    urls = [fixture_site.url(f"/fiction/{n}") for n in (1001, 1002, 1003, 2001)]
    older = _failed_job(urls[0], settings=settings)  # superseded by the next one
    latest = [_failed_job(url, settings=settings) for url in urls]
    with session_scope() as session:  # a job a user cancelled is not a failure to retry
        cancelled = jobs.submit(session, fixture_site.url("/fiction/1005"), settings=settings)
        assert jobs.cancel(session, cancelled.job.id, settings=settings)
        done = jobs.submit(session, fixture_site.url("/fiction/1004"), settings=settings).job.id
        for target in (JobStatus.CRAWLING, JobStatus.PARSING, JobStatus.SAVING, JobStatus.DONE):
            assert transition(session, done, target)
    redis_conn.delete(ingestion_queue.queue_for(Priority.NORMAL).key)  # as the runs left it
    report = jobs.retry_all_errors(settings)
    assert (sorted(report.retried), report.refused, report.superseded) == (latest, [], 1)
    with session_scope() as session:
        statuses = dict(session.execute(select(IngestionJob.id, IngestionJob.status)).all())
    assert statuses == {
        older: "error",
        **dict.fromkeys(latest, "queued"),
        done: "done",
        cancelled.job.id: "error",
    }
    pushed = _queued_ids(redis_conn, Priority.NORMAL)
    assert sorted(pushed) == sorted(ingestion_queue.rq_job_id(i) for i in latest)


def _ended(job_id: int, status: JobStatus, *, days_ago: float) -> None:
    with session_scope() as session:
        session.execute(
            update(IngestionJob)
            .where(IngestionJob.id == job_id)
            .values(status=status.value, finished_at=utcnow() - timedelta(days=days_ago))
        )
        session.add(SpooledPage(job_id=job_id, fetch_key="k", page=b"x", fetched_at=utcnow()))
    ingestion_queue.cancel(job_id)  # its RQ job ended too


def _count(model: type[Any]) -> int:
    with session_scope() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_purge_deletes_old_ended_jobs_with_their_history_and_keeps_the_rest(
    pg_db: str, fixture_site: FixtureSite, redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCESS_QUEUE_BATCH", "2")
    clear_settings_caches()
    settings = get_settings()
    with session_scope() as session:
        session.add(Novel(site="royalroad", site_novel_id="1001", url="u", title="Kept"))
    submitted = []
    for n in range(1001, 1008):
        with session_scope() as session:
            submitted.append(
                jobs.submit(session, fixture_site.url(f"/fiction/{n}"), settings=settings).job.id
            )
    *old, recent, active = submitted
    for job_id, status in zip(old, [JobStatus.DONE, JobStatus.ERROR] * 3, strict=False):
        _ended(job_id, status, days_ago=40)
    _ended(recent, JobStatus.ERROR, days_ago=10)
    assert redis_conn.exists(f"rq:job:{ingestion_queue.rq_job_id(old[0])}")

    dry = jobs.purge(settings, older_than=timedelta(days=30), dry_run=True)
    assert (dry.jobs, dry.events, _count(IngestionJob)) == (5, 5, 7)
    report = jobs.purge(settings, older_than=timedelta(days=30))
    assert (report.jobs, report.events, report.rq_jobs, report.redis_error) == (5, 5, 5, None)

    with session_scope() as session:
        left = session.execute(select(IngestionJob.id)).scalars().all()
        events = session.execute(select(JobEvent.job_id).distinct()).scalars().all()
        pages = session.execute(select(SpooledPage.job_id)).scalars().all()
    assert sorted(left) == [recent, active]
    assert sorted(events) == [recent, active] and pages == [recent]
    assert _count(Novel) == 1
    # the purged rows' RQ jobs are gone; those of the rows kept are not
    assert not redis_conn.exists(f"rq:job:{ingestion_queue.rq_job_id(old[0])}")
    assert redis_conn.exists(f"rq:job:{ingestion_queue.rq_job_id(active)}")
