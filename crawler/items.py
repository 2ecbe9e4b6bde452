"""Records that adapters produce. Frozen dataclasses: a record never changes after parsing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FictionRef:
    """A normalized pointer to one fiction on one site."""

    site: str
    site_id: str
    url: str  # normalized: scheme://host[:port]/fiction/{site_id}


@dataclass(frozen=True)
class VolumeRecord:
    site_volume_id: str
    title: str
    order: int


@dataclass(frozen=True)
class ChapterRef:
    """One row of a fiction's table of contents, known before the chapter page is fetched."""

    site_chapter_id: str
    url: str  # absolute
    position: int  # 1-based reading order
    title: str
    volume: str | None = None  # volume title, None when the fiction has no volumes
    published_at: datetime | None = None  # timezone-aware UTC
    locked: bool = False  # listed but not served (premium, scheduled): never fetched


@dataclass(frozen=True)
class NovelRecord:
    site: str
    site_id: str
    url: str
    title: str
    author: str | None
    description: str | None  # HTML
    cover_url: str | None
    tags: tuple[str, ...]
    status: str | None  # lower-case: ongoing, completed, hiatus, stub, dropped, inactive
    word_count: int | None
    rating: float | None
    volumes: tuple[VolumeRecord, ...]
    chapters: tuple[ChapterRef, ...]
    content_warnings: tuple[str, ...] = field(default=())  # the site's, e.g. "Gore"
    published_at: datetime | None = None  # earliest chapter date
    # Fields the parser could not read (stored as null), in words: the job's warnings.
    parse_warnings: tuple[str, ...] = field(default=())
    # Tags by kind, in the site's order: (("fandom", ("A", "B")), ("relationship", ...)).
    # Kinds used: genre, tag, fandom, relationship, character, freeform, category,
    # warning, rating, series. `tags` stays the flat list a reader filters on.
    tag_groups: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    language: str | None = None  # as the site names it: "English"
    content_rating: str | None = None  # the site's audience rating: "Teen And Up Audiences"
    chapters_planned: int | None = None  # AO3's y in "Chapters: x/y"; None for "?" or unknown
    site_updated_at: datetime | None = None  # when the site says the fiction last changed
    notes_html: str | None = None  # work-level notes (AO3's head and end notes), apart


@dataclass(frozen=True)
class ChapterRecord:
    site_chapter_id: str
    url: str
    position: int
    title: str
    volume: str | None
    published_at: datetime | None
    content_html: str | None  # story text only, hidden anti-piracy elements removed
    author_notes_html: str | None  # notes before and after, kept apart from the story
    word_count: int | None
    content_hash: str | None  # sha256 hex of content_html
    locked: bool = False  # the site lists it but does not serve it: no text

    @classmethod
    def locked_from(cls, ref: ChapterRef) -> ChapterRecord:
        """The record of a chapter the site does not serve: its listing, no text."""
        return cls(
            site_chapter_id=ref.site_chapter_id,
            url=ref.url,
            position=ref.position,
            title=ref.title,
            volume=ref.volume,
            published_at=ref.published_at,
            content_html=None,
            author_notes_html=None,
            word_count=None,
            content_hash=None,
            locked=True,
        )
