"""Sites that misbehave: retried when a retry can help, ERROR with a clear message when not."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ingestion_queue import get_queue, rq_job_id
from tests.fixture_site import content, pages
from tests.fixture_site.server import FixtureSite, Received
from tests.utils.chaos import gone, horse_of
from tests.utils.jobs import counts, submit, wait_job
from tests.utils.services import wait_for


def _url(site: FixtureSite, fiction_id: int) -> str:
    return site.url(f"/fiction/{fiction_id}")


def test_429_with_retry_after_is_waited_out(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    job = wait_job(api, submit(api, _url(fixture_site, 2003)), timeout=60)
    assert job["status"] == "done", job
    assert job["attempts"] == 1  # the page retries, honouring Retry-After: 1, were enough
    assert fixture_site.hits("/fiction/2003/") == 1 + 2 * 4  # every chapter twice
    fiction = content.fiction(2003)
    assert fiction is not None
    per_chapter: dict[str, list[Received]] = defaultdict(list)
    for request in fixture_site.requests("/fiction/2003/"):
        if "/chapter/" in request.path:
            per_chapter[request.path].append(request)
    assert set(per_chapter) == {pages.chapter_url(fiction, c) for c in fiction.chapters}
    for path, received in per_chapter.items():
        assert [r.status for r in received] == [429, 200], (path, received)  # two, in order
        assert received[1].at - received[0].at >= 1.0, received  # the Retry-After: 1 it sent


def test_a_flaky_fiction_page_is_retried_by_the_job_with_backoff(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    # more 503s than the page retries absorb (1 retry): the first run fails, the second wins
    fixture_site.fail_next("/fiction/2002/", count=2, status=503)
    fixture_site.fail_next("/fiction/1002/", count=2, status=503)
    job = wait_job(api, submit(api, _url(fixture_site, 1002)), timeout=60)
    assert job["status"] == "done", job
    assert job["attempts"] == 2
    assert "HTTP 503" in job["last_error"] and "retrying in 1 s" in job["last_error"]
    statuses = [e["status"] for e in job["history"]]
    assert statuses == ["queued", "crawling", "queued", "crawling", "parsing", "saving", "done"]
    assert counts()[1] == 5


def test_a_retry_after_longer_than_the_backoff_max_ends_the_job_at_once(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker(env={"JOB_RETRY_BACKOFF_MAX": "5"})
    fixture_site.fail_next("/fiction/1002", count=1, status=429, retry_after=3600)
    job = wait_job(api, submit(api, _url(fixture_site, 1002)), timeout=60)
    assert job["status"] == "error", worker.log()
    assert job["attempts"] == 1
    assert "HTTP 429" in job["error_message"]
    assert "asks to wait 3600 s" in job["error_message"]
    assert fixture_site.hits("/fiction/1002") == 1  # not retried in place either


@pytest.mark.parametrize(
    ("fiction_id", "needle"),
    [
        (2002, "site answered HTTP 503"),
        (2004, "could not fetch"),
        (2005, "could not fetch"),
    ],
)
def test_errors_that_persist_end_after_the_attempts(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any, fiction_id: int, needle: str
) -> None:
    worker = start_worker()
    job = wait_job(api, submit(api, _url(fixture_site, fiction_id)), timeout=90)
    assert job["status"] == "error", worker.log()
    assert job["error_message"].startswith("gave up after 3 attempts: ")
    assert needle in job["error_message"]
    assert job["attempts"] == 3
    assert counts() == (0, 0, 0)  # nothing half-written


def _permanent_error(api: TestClient, site: FixtureSite, start_worker: Any, fiction_id: int) -> str:
    """Run one job that must end ERROR on its first attempt; its error message."""
    worker = start_worker()
    job = wait_job(api, submit(api, _url(site, fiction_id)), timeout=60)
    assert job["status"] == "error", worker.log()
    assert job["attempts"] == 1  # permanent: a retry would fail the same way
    return str(job["error_message"])


def test_a_huge_page_is_refused(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    assert "too large" in _permanent_error(api, fixture_site, start_worker, 2006)


def test_a_fiction_that_robots_txt_disallows_is_not_fetched(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    message = _permanent_error(api, fixture_site, start_worker, 2010)
    assert "forbidden by the site's robots.txt" in message
    assert fixture_site.hits("/robots.txt") >= 1
    assert fixture_site.hits("/fiction/2010") == 0


def test_a_job_past_its_timeout_ends_in_error(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker(env={"JOB_TIMEOUT": "2"})
    job = wait_job(api, submit(api, _url(fixture_site, 2008)), timeout=60)
    assert job["status"] == "error"
    assert job["error_message"] == "timed out after 2 s"


def test_cancel_a_running_job(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker()
    fixture_site.delay = 0.5
    job_id = submit(api, _url(fixture_site, 1001))
    assert wait_for(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "crawling", timeout=30)
    assert wait_for(lambda: horse_of(worker.pid) is not None, timeout=10), worker.log()
    horse = horse_of(worker.pid)
    assert horse is not None
    cancelled = api.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["error_message"] == "cancelled by user"
    # the horse was stopped: it is gone and its worker has ended the RQ job
    assert wait_for(lambda: gone(horse) and not _rq_running(job_id), timeout=30), worker.log()
    stopped = time.monotonic()
    time.sleep(2)  # longer than a job retry's backoff: a new run would show by now
    late = [r for r in fixture_site.requests("/fiction/1001") if r.at > stopped]
    assert late == [], late  # nothing fetched once the horse had gone, nor since
    job = api.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["error_message"]) == ("error", "cancelled by user")
    assert counts() == (0, 0, 0)


def _rq_running(job_id: int) -> bool:
    try:
        job = Job.fetch(rq_job_id(job_id), connection=get_queue().connection)
    except NoSuchJobError:
        return False
    return job.get_status() == JobStatus.STARTED
