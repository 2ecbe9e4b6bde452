"""A fiction as its site shows it, unique per (site, site's own id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Novel(Base):
    __tablename__ = "novels"
    __table_args__ = (
        UniqueConstraint("site", "site_novel_id", name="uq_novels_site_novel"),
        Index("ix_novels_next_refresh_at", "next_refresh_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(32))
    site_novel_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(String(512))
    author: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    cover_url: Mapped[str | None] = mapped_column(String(2048))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str | None] = mapped_column(String(32))
    word_count: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[float | None] = mapped_column(Float)
    volumes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # tags by kind, e.g. {"fandom": [...], "relationship": [...]}: `tags` is the flat list
    tag_groups: Mapped[dict[str, list[str]]] = mapped_column(
        JSON, default=dict, server_default=text("'{}'")
    )
    language: Mapped[str | None] = mapped_column(String(64))
    content_rating: Mapped[str | None] = mapped_column(String(64))
    chapters_planned: Mapped[int | None] = mapped_column(Integer)
    site_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notes_html: Mapped[str | None] = mapped_column(Text)
    # when a job last read the site for it, when that changed a chapter, and when the
    # scheduler refreshes it next (None: never, e.g. REFRESH_INTERVAL=0)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
