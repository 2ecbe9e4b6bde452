"""Pages as the site really varies them: unread fields, locked chapters, one chapter.

Each through the API, RQ, a real worker and the database: the job ends DONE, a field the
page does not state is null with a warning on the job, and a chapter the site lists but
does not serve is stored locked without ever being requested.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from db import session_scope
from models import Chapter
from tests.e2e.test_pipeline import _fiction_url, _stored
from tests.fixture_site import content
from tests.fixture_site.pages import chapter_url
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import submit, wait_job


def _ingest(request: pytest.FixtureRequest, database: str, start_worker: Any, url: str) -> Any:
    request.getfixturevalue(database)
    from main import create_app

    worker = start_worker()
    with TestClient(create_app()) as api:
        job = wait_job(api, submit(api, url), timeout=90)
        assert job["status"] == "done", (job, worker.log())
        novel = api.get(f"/novels/{job['novel_id']}").json()
        listing = api.get(f"/novels/{job['novel_id']}/chapters").json()["items"]
        last = api.get(f"/novels/{job['novel_id']}/chapters/{len(listing)}").json()
    return job, novel, listing, last


@pytest.mark.parametrize("database", ["pg_db", "sqlite_db"])
def test_fields_the_page_does_not_state_are_null_with_warnings(
    database: str, request: pytest.FixtureRequest, fixture_site: FixtureSite, start_worker: Any
) -> None:
    job, novel, listing, _ = _ingest(
        request, database, start_worker, _fiction_url(fixture_site, 1005)
    )
    assert (novel["status"], novel["rating"], novel["word_count"]) == (None, None, None)
    assert job["warnings"] == [
        "status not read: no status label (COMPLETED, ONGOING, HIATUS, ...) on the page;"
        " stored as null",
        "word_count not read: the Story Length popover states no single word count"
        " ('Roughly 9 pages as a paperback; we could not count its words.'); stored as null",
        "rating not read: no books:rating:value or JSON-LD rating on the page; stored as null",
    ]
    assert job["attempts"] == 1 and len(listing) == 3
    fiction = content.fiction(1005)
    assert fiction is not None and novel["title"] == fiction.title  # the rest was read


@pytest.mark.parametrize("database", ["pg_db", "sqlite_db"])
def test_locked_chapters_are_stored_locked_and_never_fetched(
    database: str, request: pytest.FixtureRequest, fixture_site: FixtureSite, start_worker: Any
) -> None:
    fiction = content.fiction(1006)
    assert fiction is not None
    job, novel, listing, last = _ingest(
        request, database, start_worker, _fiction_url(fixture_site, 1006)
    )
    assert job["progress"] == {
        "chapters_found": 10,
        "chapters_fetched": 8,
        "chapters_saved": 10,
        "chapters_locked": 2,
    }
    assert job["warnings"] == [
        "2 chapters are locked on the site (premium, or not yet published): stored with their"
        " title and date, without text"
    ]
    assert job["history"][-1]["message"] == (
        "10 chapters: 10 new, 0 updated, 0 removed, 0 unchanged; 2 of them locked"
    )
    assert novel["chapter_count"] == 10
    assert [c["locked"] for c in listing] == [False] * 8 + [True, True]
    assert [c["title"] for c in listing] == [c.title for c in fiction.chapters]
    assert (last["content_html"], last["word_count"], last["content_hash"]) == (None, None, None)
    for chapter in fiction.chapters:
        requested = fixture_site.hits(chapter_url(fiction, chapter))
        assert requested == (0 if chapter.locked else 1), chapter
    novel_id = job["novel_id"]
    _, stored = _stored(novel_id)
    assert all(c.content_html for c in stored[:8])


def test_one_chapter_fiction_with_an_unseparated_word_count(
    pg_db: str, request: pytest.FixtureRequest, fixture_site: FixtureSite, start_worker: Any
) -> None:
    fiction = content.fiction(1007)
    assert fiction is not None
    job, novel, listing, last = _ingest(
        request, "pg_db", start_worker, _fiction_url(fixture_site, 1007)
    )
    assert novel["word_count"] == fiction.word_count and job["warnings"] == []
    assert len(listing) == 1 and listing[0]["volume"] is None and novel["volumes"] == []
    with session_scope() as session:
        assert session.query(Chapter).count() == 1
    assert fiction.chapters[0].paragraphs[-1] in last["content_html"]
