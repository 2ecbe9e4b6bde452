"""One chapter of a novel, unique per (novel, site's chapter id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Chapter(Base):
    __tablename__ = "chapters"
    __table_args__ = (
        UniqueConstraint("novel_id", "site_chapter_id", name="uq_chapters_novel_site_chapter"),
        Index("ix_chapters_novel_position", "novel_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    novel_id: Mapped[int] = mapped_column(ForeignKey("novels.id", ondelete="CASCADE"))
    site_chapter_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    volume: Mapped[str | None] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(String(512))
    url: Mapped[str] = mapped_column(String(2048))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A locked chapter (listed by the site, not served: premium, scheduled) has no text.
    locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    content_html: Mapped[str | None] = mapped_column(Text)
    author_notes_html: Mapped[str | None] = mapped_column(Text)
    word_count: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # When an update found the chapter gone from the site's table of contents: the row is
    # kept (never deleted) but no longer listed as current. None: a current chapter.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
