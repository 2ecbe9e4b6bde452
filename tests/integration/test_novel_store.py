"""Upserts on natural keys: saving the same novel twice, or at once, never doubles rows."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from crawler.items import ChapterRecord, ChapterRef, NovelRecord, VolumeRecord
from db import session_scope
from novel_store import save_chapters, save_novel
from tests.utils.jobs import counts

pytestmark = pytest.mark.usefixtures("pg_db")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _novel(chapters: int = 3, *, title: str = "Ünïcode — 物語") -> NovelRecord:
    refs = tuple(
        ChapterRef(str(7000 + n), f"https://x/ch/{7000 + n}", n, f"Chapter {n}", "Vol 1", WHEN)
        for n in range(1, chapters + 1)
    )
    return NovelRecord(
        site="royalroad",
        site_id="42",
        url="https://www.royalroad.com/fiction/42",
        title=title,
        author="A. Writer",
        description="<p>d</p>",
        cover_url=None,
        tags=("Fantasy",),
        status="ongoing",
        word_count=1000,
        rating=4.5,
        volumes=(VolumeRecord("1", "Vol 1", 1),),
        chapters=refs,
        published_at=WHEN,
    )


def _records(novel: NovelRecord, text: str = "story") -> list[ChapterRecord]:
    return [
        ChapterRecord(
            site_chapter_id=ref.site_chapter_id,
            url=ref.url,
            position=ref.position,
            title=ref.title,
            volume=ref.volume,
            published_at=ref.published_at,
            content_html=f"<p>{text} {ref.position}</p>",
            author_notes_html=None,
            word_count=2,
            content_hash=hashlib.sha256(f"<p>{text} {ref.position}</p>".encode()).hexdigest(),
        )
        for ref in novel.chapters
    ]


def _save(novel: NovelRecord, chapters: list[ChapterRecord]) -> int:
    with session_scope() as session:
        novel_id = save_novel(session, novel)
        save_chapters(session, novel_id, chapters)
    return novel_id


def test_saving_twice_updates_in_place() -> None:
    novel = _novel()
    first = _save(novel, _records(novel))
    second = _save(replace(novel, title="Renamed"), _records(novel, "edited"))
    assert first == second
    assert counts() == (1, 3, 0)
    with session_scope() as session:
        from models import Chapter, Novel

        stored = session.get(Novel, first)
        assert stored is not None and stored.title == "Renamed"
        texts = {c.content_html for c in session.query(Chapter).all()}
        assert texts == {"<p>edited 1</p>", "<p>edited 2</p>", "<p>edited 3</p>"}


def test_chapters_the_site_dropped_are_removed() -> None:
    novel = _novel(5)
    _save(novel, _records(novel))
    shorter = replace(novel, chapters=novel.chapters[:2])
    _save(shorter, _records(shorter))
    assert counts() == (1, 2, 0)


def test_concurrent_saves_of_one_novel_leave_one_copy() -> None:
    novel = _novel(300)
    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda _: _save(novel, _records(novel)), range(4)))
    assert len(ids) == 1
    assert counts() == (1, 300, 0)
