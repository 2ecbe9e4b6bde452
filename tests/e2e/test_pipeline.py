"""API -> Redis -> forking worker -> Scrapy crawl of the fixture site -> rows in the database."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

from crawler.sites.fields import WORD
from db import get_engine, session_scope
from models import Chapter, JobEvent, Novel
from models.base import utcnow
from tests.fixture_site import content
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import TERMINAL, counts, history, submit, wait_job
from tests.utils.services import ROOT

FULL_RUN = ["queued", "crawling", "parsing", "saving", "done"]


def _fiction_url(site: FixtureSite, fiction_id: int) -> str:
    fiction = content.fiction(fiction_id)
    slug = fiction.slug if fiction else "unknown"
    return site.url(f"/fiction/{fiction_id}/{slug}")


def _check_novel_against_fixture(novel: Novel, fiction: Any, site: FixtureSite) -> None:
    assert novel.site == "royalroad"
    assert novel.site_novel_id == str(fiction.fiction_id)
    assert novel.url == site.url(f"/fiction/{fiction.fiction_id}/{fiction.slug}")
    assert novel.title == fiction.title
    assert novel.author == fiction.author
    assert novel.tags == list(fiction.tags)
    assert novel.warnings == list(fiction.warnings)
    assert novel.status == fiction.status
    assert novel.rating == pytest.approx(fiction.rating)
    assert novel.word_count == fiction.word_count  # the site's own figure
    assert novel.volumes == _expected_volumes(fiction)
    assert novel.published_at == min(c.published_at for c in fiction.chapters)
    assert novel.cover_url and novel.cover_url.startswith("http")
    assert novel.description and fiction.description_html.strip()[:20] in novel.description


def _check_chapters_against_fixture(chapters: list[Chapter], fiction: Any) -> None:
    assert len(chapters) == len(fiction.chapters)
    for stored, expected in zip(chapters, fiction.chapters, strict=True):
        assert stored.position == expected.position
        assert stored.site_chapter_id == str(expected.chapter_id)
        assert stored.title == expected.title
        assert stored.volume == expected.volume_title
        assert stored.published_at == expected.published_at
        assert stored.url.endswith(f"/chapter/{expected.chapter_id}/{expected.slug}")
        for paragraph in expected.paragraphs:
            assert paragraph in stored.content_html
        assert expected.hidden_text not in stored.content_html
        for note in (expected.notes_before, expected.notes_after):
            if note:
                assert note in (stored.author_notes_html or "")
                assert note not in stored.content_html
        if not (expected.notes_before or expected.notes_after):
            assert stored.author_notes_html is None
        assert stored.word_count == _story_words(expected)
        assert stored.content_hash == _sha256(stored.content_html)


def _story_words(chapter: Any) -> int:
    """Words of the story the fixture generated (no hidden line, no note), counted as the
    adapter defines a word."""
    return len(WORD.findall(" ".join(chapter.paragraphs)))


def _sha256(html: str) -> str:
    return hashlib.sha256(html.encode("utf-8")).hexdigest()


def _expected_volumes(fiction: Any) -> list[dict[str, Any]]:
    return [
        {"site_volume_id": str(volume_id), "title": title, "order": order}
        for volume_id, title, order in fiction.volumes
    ]


def _stored(novel_id: int) -> tuple[Novel, list[Chapter]]:
    with session_scope() as session:
        novel = session.get(Novel, novel_id)
        assert novel is not None
        stmt = select(Chapter).where(Chapter.novel_id == novel_id).order_by(Chapter.position)
        return novel, list(session.execute(stmt).scalars())


@pytest.mark.parametrize("database", ["pg_db", "sqlite_db"])
def test_fiction_is_ingested_end_to_end(
    database: str,
    request: pytest.FixtureRequest,
    fixture_site: FixtureSite,
    start_worker: Any,
) -> None:
    request.getfixturevalue(database)
    from main import create_app

    worker = start_worker()
    fiction = content.fiction(1001)
    with TestClient(create_app()) as api:
        job_id = submit(api, _fiction_url(fixture_site, 1001))
        job = wait_job(api, job_id, timeout=90)
        assert job["status"] == "done", (job, worker.log())
        assert job["error_message"] is None
        assert job["attempts"] == 1
        assert job["progress"] == {
            "chapters_found": 48,
            "chapters_fetched": 48,
            "chapters_saved": 48,
            "chapters_locked": 0,
        }
        assert job["warnings"] == []
        assert [e["status"] for e in job["history"]] == FULL_RUN
        novel, chapters = _stored(job["novel_id"])
        _check_novel_against_fixture(novel, fiction, fixture_site)
        _check_chapters_against_fixture(chapters, fiction)
        _check_api_views(api, job["novel_id"], fiction)
    assert fixture_site.hits(f"/fiction/1001/{fiction.slug}/chapter/") == 48  # each page once


def _check_api_views(api: TestClient, novel_id: int, fiction: Any) -> None:
    novel = api.get(f"/novels/{novel_id}").json()
    assert novel["chapter_count"] == len(fiction.chapters)
    assert novel["title"] == fiction.title
    assert novel["volumes"] == _expected_volumes(fiction)
    assert novel["warnings"] == list(fiction.warnings)
    assert novel["tags"] == list(fiction.tags)
    assert novel["status"] == fiction.status
    assert novel["rating"] == pytest.approx(fiction.rating)
    assert novel["word_count"] == fiction.word_count
    earliest = min(c.published_at for c in fiction.chapters)
    assert datetime.fromisoformat(novel["published_at"]) == earliest
    listing = api.get(f"/novels/{novel_id}/chapters", params={"limit": 200}).json()
    assert [c["position"] for c in listing["items"]] == list(range(1, 49))
    assert listing["items"][0]["title"] == fiction.chapters[0].title
    assert [c["word_count"] for c in listing["items"]] == [
        _story_words(c) for c in fiction.chapters
    ]
    chapter = api.get(f"/novels/{novel_id}/chapters/3").json()
    assert chapter["title"] == fiction.chapters[2].title
    assert fiction.chapters[2].paragraphs[0] in chapter["content_html"]
    assert chapter["content_hash"] == _sha256(chapter["content_html"])
    assert api.get("/novels").json()["total"] == 1


def test_each_status_is_observed_in_order(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    """Queued, crawling, parsing, saving and done are each seen live through the API.

    Nothing depends on timing. The worker starts only once QUEUED has been seen. Every
    later move inserts one `job_events` row, with ids from a sequence nobody else uses
    here: the moves to parsing, saving and done insert the queued event's id + 2, + 3 and
    + 4. The test inserts those ids first, each in a transaction of its own left open, and
    PostgreSQL makes the worker's insert of the same key wait on it: the move cannot
    commit, the status stays put. Once the test has seen a status it rolls back the row
    that holds the next move; the worker's insert then goes through unchanged.
    """
    job_id = submit(api, _fiction_url(fixture_site, 1002))
    seen = [api.get(f"/jobs/{job_id}").json()["status"]]  # no worker yet: it must be queued
    queued_event = _queued_event_id(job_id)
    holds: dict[str, _EventHold] = {}  # status seen -> the row holding the move after it
    try:
        for n, status in enumerate(["crawling", "parsing", "saving"], start=2):
            holds[status] = _EventHold(job_id, queued_event + n)
        worker = start_worker()
        deadline = time.monotonic() + 60  # only so a broken run fails instead of hanging
        while seen[-1] not in TERMINAL and time.monotonic() < deadline:
            status = api.get(f"/jobs/{job_id}").json()["status"]
            if status != seen[-1]:
                seen.append(status)
                if status in holds:
                    holds[status].release()  # seen: let the next move commit
            time.sleep(0.01)
    finally:
        for hold in holds.values():
            hold.release()
    assert seen == FULL_RUN, (seen, worker.log())
    assert _event_ids(job_id) == list(range(queued_event, queued_event + 5))  # the held ids
    assert history(job_id) == FULL_RUN
    assert counts() == (1, len(content.fiction(1002).chapters), 0)


class _EventHold:
    """An uncommitted `job_events` row with a chosen id: an insert of that id waits for it."""

    def __init__(self, job_id: int, event_id: int) -> None:
        self.connection = get_engine().connect()
        row = {"id": event_id, "job_id": job_id, "status": "test-hold", "at": utcnow()}
        self.connection.execute(insert(JobEvent).values(**row))

    def release(self) -> None:
        if not self.connection.closed:
            self.connection.rollback()
            self.connection.close()


def _event_ids(job_id: int) -> list[int]:
    with session_scope() as session:
        stmt = select(JobEvent.id).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        return list(session.execute(stmt).scalars())


def _queued_event_id(job_id: int) -> int:
    """The job's one event so far, checked to be the sequence's last: the worker's events
    take the ids that follow it."""
    ids = _event_ids(job_id)
    with session_scope() as session:
        last = session.execute(text("SELECT last_value FROM job_events_id_seq")).scalar_one()
    assert len(ids) == 1 and ids[0] == last, (ids, last)
    return ids[0]


@pytest.mark.parametrize(
    ("fiction_id", "needle"),
    [
        (2001, "not a Royal Road fiction page"),
        (9999, "page not found (HTTP 404)"),
        (2009, "chapter"),
        (2007, "redirect"),
    ],
)
def test_pages_that_fail_end_the_job_in_error(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any, fiction_id: int, needle: str
) -> None:
    worker = start_worker()
    job = wait_job(api, submit(api, _fiction_url(fixture_site, fiction_id)), timeout=60)
    assert job["status"] == "error", worker.log()
    assert needle in job["error_message"]
    assert job["attempts"] == 1  # permanent: not retried
    assert counts() == (0, 0, 0)


def test_a_site_that_is_down_is_retried_then_errors(
    api: TestClient, dead_site_url: str, start_worker: Any
) -> None:
    worker = start_worker()
    job = wait_job(api, submit(api, dead_site_url), timeout=90)
    assert job["status"] == "error", worker.log()
    assert job["attempts"] == 3
    assert "gave up after 3 attempts" in job["error_message"]
    assert "could not fetch" in job["error_message"]
    retries = [e for e in job["history"] if e["status"] == "queued"]
    assert len(retries) == 3  # the first, plus one per retry


def test_two_workers_many_jobs_no_duplicates(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    start_worker()
    ids = [5000 + n for n in range(10)]
    job_ids = [submit(api, _fiction_url(fixture_site, i)) for i in ids]
    jobs = [wait_job(api, j, timeout=120) for j in job_ids]
    assert [j["status"] for j in jobs] == ["done"] * len(ids)
    expected = sum(len(content.fiction(i).chapters) for i in ids)
    # the same fictions again: rows are updated in place, never doubled
    again = [submit(api, _fiction_url(fixture_site, i)) for i in ids[:4]]
    assert all(wait_job(api, j, timeout=120)["status"] == "done" for j in again)
    assert counts() == (len(ids), expected, 0)


@pytest.mark.parametrize("extra", [[], ["--worker-class", "worker.IngestionWorker"]])
def test_plain_rq_worker_command_runs_jobs(
    api: TestClient, fixture_site: FixtureSite, extra: list[str]
) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    job_id = submit(api, _fiction_url(fixture_site, 1002))
    rq = str(Path(sys.executable).with_name("rq"))
    argv = [rq, "worker", os.environ["QUEUE_NAME"], "--burst", "--url", os.environ["REDIS_URL"]]
    done = subprocess.run(
        argv + extra, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "done", done.stderr
    assert counts() == (1, 5, 0)
