"""Hostile pages cannot send a crawl anywhere but the fiction's own site, and cannot make a
job take more than its caps: API -> RQ worker -> Scrapy -> PostgreSQL, against the fixture
site's hostile fictions (tests/fixture_site/content.py `HOSTILE`).

Each test asserts what the job says (ERROR, one attempt, the refused URL), what is stored
(nothing), what the fixture site received, and that the internal service (a listener on
another loopback port, tests/conftest.py) saw no connection at all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import InternalService
from tests.fixture_site import content
from tests.fixture_site.server import OFF_SITE, PRIVATE, FixtureSite
from tests.utils.jobs import counts, submit, wait_job
from tests.utils.services import REDIS_URL


def _url(site: FixtureSite, fiction_id: int) -> str:
    return site.url(f"/fiction/{fiction_id}")


def _run(
    api: TestClient, site: FixtureSite, start_worker: Any, fiction_id: int, **env: str
) -> dict[str, Any]:
    worker = start_worker(env=env or None)
    job = wait_job(api, submit(api, _url(site, fiction_id)), timeout=60)
    assert job["status"] in ("done", "error"), worker.log()
    return job


def _refused(
    api: TestClient, site: FixtureSite, start_worker: Any, fiction_id: int, **env: str
) -> str:
    """Run one job that must end ERROR, refused, on its first attempt; its error message."""
    job = _run(api, site, start_worker, fiction_id, **env)
    assert job["status"] == "error", job
    assert job["attempts"] == 1, job  # a refusal is never retried
    assert counts() == (0, 0, 0)  # nothing stored
    return str(job["error_message"])


def test_a_redirect_to_an_internal_service_is_refused(
    api: TestClient, fixture_site: FixtureSite, internal_service: InternalService, start_worker: Any
) -> None:
    message = _refused(api, fixture_site, start_worker, 2101)
    assert message == (
        f"refused http://{internal_service.host}/admin: {_url(fixture_site, 2101)} redirects"
        " there, off the fiction's site"
    )
    assert internal_service.connections == 0
    assert [r.status for r in fixture_site.requests("/fiction/2101")] == [302]  # once


def test_a_chapter_redirect_to_another_host_is_refused(
    api: TestClient, fixture_site: FixtureSite, internal_service: InternalService, start_worker: Any
) -> None:
    message = _refused(api, fixture_site, start_worker, 2102)
    assert message.startswith(f"refused http://localhost:{internal_service.port}/chapter: ")
    assert "/fiction/2102/" in message and "redirects there, off the fiction's site" in message
    assert internal_service.connections == 0
    fiction = content.fiction(2102)
    assert fiction is not None
    chapter = fiction.chapters[1]
    asked = [
        r for r in fixture_site.requests("/fiction/2102/") if f"/{chapter.chapter_id}/" in r.path
    ]
    assert [r.status for r in asked] == [302]  # not retried


def test_a_meta_refresh_to_another_host_is_not_followed(
    api: TestClient, fixture_site: FixtureSite, internal_service: InternalService, start_worker: Any
) -> None:
    job = _run(api, fixture_site, start_worker, 2103)
    assert job["status"] == "done", job  # the page is read as the fiction page it also is
    fiction = content.fiction(2103)
    assert fiction is not None
    assert counts() == (1, len(fiction.chapters), 0)
    assert internal_service.connections == 0


@pytest.mark.parametrize(
    ("fiction_id", "target"),
    [
        (2012, lambda port: OFF_SITE),  # the cloud metadata address, 169.254.169.254
        (2104, lambda port: PRIVATE),  # 10.0.0.1
        (2105, lambda port: f"http://2130706433:{port}/"),  # 127.0.0.1 as one number
        (2106, lambda port: f"http://[::ffff:127.0.0.1]:{port}/"),  # IPv4-mapped IPv6
    ],
    ids=["metadata", "private", "numeric-host", "ipv4-mapped"],
)
def test_a_redirect_to_an_address_inside_the_network_is_refused(
    api: TestClient,
    fixture_site: FixtureSite,
    internal_service: InternalService,
    start_worker: Any,
    fiction_id: int,
    target: Any,
) -> None:
    message = _refused(api, fixture_site, start_worker, fiction_id)
    assert message == (
        f"refused {target(internal_service.port)}: {_url(fixture_site, fiction_id)} redirects"
        " there, off the fiction's site"
    )
    assert internal_service.connections == 0
    assert len(fixture_site.requests(f"/fiction/{fiction_id}")) == 1  # once, never again


def test_a_fiction_with_more_chapters_than_the_cap_ends_in_error(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    job = _run(api, fixture_site, start_worker, 1011, CRAWLER_MAX_CHAPTERS="100")
    assert job["status"] == "error", job
    assert job["attempts"] == 1
    assert job["error_message"].endswith(
        "/fiction/1011 lists 2000 chapters, more than CRAWLER_MAX_CHAPTERS (100)"
    )
    assert counts() == (0, 0, 0)
    assert fixture_site.hits("/fiction/1011/fixture-fiction-1011/chapter/") == 0


def test_a_job_that_downloads_more_than_its_byte_cap_ends_in_error(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    cap = 500_000
    worker = start_worker(env={"CRAWLER_MAX_JOB_BYTES": str(cap)})
    fixture_site.chapter_padding = 200_000  # 8 chapters: 1.6 MB
    job = wait_job(api, submit(api, _url(fixture_site, 2107)), timeout=60)
    assert job["status"] == "error", worker.log()
    assert job["attempts"] == 1
    assert f"downloaded more than CRAWLER_MAX_JOB_BYTES ({cap} bytes)" in job["error_message"]
    assert counts() == (0, 0, 0)

    fixture_site.chapter_padding = 1_000  # the same fiction, small: within the cap
    job = wait_job(api, submit(api, _url(fixture_site, 2107)), timeout=60)
    assert job["status"] == "done", job
    assert counts() == (1, 8, 0)


def test_an_error_names_no_errno_and_no_local_path(
    api: TestClient, dead_site_url: str, start_worker: Any
) -> None:
    worker = start_worker(env={"JOB_MAX_ATTEMPTS": "1"})
    job = wait_job(api, submit(api, dead_site_url), timeout=60)
    assert job["status"] == "error", worker.log()
    message = job["error_message"]
    assert "could not fetch http://127.0.0.1:" in message, message
    assert message.endswith(": connection refused"), message
    assert "Errno" not in message and "111" not in message


# --- links in the listing to other hosts: the adapters refuse them (RefusedURLError) ------


@pytest.mark.parametrize(
    "fiction_id", [2109, 2110, 2111], ids=["internal-service", "redis", "file-url"]
)
def test_a_chapter_link_to_another_host_ends_the_job_refused(
    api: TestClient,
    fixture_site: FixtureSite,
    internal_service: InternalService,
    start_worker: Any,
    fiction_id: int,
) -> None:
    redis = urlsplit(REDIS_URL)
    fixture_site.redis = f"{redis.hostname}:{redis.port or 6379}"
    job = _run(api, fixture_site, start_worker, fiction_id)
    assert job["status"] == "error", job
    assert job["attempts"] == 1
    assert "refused" in job["error_message"], job
    assert counts()[1] == 0  # no chapter rows
    assert internal_service.connections == 0
    assert fixture_site.hits(f"/fiction/{fiction_id}/fixture-fiction-{fiction_id}/chapter/") == 0
