"""Write novels and chapters exactly once: upserts on their natural keys.

Running the same ingestion twice, or two at once, leaves one novel row and one row per
chapter. Chapters the site no longer lists are removed, so positions stay unique.
Every value is checked against its column before it is sent (a number in range, a string
that fits, a required value present): a record the database would refuse ends the job
with a message naming the field, never with the database's error and the statement. An
optional text that does not fit its column is stored as null, with a note for the job.
Text is stored without NUL characters or lone surrogates, which PostgreSQL refuses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Float, Integer, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crawler.items import ChapterRecord, NovelRecord
from crawler.sites.fields import INT_MAX
from errors import StoreError, clean_text
from models import Chapter, Novel
from models.base import utcnow

BATCH = 500


def _insert(session: Session, model: type) -> Any:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def check_values(
    table: Table, values: dict[str, Any], *, what: str, notes: list[str] | None = None
) -> None:
    """Raise StoreError if a value cannot go into its column as it is.

    With `notes`, an optional text too long for its column is set to None instead, and a
    line saying so is added to `notes`.
    """
    for name, value in values.items():
        column = table.columns.get(name)
        if column is None:
            continue
        problem = _problem(column.type, value, nullable=column.nullable)
        if problem is None:
            continue
        if notes is not None and column.nullable and isinstance(value, str):
            values[name] = None
            notes.append(f"{what}: {name} {problem}; stored as null")
            continue
        raise StoreError(f"could not store {what}: {name} {problem}")


def _problem(kind: Any, value: Any, *, nullable: bool | None) -> str | None:
    if value is None:
        return None if nullable else "missing"
    if (
        isinstance(kind, Integer)
        and isinstance(value, int)
        and not -INT_MAX - 1 <= value <= INT_MAX
    ):
        return f"out of range ({value})"
    if isinstance(kind, Float) and isinstance(value, float) and not math.isfinite(value):
        return f"not a number ({value})"
    length = getattr(kind, "length", None) if isinstance(kind, String) else None
    if length and isinstance(value, str) and len(value) > length:
        return f"too long ({len(value)} characters, at most {length})"
    return None


def save_novel(session: Session, novel: NovelRecord, *, notes: list[str] | None = None) -> int:
    values = _novel_values(novel)
    check_values(Novel.__table__, values, what="novel", notes=notes)  # type: ignore[arg-type]
    stmt = _insert(session, Novel).values(**values, created_at=values["updated_at"])
    stmt = stmt.on_conflict_do_update(index_elements=["site", "site_novel_id"], set_=values)
    session.execute(stmt)
    found = select(Novel.id).where(Novel.site == novel.site, Novel.site_novel_id == novel.site_id)
    return session.execute(found).scalar_one()


def _novel_values(novel: NovelRecord) -> dict[str, Any]:
    return _clean(
        {
            "site": novel.site,
            "site_novel_id": novel.site_id,
            "url": novel.url,
            "title": novel.title,
            "author": novel.author,
            "description": novel.description,
            "cover_url": novel.cover_url,
            "tags": list(novel.tags),
            "warnings": list(novel.content_warnings),
            "status": novel.status,
            "word_count": novel.word_count,
            "rating": novel.rating,
            "volumes": [asdict(v) for v in novel.volumes],
            "published_at": novel.published_at,
            "tag_groups": {kind: list(names) for kind, names in novel.tag_groups},
            "language": novel.language,
            "content_rating": novel.content_rating,
            "chapters_planned": novel.chapters_planned,
            "site_updated_at": novel.site_updated_at,
            "notes_html": novel.notes_html,
            "updated_at": utcnow(),
        }
    )


def save_chapters(
    session: Session,
    novel_id: int,
    chapters: Sequence[ChapterRecord],
    *,
    notes: list[str] | None = None,
) -> int:
    listed = {c.site_chapter_id for c in chapters}
    if len(listed) != len(chapters):
        raise StoreError("could not store chapters: a chapter id is listed twice")
    now = utcnow()
    for start in range(0, len(chapters), BATCH):
        rows = [_chapter_values(novel_id, c, now) for c in chapters[start : start + BATCH]]
        for row in rows:
            what = f"chapter {row['site_chapter_id']}"
            check_values(Chapter.__table__, row, what=what, notes=notes)  # type: ignore[arg-type]
        _upsert_chapters(session, [r for r in rows if not r["locked"]], keep=KEYS)
        _upsert_chapters(session, [r for r in rows if r["locked"]], keep=KEYS | TEXT)
    _drop_unlisted(session, novel_id, listed)
    return len(chapters)


KEYS = frozenset({"created_at", "novel_id"})
# A chapter the site has locked since we stored it keeps the text we have: the listing
# (title, position, date) and the lock are updated, the stored text is not wiped.
TEXT = frozenset({"content_html", "author_notes_html", "word_count", "content_hash"})


def _upsert_chapters(session: Session, rows: list[dict[str, Any]], *, keep: frozenset[str]) -> None:
    if not rows:
        return
    stmt = _insert(session, Chapter).values(rows)
    updated = {k: stmt.excluded[k] for k in rows[0] if k not in keep}
    session.execute(
        stmt.on_conflict_do_update(index_elements=["novel_id", "site_chapter_id"], set_=updated)
    )


def _chapter_values(novel_id: int, chapter: ChapterRecord, now: Any) -> dict[str, Any]:
    values = _clean(asdict(chapter))
    return {**values, "novel_id": novel_id, "created_at": now, "updated_at": now}


def _clean(value: Any) -> Any:
    """Every string in `value` as the databases store it (errors.clean_text)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


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
