"""Submitting jobs: one active job per novel, a user's ask moves a waiting refresh up, a
resubmission after an error takes over the pages its failed run fetched."""

from __future__ import annotations

from redis import Redis
from sqlalchemy import select, update

import ingestion_queue
import jobs
from config import get_settings
from db import session_scope
from models import IngestionJob, JobStatus, Origin, Priority, SpooledPage
from models.base import utcnow
from tests.conftest import DEAD_PORT
from tests.fixture_site.server import FixtureSite


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
