"""Updates: a fiction ingested again fetches only what changed on the site.

The fixture site is revised under the crawler (chapters added, removed, re-dated, edited,
moved, a truncated table of contents) and its request log says what the update fetched.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from db import session_scope
from models import Chapter, Novel
from tests.e2e.test_pipeline import _check_chapters_against_fixture
from tests.fixture_site.content import FixtureFiction
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import wait_job

FICTION = 1001  # 48 chapters in 3 volumes


def _ingest(api: TestClient, url: str) -> dict[str, Any]:
    response = api.post("/ingest", json={"url": url})
    assert response.status_code == 202, response.text
    return wait_job(api, response.json()["job_id"], timeout=90)


def _chapter_requests(site: FixtureSite, fiction: FixtureFiction, since: int) -> list[str]:
    asked = site.requests(f"/fiction/{fiction.fiction_id}/{fiction.slug}/chapter/")
    return sorted(r.path for r in asked[since:])


def _current(novel_id: int) -> list[Chapter]:
    with session_scope() as session:
        stmt = (
            select(Chapter)
            .where(Chapter.novel_id == novel_id, Chapter.removed_at.is_(None))
            .order_by(Chapter.position)
        )
        return list(session.execute(stmt).scalars())


def _novel(novel_id: int) -> Novel:
    with session_scope() as session:
        novel = session.get(Novel, novel_id)
        assert novel is not None
        return novel


@pytest.fixture
def stored(api: TestClient, fixture_site: FixtureSite, start_worker: Any) -> dict[str, Any]:
    """Fiction 1001 ingested once, by a worker that stays up for the test."""
    start_worker()
    fiction = fixture_site.fiction(FICTION)
    assert fiction is not None
    job = _ingest(api, fixture_site.url(f"/fiction/{FICTION}"))
    assert job["status"] == "done", job
    assert job["changes"] == {"new": 48, "updated": 0, "removed": 0, "unchanged": 0}
    return job


def _paths(fiction: FixtureFiction, positions: list[int]) -> list[str]:
    return sorted(
        f"/fiction/{fiction.fiction_id}/{fiction.slug}/chapter/{c.chapter_id}/{c.slug}"
        for c in fiction.chapters
        if c.position in positions
    )


def test_a_reingest_with_nothing_new_fetches_no_chapter_page(
    api: TestClient, fixture_site: FixtureSite, stored: dict[str, Any]
) -> None:
    fiction = fixture_site.fiction(FICTION)
    assert fiction is not None
    first = _novel(stored["novel_id"])
    before = len(fixture_site.requests(""))
    chapter_url = fixture_site.url(
        f"/fiction/{FICTION}/{fiction.slug}/chapter/{fiction.chapters[4].chapter_id}/x"
    )
    job = _ingest(api, chapter_url)  # any URL of the fiction is the same fiction
    assert job["status"] == "done", job
    assert job["novel_id"] == stored["novel_id"]
    assert job["changes"] == {"new": 0, "updated": 0, "removed": 0, "unchanged": 48}
    asked = [r.path for r in fixture_site.requests("")[before:]]
    # the fiction page (its short URL redirects to the one with the slug) and nothing else:
    # no chapter page, and robots.txt comes from Redis, shared by every job
    assert asked == [f"/fiction/{FICTION}", f"/fiction/{FICTION}/{fiction.slug}"]
    again = _novel(stored["novel_id"])
    assert again.last_checked_at is not None and first.last_checked_at is not None
    assert again.last_checked_at > first.last_checked_at
    assert again.last_changed_at == first.last_changed_at  # nothing changed
    assert again.next_refresh_at is not None and again.next_refresh_at > again.last_checked_at


def test_new_removed_and_redated_chapters_fetch_exactly_those_pages(
    api: TestClient, fixture_site: FixtureSite, stored: dict[str, Any]
) -> None:
    before = fixture_site.fiction(FICTION)
    assert before is not None
    gone = before.chapters[9]
    revised = fixture_site.revise(FICTION, redate=[20], remove=[10], add=3)
    since = len(fixture_site.requests(f"/fiction/{FICTION}/{revised.slug}/chapter/"))
    job = _ingest(api, fixture_site.url(f"/fiction/{FICTION}"))
    assert job["status"] == "done", job
    assert job["changes"] == {"new": 3, "updated": 1, "removed": 1, "unchanged": 46}
    redated = next(c for c in revised.chapters if c.chapter_id == before.chapters[19].chapter_id)
    expected = _paths(revised, [redated.position, 48, 49, 50])
    assert _chapter_requests(fixture_site, revised, since) == expected
    current = _current(stored["novel_id"])
    _check_chapters_against_fixture(current, revised)
    novel = _novel(stored["novel_id"])
    assert novel.last_changed_at is not None and novel.last_changed_at == novel.last_checked_at
    # The API lists current chapters only; with include_removed, the removed one too.
    listed = api.get(f"/novels/{stored['novel_id']}/chapters").json()
    assert listed["total"] == 50
    assert [c["site_chapter_id"] for c in listed["items"]] == [
        str(c.chapter_id) for c in revised.chapters
    ]
    everything = api.get(
        f"/novels/{stored['novel_id']}/chapters", params={"include_removed": "true"}
    ).json()
    assert everything["total"] == 51
    removed = [c for c in everything["items"] if c["removed_at"] is not None]
    assert [c["site_chapter_id"] for c in removed] == [str(gone.chapter_id)]
    assert api.get(f"/novels/{stored['novel_id']}").json()["chapter_count"] == 50


def test_an_edit_shows_only_in_a_full_refresh_which_rewrites_only_that_chapter(
    api: TestClient, fixture_site: FixtureSite, stored: dict[str, Any]
) -> None:
    revised = fixture_site.revise(FICTION, edit=[5])
    chapters = f"/fiction/{FICTION}/{revised.slug}/chapter/"
    novel_id = stored["novel_id"]
    since = len(fixture_site.requests(chapters))
    response = api.post(f"/novels/{novel_id}/refresh", json={"full": False})
    assert response.status_code == 202, response.text
    quick = wait_job(api, response.json()["job_id"])
    # the table of contents does not show an edit: nothing fetched, nothing changed
    assert quick["changes"] == {"new": 0, "updated": 0, "removed": 0, "unchanged": 48}
    assert _chapter_requests(fixture_site, revised, since) == []
    since = len(fixture_site.requests(chapters))
    response = api.post(f"/novels/{novel_id}/refresh", json={"full": True})
    assert response.status_code == 202, response.text
    full = wait_job(api, response.json()["job_id"])
    assert full["status"] == "done", full
    assert full["full"] is True and full["origin"] == "refresh"
    assert full["changes"] == {"new": 0, "updated": 1, "removed": 0, "unchanged": 47}
    assert len(_chapter_requests(fixture_site, revised, since)) == 48
    _check_chapters_against_fixture(_current(novel_id), revised)


def test_a_truncated_table_of_contents_removes_nothing(
    api: TestClient, fixture_site: FixtureSite, stored: dict[str, Any]
) -> None:
    revised = fixture_site.revise(FICTION, toc_limit=10)  # a page cut short
    since = len(fixture_site.requests(f"/fiction/{FICTION}/{revised.slug}/chapter/"))
    job = _ingest(api, fixture_site.url(f"/fiction/{FICTION}"))
    assert job["status"] == "error"
    assert job["attempts"] == 1  # not retried: the same page would cut the same chapters
    assert "lists 10 chapters of the 48 stored" in job["error_message"]
    assert "UPDATE_REMOVAL_LIMIT" in job["error_message"]
    assert _chapter_requests(fixture_site, revised, since) == []
    assert len(_current(stored["novel_id"])) == 48  # the store kept every chapter
    full = fixture_site.revise(FICTION, full_toc=True)
    assert job["allow_removals"] is False
    assert _ingest(api, fixture_site.url(f"/fiction/{FICTION}"))["changes"]["removed"] == 0
    _check_chapters_against_fixture(_current(stored["novel_id"]), full)


def test_reordered_chapters_take_their_new_positions_without_a_fetch(
    api: TestClient, fixture_site: FixtureSite, stored: dict[str, Any]
) -> None:
    revised = fixture_site.revise(FICTION, move=[(1, 5)])
    since = len(fixture_site.requests(f"/fiction/{FICTION}/{revised.slug}/chapter/"))
    job = _ingest(api, fixture_site.url(f"/fiction/{FICTION}"))
    assert job["changes"] == {"new": 0, "updated": 0, "removed": 0, "unchanged": 48}
    assert _chapter_requests(fixture_site, revised, since) == []
    _check_chapters_against_fixture(_current(stored["novel_id"]), revised)


def test_refresh_of_an_unknown_novel_is_a_404(api: TestClient) -> None:
    response = api.post("/novels/999999/refresh", json={"full": False})
    assert response.status_code == 404
    assert response.json()["detail"] == "novel 999999 not found"
    bad = api.post(
        "/novels/1/refresh", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 422


def test_an_update_on_sqlite_fetches_only_what_changed(
    sqlite_db: str, fixture_site: FixtureSite, start_worker: Any
) -> None:
    from main import create_app

    worker = start_worker()
    with TestClient(create_app()) as api:
        first = _ingest(api, fixture_site.url("/fiction/1002"))
        assert first["status"] == "done", worker.log()
        revised = fixture_site.revise(1002, add=1, redate=[2], remove=[1])
        since = len(fixture_site.requests(f"/fiction/1002/{revised.slug}/chapter/"))
        job = _ingest(api, fixture_site.url("/fiction/1002"))
        assert job["status"] == "done", worker.log()
        assert job["changes"] == {"new": 1, "updated": 1, "removed": 1, "unchanged": 3}
        assert len(_chapter_requests(fixture_site, revised, since)) == 2
        _check_chapters_against_fixture(_current(first["novel_id"]), revised)


@pytest.mark.parametrize("site_name", ["scribblehub", "ao3"])
def test_other_sites_updated_with_nothing_new_fetch_no_chapter_page(
    site_name: str, api: TestClient, fixture_sites: dict[str, FixtureSite], start_worker: Any
) -> None:
    from tests.fixture_site import ao3, scribblehub

    site = fixture_sites[site_name]
    if site_name == "scribblehub":
        series = scribblehub.fiction(scribblehub.NORMAL)
        assert series is not None
        url, count = site.url(series.path()), len(series.chapters)
        text_pages = [f"{series.chapter_path(c)}" for c in series.chapters]
    else:
        work = ao3.work(ao3.NORMAL)
        assert work is not None
        url, count = site.url(f"/works/{work.work_id}"), len(work.chapters)
        # the text of every chapter comes in one page, /works/<id>?view_full_work=true
        # (the log keeps paths, not queries: it is one more /works/<id> request)
        text_pages = [f"/works/{work.work_id}"]
    worker = start_worker()
    first = _ingest(api, url)
    assert first["status"] == "done", worker.log()
    first_run = sorted(r.path for r in site.requests(""))
    again = _ingest(api, url)
    assert again["status"] == "done", worker.log()
    assert again["changes"] == {"new": 0, "updated": 0, "removed": 0, "unchanged": count}
    second_run = [r.path for r in site.requests("")[len(first_run) :]]
    expected = list(first_run)
    for page in [*text_pages, "/robots.txt"]:  # robots.txt: shared by all jobs (Redis)
        expected.remove(page)
    assert sorted(second_run) == expected, (first_run, second_run)


def test_a_cut_fiction_is_cut_in_the_store_when_removals_are_allowed(
    api: TestClient, fixture_site: FixtureSite, stored: dict[str, Any]
) -> None:
    cut = fixture_site.revise(FICTION, remove=list(range(11, 49)))  # the author kept 10
    novel_id = stored["novel_id"]
    refused = wait_job(api, api.post(f"/novels/{novel_id}/refresh", json={}).json()["job_id"])
    assert refused["status"] == "error" and "allow_removals" in refused["error_message"]
    response = api.post(f"/novels/{novel_id}/refresh", json={"allow_removals": True})
    assert response.status_code == 202, response.text
    job = wait_job(api, response.json()["job_id"])
    assert job["status"] == "done", job
    assert job["allow_removals"] is True
    assert job["changes"] == {"new": 0, "updated": 0, "removed": 38, "unchanged": 10}
    _check_chapters_against_fixture(_current(novel_id), cut)
