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
    warnings: tuple[str, ...] = field(default=())
    published_at: datetime | None = None  # earliest chapter date


@dataclass(frozen=True)
class ChapterRecord:
    site_chapter_id: str
    url: str
    position: int
    title: str
    volume: str | None
    published_at: datetime | None
    content_html: str  # story text only, hidden anti-piracy elements removed
    author_notes_html: str | None  # notes before and after, kept apart from the story
    word_count: int
    content_hash: str  # sha256 hex of content_html
