"""Novel queries: list, one novel, its chapters (shared by API and CLI)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from errors import NotFoundError
from models import Chapter, Novel


def list_novels(session: Session, *, limit: int, offset: int) -> tuple[list[Novel], int]:
    total = session.execute(select(func.count(Novel.id))).scalar_one()
    rows = session.execute(select(Novel).order_by(Novel.id).limit(limit).offset(offset))
    return list(rows.scalars()), total


def get_novel(session: Session, novel_id: int) -> Novel:
    novel = session.get(Novel, novel_id)
    if novel is None:
        raise NotFoundError(f"novel {novel_id} not found")
    return novel


def chapter_count(session: Session, novel_id: int, *, include_removed: bool = False) -> int:
    stmt = select(func.count(Chapter.id)).where(Chapter.novel_id == novel_id)
    if not include_removed:
        stmt = stmt.where(Chapter.removed_at.is_(None))
    return session.execute(stmt).scalar_one()


def list_chapters(
    session: Session, novel_id: int, *, limit: int, offset: int, include_removed: bool = False
) -> tuple[list[Chapter], int]:
    """Current chapters in reading order; with `include_removed`, the removed ones too
    (each at the position it last had, after the current one there)."""
    get_novel(session, novel_id)
    query = select(Chapter).where(Chapter.novel_id == novel_id)
    if not include_removed:
        query = query.where(Chapter.removed_at.is_(None))
    order = (Chapter.position, Chapter.removed_at.is_not(None), Chapter.id)
    rows = session.execute(query.order_by(*order).limit(limit).offset(offset))
    total = chapter_count(session, novel_id, include_removed=include_removed)
    return list(rows.scalars()), total


def get_chapter(session: Session, novel_id: int, position: int) -> Chapter:
    """The current chapter at this position."""
    get_novel(session, novel_id)
    stmt = select(Chapter).where(
        Chapter.novel_id == novel_id, Chapter.position == position, Chapter.removed_at.is_(None)
    )
    chapter = session.execute(stmt.limit(1)).scalar_one_or_none()
    if chapter is None:
        raise NotFoundError(f"novel {novel_id} has no chapter at position {position}")
    return chapter
