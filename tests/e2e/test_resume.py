"""Crawls that resume: pages a run fetched survive it, and its retry fetches only the rest.

The fixture site's request log counts what was fetched over all runs of a job; the
spool (spooled_pages) is checked to hold pages between runs and to be gone after DONE.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

import reconciler
import spool
from config import get_settings
from db import session_scope
from models import IngestionJob, SpooledPage
from tests.e2e.test_pipeline import _check_chapters_against_fixture, _stored
from tests.fixture_site import content
from tests.fixture_site.server import FixtureSite
from tests.utils.chaos import horse_of
from tests.utils.jobs import counts, submit, wait_job
from tests.utils.services import wait_for

BIG = 1003  # 160 chapters


def _chapter_path(fiction_id: int) -> str:
    fiction = content.fiction(fiction_id)
    assert fiction is not None
    return f"/fiction/{fiction_id}/{fiction.slug}/chapter/"


def _spooled(job_id: int | None = None) -> int:
    with session_scope() as session:
        stmt = select(func.count(SpooledPage.id))
        if job_id is not None:
            stmt = stmt.where(SpooledPage.job_id == job_id)
        return session.execute(stmt).scalar_one()


def test_a_horse_killed_mid_crawl_is_resumed_from_the_pages_it_kept(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    concurrency = 4
    worker = start_worker(env={"CRAWLER_SITE_CONCURRENCY": str(concurrency)})
    fixture_site.delay = 0.02  # slow enough to kill the horse at about 100 pages
    chapters = _chapter_path(BIG)
    job_id = submit(api, fixture_site.url(f"/fiction/{BIG}"))
    assert wait_for(lambda: fixture_site.hits(chapters) >= 100, timeout=60, interval=0.005)
    horse = horse_of(worker.pid)
    assert horse is not None, worker.log()
    os.kill(horse, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_for(lambda: horse_of(worker.pid) != horse, timeout=10)
    kept = _spooled(job_id)
    fixture_site.delay = 0.0
    job = wait_job(api, job_id, timeout=120)
    # The first run's requests: those the site received by the kill (the server may log
    # one sent just before it a moment later; the retry comes a second after at least).
    asked_first_run = sum(r.at < killed + 0.5 for r in fixture_site.requests(chapters))
    # Every page was kept but those in flight at the kill: requested and not yet answered,
    # answered and not yet read off the socket, or read and waiting for the spool's writer
    # (it gathers pages for spool.LINGER, 20 ms; on a loaded machine it may lag, by at
    # most the spool's bounded queue). The retry fetches exactly these again (below).
    lost = asked_first_run - kept
    assert kept > 0, asked_first_run
    assert 0 <= lost <= spool.QUEUED_MAX + 3 * concurrency, (kept, asked_first_run)
    assert job["status"] == "done", worker.log()
    assert job["attempts"] == 2
    asked = [r.path for r in fixture_site.requests(chapters)]
    # Over both runs: each of the 160 chapters once, plus what was in flight at the kill.
    assert len(set(asked)) == 160
    assert len(asked) == 160 + lost, (len(asked), lost)
    parsing = [e["message"] for e in job["history"] if e["status"] == "parsing"]
    assert parsing == [f"160 pages fetched, {kept} of them kept from an earlier attempt"]
    assert job["changes"] == {"new": 160, "updated": 0, "removed": 0, "unchanged": 0}
    assert counts() == (1, 160, 0)
    assert _spooled() == 0  # DONE removes the job's pages in its own transaction


def test_a_retry_after_a_site_error_fetches_only_the_page_it_lacks(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    fiction = content.fiction(1002)
    assert fiction is not None
    third = fiction.chapters[2]
    broken = f"{_chapter_path(1002)}{third.chapter_id}"
    fixture_site.fail_next(broken, 2, status=503)  # the page and its one crawler retry
    worker = start_worker()
    job_id = submit(api, fixture_site.url("/fiction/1002"))
    job = wait_job(api, job_id, timeout=60)
    assert job["status"] == "done", worker.log()
    assert job["attempts"] == 2
    per_chapter: dict[str, int] = {}
    for received in fixture_site.requests(_chapter_path(1002)):
        cid = received.path.split("/chapter/")[1].split("/")[0]
        per_chapter[cid] = per_chapter.get(cid, 0) + 1
    # the four good pages once (first run), the broken one twice then once (second run)
    assert per_chapter.pop(str(third.chapter_id)) == 3
    assert sorted(per_chapter.values()) == [1, 1, 1, 1]
    assert counts() == (1, 5, 0)
    assert _spooled() == 0


def test_a_failed_jobs_pages_expire_after_the_retention(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker(env={"JOB_MAX_ATTEMPTS": "1"})
    job_id = submit(api, fixture_site.url("/fiction/2002"))  # chapter 3 always answers 503
    job = wait_job(api, job_id, timeout=60)
    assert job["status"] == "error", worker.log()
    assert _spooled(job_id) == 3  # the other three chapters, kept for a retry by hand
    with session_scope() as session:
        assert spool.expire(session, retention=3600) == 0  # not yet
        finished = session.get(IngestionJob, job_id)
        assert finished is not None and finished.finished_at is not None
        later = finished.finished_at + timedelta(seconds=3601)
        assert spool.expire(session, retention=3600, now=later) == 3
    assert _spooled() == 0


def test_the_reconciler_expires_the_pages_of_ended_jobs(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker(env={"JOB_MAX_ATTEMPTS": "1"})
    job_id = submit(api, fixture_site.url("/fiction/2002"))
    assert wait_job(api, job_id, timeout=60)["status"] == "error", worker.log()
    settings = get_settings()
    assert reconciler.reconcile(settings).spool_expired == 0  # kept SPOOL_RETENTION
    assert _spooled(job_id) == 3
    report = reconciler.reconcile(settings.model_copy(update={"spool_retention": 0}))
    assert report.spool_expired == 3
    assert _spooled() == 0


def test_records_past_the_memory_budget_wait_in_the_spool_and_store_the_same(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker(env={"RECORDS_IN_MEMORY": "0"})  # every record goes back
    job = wait_job(api, submit(api, fixture_site.url("/fiction/1001")), timeout=90)
    assert job["status"] == "done", worker.log()
    fiction = content.fiction(1001)
    assert fiction is not None
    _, chapters = _stored(job["novel_id"])
    _check_chapters_against_fixture(chapters, fiction)
    assert _spooled() == 0
