"""API -> Redis -> forking worker -> Scrapy crawl of the fixture site -> rows in the database."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from db import session_scope
from models import Chapter, Novel
from tests.fixture_site import content
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import counts, history, submit, wait_job
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
    assert novel.status == fiction.status
    assert novel.rating == pytest.approx(fiction.rating)
    assert novel.word_count == fiction.word_count
    assert [v["title"] for v in novel.volumes] == [v[1] for v in fiction.volumes]
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
        assert stored.word_count > 0
        assert len(stored.content_hash) == 64


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
        }
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
    listing = api.get(f"/novels/{novel_id}/chapters", params={"limit": 200}).json()
    assert [c["position"] for c in listing["items"]] == list(range(1, 49))
    assert listing["items"][0]["title"] == fiction.chapters[0].title
    chapter = api.get(f"/novels/{novel_id}/chapters/3").json()
    assert chapter["title"] == fiction.chapters[2].title
    assert fiction.chapters[2].paragraphs[0] in chapter["content_html"]
    assert api.get("/novels").json()["total"] == 1


def test_each_status_is_observed_in_order(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    fixture_site.delay = 0.4  # every page takes 0.4 s: the crawl can be watched
    job_id = submit(api, _fiction_url(fixture_site, 1002))
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in ("done", "error"):
            break
        time.sleep(0.01)
    assert seen[0] == "queued" and "crawling" in seen and seen[-1] == "done"
    assert seen == [s for s in FULL_RUN if s in seen], seen  # never out of order
    assert history(job_id) == FULL_RUN


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
