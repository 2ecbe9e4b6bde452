"""robots.txt is fetched once per site and shared by the jobs that follow."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from crawler.robots import KEY_PREFIX
from tests.fixture_site.server import ROBOTS_TXT, FixtureSite
from tests.utils.jobs import submit, wait_job


@pytest.mark.parametrize(("ttl", "fetches"), [(3600, 1), (0, 3)])
def test_jobs_of_one_site_share_its_robots_txt(
    api: TestClient,
    fixture_site: FixtureSite,
    start_worker: Any,
    redis_conn: Redis,
    ttl: int,
    fetches: int,
) -> None:
    start_worker(env={"CRAWLER_ROBOTS_TXT_TTL": str(ttl)})
    for fiction_id in (5001, 5002, 5003):
        job = wait_job(api, submit(api, fixture_site.url(f"/fiction/{fiction_id}")))
        assert job["status"] == "done", job
    assert fixture_site.hits("/robots.txt") == fetches
    shared = redis_conn.keys(f"{KEY_PREFIX}*")
    if ttl:
        assert shared == [f"{KEY_PREFIX}{fixture_site.host}".encode()]
        assert redis_conn.get(shared[0]) == ROBOTS_TXT.encode()
        assert 0 < redis_conn.ttl(shared[0]) <= ttl
    else:
        assert shared == []


def test_a_shared_robots_txt_is_still_obeyed(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    first = wait_job(api, submit(api, fixture_site.url("/fiction/5004")))
    assert first["status"] == "done", first
    refused = wait_job(api, submit(api, fixture_site.url("/fiction/2010")))
    assert refused["status"] == "error"
    assert "forbidden by the site's robots.txt" in refused["error_message"]
    assert fixture_site.hits("/robots.txt") == 1
    assert fixture_site.hits("/fiction/2010") == 0
