"""Politeness over every worker: two workers crawling two fictions of one site at once keep
the site's interval between them, and a 429 with Retry-After stops both.

The fixture site stamps each request as it arrives (time.monotonic() in this process). The
workers' grants are spaced by Redis's clock; a request then still has to reach the site,
so gaps are checked against the interval less ALLOWANCE for that hop, as a lower bound
only: a slow machine spreads requests further apart, never closer.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from typing import Any

from fastapi.testclient import TestClient
from redis import Redis
from rq import Worker

from crawler.pacing import KEY_PREFIX
from tests.fixture_site import content, pages
from tests.fixture_site.server import FixtureSite, Received
from tests.utils.jobs import counts, submit, wait_job
from tests.utils.services import wait_for

INTERVAL = 0.3
ALLOWANCE = 0.05  # seconds from Redis's grant to the request's arrival at the site
PACED = {"CRAWLER_SITE_DELAYS": f"royalroad={INTERVAL}"}  # wins over CRAWLER_DOWNLOAD_DELAY=0
FICTIONS = (1002, 5003)  # 5 and 8 chapters
FICTION_PATH = re.compile(r"^/fiction/(\d+)")
LISTING_PATH = re.compile(r"^/fiction/(\d+)/[^/]+$")


def _start_both(api: TestClient, site: FixtureSite, start_worker: Any, redis: Redis) -> list[int]:
    """Two idle workers, then one job each (the longer fiction first): the job ids."""
    names = {start_worker(env=PACED).name for _ in range(2)}

    def registered() -> bool:  # RQ names a worker <--name>.<random suffix>
        return names <= {w.name.rpartition(".")[0] for w in Worker.all(connection=redis)}

    assert wait_for(registered, timeout=30)
    return [submit(api, site.url(f"/fiction/{fiction}")) for fiction in reversed(FICTIONS)]


def _assert_both_done(api: TestClient, job_ids: list[int]) -> None:
    jobs = [wait_job(api, job_id, timeout=60) for job_id in job_ids]
    assert [(j["status"], j["attempts"]) for j in jobs] == [("done", 1)] * 2, jobs
    chapters = sum(len(f.chapters) for f in map(content.fiction, FICTIONS) if f is not None)
    assert counts() == (2, chapters, 0)  # both stored in PostgreSQL, nothing doubled


def _fiction(request: Received) -> int | None:
    match = FICTION_PATH.match(request.path)
    return int(match[1]) if match else None


def _listings_sent(site: FixtureSite) -> set[int]:
    """The fictions whose fiction page (the whole listing on Royal Road) has been served."""
    return {
        int(match[1])
        for r in site.requests("/fiction/")
        if r.status == 200 and (match := LISTING_PATH.match(r.path))
    }


def _assert_spaced(received: list[Received]) -> None:
    """No two requests to the site, from either worker, closer than the interval."""
    arrivals = sorted(r.at for r in received)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) > 10
    assert min(gaps) >= INTERVAL - ALLOWANCE, sorted(gaps)[:3]


def _assert_interleaved(received: list[Received]) -> None:
    """Each fiction's requests went on while the other's did: both workers ran at once."""
    arrivals: dict[int | None, list[float]] = defaultdict(list)
    for request in received:
        arrivals[_fiction(request)].append(request.at)
    (first_a, last_a), (first_b, last_b) = ((min(arrivals[f]), max(arrivals[f])) for f in FICTIONS)
    assert first_a < last_b and first_b < last_a, received


def test_two_workers_on_one_site_keep_its_interval_between_them(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any, redis_conn: Redis
) -> None:
    _assert_both_done(api, _start_both(api, fixture_site, start_worker, redis_conn))
    received = fixture_site.requests()  # robots.txt included: it is paced too
    _assert_interleaved(received)
    _assert_spaced(received)


def test_a_429_with_retry_after_stops_both_workers(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any, redis_conn: Redis
) -> None:
    job_ids = _start_both(api, fixture_site, start_worker, redis_conn)
    # Once both listings are in, both crawls have chapters to go: the next one asked for,
    # of either fiction, is refused with Retry-After: 2.
    assert wait_for(lambda: _listings_sent(fixture_site) == set(FICTIONS), timeout=30)
    fixture_site.fail_next("/fiction/", 1, status=429, retry_after=2)
    _assert_both_done(api, job_ids)
    received = fixture_site.requests()
    refused = [r for r in received if r.status == 429]
    assert len(refused) == 1, refused
    after = [r for r in received if r.at > refused[0].at]
    assert {_fiction(r) for r in after} == set(FICTIONS), received  # both held back ...
    assert min(r.at for r in after) - refused[0].at >= 2 - ALLOWANCE, after[:2]  # ... 2 s
    _assert_spaced(received)


def test_a_job_that_would_wait_past_its_time_limit_is_retried_later(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any, redis_conn: Redis
) -> None:
    seconds, micros = redis_conn.time()  # the site paused for 60 s, by Redis's clock
    ends = (seconds + 60) * 1_000_000 + micros
    redis_conn.set(f"{KEY_PREFIX}{fixture_site.host}:paused", ends, px=60_000)
    worker = start_worker(env={**PACED, "JOB_TIMEOUT": "10"})
    job_id = submit(api, fixture_site.url(f"/fiction/{FICTIONS[0]}"))

    def retry_waiting() -> bool:
        job = api.get(f"/jobs/{job_id}").json()
        return job["status"] == "queued" and job["attempts"] == 1 and bool(job["last_error"])

    assert wait_for(retry_waiting, timeout=30), worker.log()
    last_error = api.get(f"/jobs/{job_id}").json()["last_error"]
    assert "past this job's time limit" in last_error and "Retry-After" in last_error
    retry_in = re.search(r"retrying in (\d+) s", last_error)
    assert retry_in and 40 <= int(retry_in[1]) <= 60, last_error  # when the pause ends
    assert fixture_site.hits() == 0  # nothing was sent, not even robots.txt


def test_a_crawl_that_fails_sends_none_of_the_requests_still_waiting_their_turn(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    fiction = content.fiction(1001)  # 48 chapters: 16 requests at once wait for 2 slots
    assert fiction is not None
    fixture_site.fail_next(pages.chapter_url(fiction, fiction.chapters[2]), 1, status=404)
    worker = start_worker(env={**PACED, "CRAWLER_SITE_CONCURRENCY": "2"})
    job = wait_job(api, submit(api, fixture_site.url("/fiction/1001")), timeout=60)
    assert job["status"] == "error" and "page not found" in job["error_message"], worker.log()
    received = fixture_site.requests("/fiction/1001/")
    missing = next(r for r in received if r.status == 404)
    late = [r for r in received if r.at > missing.at]
    assert len(late) <= 1, late  # at most the other slot's request, already granted
