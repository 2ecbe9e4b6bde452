"""A crawl stays on the fiction's site: redirects to the real host are rebased onto the
alias it was reached through, redirects anywhere else are refused (never followed). The
hostile pages' rows are in test_egress.py."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.fixture_site import content
from tests.fixture_site.server import OFF_SITE, FixtureSite
from tests.utils.jobs import counts, submit, wait_job


def test_a_redirect_to_the_real_host_is_followed_on_the_alias(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker()
    job = wait_job(api, submit(api, fixture_site.url("/fiction/2011")), timeout=60)
    assert job["status"] == "done", worker.log()
    fiction = content.fiction(2011)
    assert fiction is not None
    assert counts() == (1, len(fiction.chapters), 0)
    # the absolute https://www.royalroad.com/... answer was fetched here, on the alias
    assert [r.status for r in fixture_site.requests("/fiction/2011")][:2] == [301, 200]


def test_a_redirect_off_the_site_is_not_followed(
    api: TestClient, fixture_sites: dict[str, FixtureSite], start_worker: Any
) -> None:
    worker = start_worker()
    site = fixture_sites["royalroad"]
    job = wait_job(api, submit(api, site.url("/fiction/2012")), timeout=60)
    assert job["status"] == "error", worker.log()
    assert job["attempts"] == 1
    assert job["error_message"] == (
        f"refused {OFF_SITE}: {site.url('/fiction/2012')} redirects there, off the fiction's site"
    )
    assert counts() == (0, 0, 0)
    assert len(site.requests("/fiction/2012")) == 1  # not retried
