"""Write novels and chapters exactly once: upserts on their natural keys.

Running the same ingestion twice, or two at once, leaves one novel row and one row per
chapter. Chapters the site no longer lists are removed, so positions stay unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crawler.items import ChapterRecord, NovelRecord
from models import Chapter, Novel
from models.base import utcnow

BATCH = 500


def _insert(session: Session, model: type) -> Any:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def save_novel(session: Session, novel: NovelRecord) -> int:
    values = _novel_values(novel)
    stmt = _insert(session, Novel).values(**values, created_at=values["updated_at"])
    stmt = stmt.on_conflict_do_update(index_elements=["site", "site_novel_id"], set_=values)
    session.execute(stmt)
    found = select(Novel.id).where(Novel.site == novel.site, Novel.site_novel_id == novel.site_id)
    return session.execute(found).scalar_one()


def _novel_values(novel: NovelRecord) -> dict[str, Any]:
    return {
        "site": novel.site,
        "site_novel_id": novel.site_id,
        "url": novel.url,
        "title": novel.title,
        "author": novel.author,
        "description": novel.description,
        "cover_url": novel.cover_url,
        "tags": list(novel.tags),
        "warnings": list(novel.warnings),
        "status": novel.status,
        "word_count": novel.word_count,
        "rating": novel.rating,
        "volumes": [asdict(v) for v in novel.volumes],
        "published_at": novel.published_at,
        "updated_at": utcnow(),
    }


def save_chapters(session: Session, novel_id: int, chapters: Sequence[ChapterRecord]) -> int:
    now = utcnow()
    for start in range(0, len(chapters), BATCH):
        rows = [_chapter_values(novel_id, c, now) for c in chapters[start : start + BATCH]]
        stmt = _insert(session, Chapter).values(rows)
        updated = {k: stmt.excluded[k] for k in rows[0] if k not in ("created_at", "novel_id")}
        session.execute(
            stmt.on_conflict_do_update(index_elements=["novel_id", "site_chapter_id"], set_=updated)
        )
    _drop_unlisted(session, novel_id, {c.site_chapter_id for c in chapters})
    return len(chapters)


def _chapter_values(novel_id: int, chapter: ChapterRecord, now: Any) -> dict[str, Any]:
    values = asdict(chapter)
    return {**values, "novel_id": novel_id, "created_at": now, "updated_at": now}


def _drop_unlisted(session: Session, novel_id: int, listed: set[str]) -> None:
    stored = session.execute(
        select(Chapter.site_chapter_id).where(Chapter.novel_id == novel_id)
    ).scalars()
    gone = [cid for cid in stored if cid not in listed]
    for start in range(0, len(gone), BATCH):
        session.execute(
            delete(Chapter).where(
                Chapter.novel_id == novel_id,
                Chapter.site_chapter_id.in_(gone[start : start + BATCH]),
            )
        )
