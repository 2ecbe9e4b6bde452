"""One fiction of each site, API -> RQ -> worker -> Scrapy -> database, every field checked.

Each site's look-alike runs on a server of its own behind an alias for its site; its pages
link to the real hosts, as the real sites do, and the crawl must stay on the alias.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from parsel import Selector

from crawler.sites.fields import WORD, reading_text
from tests.e2e.test_pipeline import _stored
from tests.fixture_site import ao3, scribblehub
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import submit, wait_job

FULL_RUN = ["queued", "crawling", "parsing", "saving", "done"]


def _words(html: str) -> int:
    return len(WORD.findall(reading_text(Selector(text=f"<div>{html}</div>").css("div")[0].root)))


def _ingest(request: pytest.FixtureRequest, database: str, start_worker: Any, url: str) -> Any:
    request.getfixturevalue(database)
    from main import create_app

    worker = start_worker()
    with TestClient(create_app()) as api:
        job = wait_job(api, submit(api, url), timeout=120)
        novel = api.get(f"/novels/{job['novel_id']}").json() if job["novel_id"] else None
    return job, novel, worker


# --- Scribble Hub ------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["pg_db", "sqlite_db"])
def test_a_scribble_hub_series_with_more_chapters_than_its_page_shows(
    database: str,
    request: pytest.FixtureRequest,
    fixture_sites: dict[str, FixtureSite],
    start_worker: Any,
) -> None:
    site = fixture_sites["scribblehub"]
    fiction = scribblehub.fiction(scribblehub.NORMAL)
    assert fiction is not None and len(fiction.chapters) > scribblehub.PER_PAGE
    job, novel, worker = _ingest(request, database, start_worker, site.url(fiction.path()))
    assert job["status"] == "done", (job, worker.log())
    assert [e["status"] for e in job["history"]] == FULL_RUN and job["warnings"] == []
    assert novel["site"] == "scribblehub" and novel["site_novel_id"] == str(fiction.fiction_id)
    assert novel["url"] == site.url(fiction.path())
    assert (novel["title"], novel["author"]) == (fiction.title, fiction.author)
    assert novel["description"] == fiction.description_html
    assert novel["tags"] == [*fiction.genres, *fiction.tags]
    assert novel["tag_groups"] == {"genre": list(fiction.genres), "tag": list(fiction.tags)}
    assert novel["warnings"] == list(fiction.warnings)
    assert novel["status"] == fiction.status
    assert novel["rating"] == pytest.approx(fiction.expected_rating)
    assert novel["chapter_count"] == len(fiction.chapters)
    assert novel["cover_url"] == fiction.cover
    assert novel["word_count"] is None  # the series page states none
    assert (novel["language"], novel["content_rating"], novel["notes_html"]) == (None, None, None)
    assert novel["chapters_planned"] is None and novel["volumes"] == []
    stored_novel, chapters = _stored(job["novel_id"])
    assert stored_novel.site_updated_at == fiction.updated_at
    dates = [c.expected_date for c in fiction.chapters if c.expected_date]
    assert stored_novel.published_at == min(dates)
    for stored, expected in zip(chapters, fiction.chapters, strict=True):
        assert (stored.position, stored.site_chapter_id) == (
            expected.position,
            str(expected.chapter_id),
        )
        assert (stored.title, stored.published_at) == (expected.title, expected.expected_date)
        assert stored.content_html == expected.story_html
        assert stored.author_notes_html == expected.notes_html  # notes apart, news dropped
        assert stored.word_count == _words(expected.story_html)
        assert stored.url == site.url(fiction.chapter_path(expected))
        assert (stored.volume, stored.locked) == (None, False)
    # the whole table of contents came from the POST; each chapter page was fetched once
    posts = site.requests("/wp-admin/admin-ajax.php")
    assert len(posts) == 1 and posts[0].status == 200
    for expected in fiction.chapters:
        assert [r.status for r in site.requests(fiction.chapter_path(expected))] == [200]


# --- Archive of Our Own ------------------------------------------------------------------


def _check_work(novel: dict[str, Any], chapters: list[Any], work: Any, site: FixtureSite) -> None:
    assert novel["site"] == "ao3" and novel["url"] == site.url(f"/works/{work.work_id}")
    assert (novel["title"], novel["author"]) == (work.title, work.author)
    assert novel["description"] == work.summary_html
    assert novel["content_rating"] == work.rating and novel["rating"] is None
    assert novel["warnings"] == list(work.warnings)
    assert novel["tags"] == list(work.tags)
    assert novel["tag_groups"] == {kind: list(names) for kind, names in work.tag_groups}
    assert novel["language"] == work.language[1]
    assert novel["status"] == work.status and novel["chapters_planned"] == work.planned
    assert novel["word_count"] == work.word_count
    assert novel["notes_html"] == work.expected_notes_html
    assert novel["chapter_count"] == len(work.chapters)
    assert datetime.fromisoformat(novel["published_at"]) == work.published_at
    updated = novel["site_updated_at"]
    assert (datetime.fromisoformat(updated) if updated else None) == work.updated_at
    assert novel["cover_url"] is None and novel["volumes"] == []
    for stored, expected in zip(chapters, work.chapters, strict=True):
        assert stored.title == expected.display_title
        assert stored.content_html == expected.body_html  # the text alone: notes apart
        assert stored.url == site.url(f"/works/{work.work_id}/chapters/{expected.chapter_id}")
        assert (stored.volume, stored.locked) == (None, False)
        assert (stored.position, stored.site_chapter_id) == (
            expected.position,
            str(expected.chapter_id),
        )
        assert stored.published_at == expected.published_at
        assert stored.author_notes_html == expected.author_notes_html
        assert stored.word_count == _words(expected.body_html)


def test_an_ao3_work_in_chapters(
    pg_db: str,
    request: pytest.FixtureRequest,
    fixture_sites: dict[str, FixtureSite],
    start_worker: Any,
) -> None:
    site = fixture_sites["ao3"]
    work = ao3.work(ao3.NORMAL)
    assert work is not None
    job, novel, worker = _ingest(
        request,
        "pg_db",
        start_worker,
        site.url(f"/works/{work.work_id}/chapters/{work.chapters[1].chapter_id}"),
    )
    assert job["status"] == "done", (job, worker.log())
    assert [e["status"] for e in job["history"]] == FULL_RUN and job["warnings"] == []
    _, chapters = _stored(job["novel_id"])
    _check_work(novel, chapters, work, site)
    # the work page, its index, then the whole work in one page: no page per chapter
    assert len(site.requests(f"/works/{work.work_id}/navigate")) == 1
    assert len(site.requests(f"/works/{work.work_id}/chapters/{work.chapters[2].chapter_id}")) == 0


def test_the_adult_content_notice_is_passed(
    pg_db: str,
    request: pytest.FixtureRequest,
    fixture_sites: dict[str, FixtureSite],
    start_worker: Any,
) -> None:
    site = fixture_sites["ao3"]
    work = ao3.work(ao3.EXPLICIT)
    assert work is not None and work.access == "adult"
    job, novel, worker = _ingest(request, "pg_db", start_worker, site.url(f"/works/{work.work_id}"))
    assert job["status"] == "done", (job, worker.log())
    _, chapters = _stored(job["novel_id"])
    _check_work(novel, chapters, work, site)


def test_a_work_for_members_only_ends_saying_it_needs_a_login(
    pg_db: str,
    request: pytest.FixtureRequest,
    fixture_sites: dict[str, FixtureSite],
    start_worker: Any,
) -> None:
    site = fixture_sites["ao3"]
    job, novel, worker = _ingest(
        request, "pg_db", start_worker, site.url(f"/works/{ao3.RESTRICTED}")
    )
    assert job["status"] == "error", worker.log()
    assert job["attempts"] == 1  # no retry logs anyone in
    message = job["error_message"]
    assert "restricted" in message and "logged-in" in message and str(ao3.RESTRICTED) in message
    assert novel is None


def test_an_error_page_served_with_200_is_retried(
    pg_db: str,
    request: pytest.FixtureRequest,
    fixture_sites: dict[str, FixtureSite],
    start_worker: Any,
) -> None:
    site = fixture_sites["ao3"]
    job, novel, worker = _ingest(request, "pg_db", start_worker, site.url(f"/works/{ao3.FLAKY}"))
    assert job["status"] == "done", (job, worker.log())
    assert job["attempts"] == 3  # two error pages, two retries of the job
    assert "Error 503" in job["last_error"]
    work = ao3.work(ao3.FLAKY)
    assert work is not None and novel["chapter_count"] == len(work.chapters)


def test_a_site_that_keeps_serving_its_error_page_gives_up(
    pg_db: str,
    request: pytest.FixtureRequest,
    fixture_sites: dict[str, FixtureSite],
    start_worker: Any,
) -> None:
    site = fixture_sites["ao3"]
    job, _, worker = _ingest(request, "pg_db", start_worker, site.url(f"/works/{ao3.DOWN}"))
    assert job["status"] == "error", worker.log()
    assert job["error_message"].startswith("gave up after 3 attempts: ")
    assert "Error 503" in job["error_message"]
