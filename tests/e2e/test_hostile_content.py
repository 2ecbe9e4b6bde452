"""A fiction whose description, chapter text and author notes are full of hostile markup
(tests/fixture_site/content.py HOSTILE_MARKUP, fiction 2108) is stored and served clean:
API -> RQ worker -> Scrapy -> sanitizer -> PostgreSQL -> API."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from db import session_scope
from models import Chapter, Novel
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import submit, wait_job

HOSTILE_FICTION = 2108
# What no stored or served HTML may hold, whatever its case.
FORBIDDEN = re.compile(
    r"<script|<iframe|<svg|<form|<input|<base|<style|<object|<embed|\son\w+\s*="
    r"|=\s*[\"']?\s*(?:javascript|data):|position:\s*fixed",
    re.IGNORECASE,
)


def _assert_clean(html: str | None, *, keeps: tuple[str, ...]) -> None:
    assert html is not None
    assert FORBIDDEN.search(html) is None, html
    for words in keeps:  # the words a reader reads survive the cleaning
        assert words in html, html


def test_hostile_markup_is_stored_and_served_clean(
    api: TestClient, pg_db: str, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker()
    job = wait_job(api, submit(api, fixture_site.url(f"/fiction/{HOSTILE_FICTION}")), timeout=60)
    assert job["status"] == "done", (job, worker.log())
    assert any("cover" in warning for warning in job["warnings"]), job["warnings"]

    with session_scope() as session:
        novel = session.scalars(select(Novel)).one()
        chapters = session.scalars(
            select(Chapter).where(Chapter.novel_id == novel.id).order_by(Chapter.position)
        ).all()
        assert novel.cover_url is None  # javascript:alert(1) is no cover
        _assert_clean(novel.description, keeps=())
        assert len(chapters) == 4
        for chapter in chapters:
            _assert_clean(chapter.content_html, keeps=("Before the traps.", "After the traps."))
            _assert_clean(chapter.author_notes_html, keeps=("Thanks for reading!",))
            assert chapter.url.startswith("http://")
        novel_id = novel.id

    served = api.get(f"/novels/{novel_id}")
    assert served.status_code == 200
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.json()["cover_url"] is None
    _assert_clean(served.json()["description"], keeps=())
    chapter = api.get(f"/novels/{novel_id}/chapters/1")
    assert chapter.status_code == 200
    assert chapter.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in chapter.headers["content-security-policy"]
    _assert_clean(chapter.json()["content_html"], keeps=("Before the traps.", "After the traps."))
    _assert_clean(chapter.json()["author_notes_html"], keeps=("Thanks for reading!",))
