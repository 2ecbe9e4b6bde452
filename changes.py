"""What an update changes: which chapters to fetch, and what the store gains and loses.

A fiction already stored is read again as an update: the listing (fiction page, table of
contents) is fetched, then only the chapters the store lacks (by the site's chapter id),
lacks the text of, or whose listed date changed; `full` fetches every chapter, since an
author's edit does not show in a table of contents. Chapters gone from the listing are
marked removed, never deleted, unless so many would go that the listing is more likely
truncated than the fiction cut (UPDATE_REMOVAL_LIMIT): then the job ends in error and the
store keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.items import ChapterRecord, ChapterRef, NovelRecord
from errors import PermanentFailure
from models import Chapter, Novel


@dataclass(frozen=True)
class StoredChapter:
    """What the store holds of one chapter: enough to tell whether the site changed it."""

    site_chapter_id: str
    position: int
    title: str
    volume: str | None
    url: str
    published_at: datetime | None
    locked: bool
    content_hash: str | None
    removed: bool

    def listing_differs(self, ref: ChapterRef | ChapterRecord) -> bool:
        """The site lists it differently (title, volume, date, lock), position aside. An
        untitled entry says nothing of the title (its page gave the one stored)."""
        return (self.title if ref.title else "", self.volume, self.published_at, self.locked) != (
            ref.title,
            ref.volume,
            ref.published_at,
            ref.locked,
        )

    def row_differs(self, ref: ChapterRef | ChapterRecord) -> bool:
        """Anything of the listing row differs, position and URL included."""
        return (
            self.removed
            or self.listing_differs(ref)
            or (self.position, self.url) != (ref.position, ref.url)
        )


def stored_chapters(session: Session, site: str, site_novel_id: str) -> dict[str, StoredChapter]:
    """Every chapter row of the stored novel (removed ones too), by the site's id."""
    stmt = (
        select(
            Chapter.site_chapter_id,
            Chapter.position,
            Chapter.title,
            Chapter.volume,
            Chapter.url,
            Chapter.published_at,
            Chapter.locked,
            Chapter.content_hash,
            Chapter.removed_at,
        )
        .join(Novel, Novel.id == Chapter.novel_id)
        .where(Novel.site == site, Novel.site_novel_id == site_novel_id)
    )
    return {
        row.site_chapter_id: StoredChapter(
            site_chapter_id=row.site_chapter_id,
            position=row.position,
            title=row.title,
            volume=row.volume,
            url=row.url,
            published_at=row.published_at,
            locked=row.locked,
            content_hash=row.content_hash,
            removed=row.removed_at is not None,
        )
        for row in session.execute(stmt)
    }


def unlisted(stored: Mapping[str, StoredChapter], listed: set[str]) -> list[str]:
    """Ids of the current stored chapters (not removed already) that are not in `listed`."""
    return [cid for cid, c in stored.items() if not c.removed and cid not in listed]


@dataclass
class Changes:
    """What a run did to the stored novel, as the job reports it."""

    new: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def any(self) -> bool:
        return bool(self.new or self.updated or self.removed)

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True)
class UpdatePlan:
    """How one run treats the store: what it holds, and whether to refetch everything."""

    stored: Mapping[str, StoredChapter]
    full: bool = False
    removal_limit: float = 0.5

    def needs_fetch(self, ref: ChapterRef) -> bool:
        if ref.locked:
            return False  # the site does not serve it
        known = self.stored.get(ref.site_chapter_id)
        return (
            self.full
            or known is None
            or known.removed
            or known.content_hash is None  # stored locked, without text
            or known.published_at != ref.published_at
        )

    def to_fetch(self, novel: NovelRecord) -> NovelRecord:
        """The novel restricted to the chapters this run fetches; raises PermanentFailure
        when the listing would remove more of the stored chapters than the limit allows."""
        self.check_removals(novel)
        return replace(novel, chapters=tuple(c for c in novel.chapters if self.needs_fetch(c)))

    def gone(self, novel: NovelRecord) -> list[str]:
        """Ids of current stored chapters the listing no longer has."""
        return unlisted(self.stored, {c.site_chapter_id for c in novel.chapters})

    def check_removals(self, novel: NovelRecord) -> None:
        current = sum(not c.removed for c in self.stored.values())
        gone = len(self.gone(novel))
        if gone and gone > self.removal_limit * current:
            raise PermanentFailure(
                f"the site now lists {len(novel.chapters)} chapters of the {current} stored:"
                f" {gone} would be marked removed, more than UPDATE_REMOVAL_LIMIT"
                f" ({self.removal_limit:.0%}) allows; a truncated table of contents is more"
                " likely than a cut fiction, so nothing was changed (if the fiction was cut,"
                " refresh it with allow_removals)"
            )
