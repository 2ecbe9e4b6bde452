"""Upserts on natural keys: saving the same novel twice, or at once, never doubles rows."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from changes import Changes
from crawler.items import ChapterRecord, ChapterRef, NovelRecord, VolumeRecord
from db import session_scope
from models import Chapter
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
    return _save_counting(novel, chapters)[0]


def _save_counting(novel: NovelRecord, chapters: list[ChapterRecord]) -> tuple[int, Changes]:
    with session_scope() as session:
        novel_id = save_novel(session, novel)
        changes = save_chapters(session, novel_id, chapters)
    return novel_id, changes


def _removed() -> dict[str, bool]:
    with session_scope() as session:
        rows = session.execute(select(Chapter.site_chapter_id, Chapter.removed_at)).all()
    return {cid: removed is not None for cid, removed in rows}


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


def test_chapters_the_site_dropped_are_marked_removed_never_deleted() -> None:
    novel = _novel(5)
    assert _save_counting(novel, _records(novel))[1].as_dict() == {
        "new": 5, "updated": 0, "removed": 0, "unchanged": 0,
    }  # fmt: skip
    shorter = replace(novel, chapters=novel.chapters[:2])
    _, changes = _save_counting(shorter, _records(shorter))
    assert changes.as_dict() == {"new": 0, "updated": 0, "removed": 3, "unchanged": 2}
    assert counts() == (1, 5, 0)
    assert _removed() == {"7001": False, "7002": False, "7003": True, "7004": True, "7005": True}
    # listed again: current again, and counted as new
    _, back = _save_counting(novel, _records(novel))
    assert back.as_dict() == {"new": 3, "updated": 0, "removed": 0, "unchanged": 2}
    assert not any(_removed().values())


def test_only_changes_are_counted_and_a_new_position_alone_is_no_change() -> None:
    novel = _novel(4)
    _save(novel, _records(novel))
    first, *rest = novel.chapters
    retitled = replace(rest[0], title="Chapter 2, retitled")
    inserted = ChapterRef("6999", "https://x/ch/6999", 2, "An interlude", "Vol 1", WHEN)
    shifted = (
        first,
        inserted,
        *(replace(r, position=r.position + 1) for r in (retitled, *rest[1:])),
    )
    revised = replace(novel, chapters=shifted)
    texts = {r.site_chapter_id: r for r in _records(novel)}
    records = [
        replace(texts[ref.site_chapter_id], position=ref.position, title=ref.title)
        if ref.site_chapter_id in texts
        else _records(replace(novel, chapters=(ref,)))[0]
        for ref in shifted
    ]
    records[-1] = replace(records[-1], content_html="<p>edited</p>", content_hash="e" * 64)
    _, changes = _save_counting(revised, records)
    # new: the interlude; updated: the retitled one and the edited one; the third chapter
    # only moved from position 3 to 4
    assert changes.as_dict() == {"new": 1, "updated": 2, "removed": 0, "unchanged": 2}
    with session_scope() as session:
        order = session.execute(
            select(Chapter.site_chapter_id).order_by(Chapter.position)
        ).scalars()
        assert list(order) == ["7001", "6999", "7002", "7003", "7004"]


def test_concurrent_saves_of_one_novel_leave_one_copy() -> None:
    novel = _novel(300)
    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda _: _save(novel, _records(novel)), range(4)))
    assert len(ids) == 1
    assert counts() == (1, 300, 0)
