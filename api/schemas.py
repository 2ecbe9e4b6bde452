"""Request and response bodies, separate from the database models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from models import JobStatus

T = TypeVar("T")


class IngestRequest(BaseModel):
    url: str = Field(
        min_length=1, max_length=2048, examples=["https://www.royalroad.com/fiction/12345"]
    )


class IngestAccepted(BaseModel):
    job_id: int
    status: JobStatus
    message: str


class Progress(BaseModel):
    chapters_found: int
    chapters_fetched: int
    chapters_saved: int
    chapters_locked: int = Field(
        description="chapters the site lists but does not serve (premium, scheduled)"
    )


class JobEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: JobStatus
    at: datetime
    message: str | None


class JobPublic(BaseModel):
    id: int
    source_url: str
    site: str
    status: JobStatus
    error_message: str | None
    last_error: str | None
    attempts: int
    progress: Progress
    warnings: list[str] = Field(
        description="fields the job could not read (stored as null), chapters it found locked"
    )
    novel_id: int | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobDetail(JobPublic):
    history: list[JobEventPublic]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class NovelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    site_novel_id: str
    url: str
    title: str
    author: str | None
    cover_url: str | None
    status: str | None
    tags: list[str]
    word_count: int | None
    rating: float | None
    published_at: datetime | None
    updated_at: datetime


class NovelDetail(NovelPublic):
    description: str | None
    warnings: list[str]
    volumes: list[dict[str, Any]]
    chapter_count: int


class ChapterSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    site_chapter_id: str
    volume: str | None
    title: str
    published_at: datetime | None
    url: str
    locked: bool = Field(description="listed by the site but not served: no text")
    word_count: int | None


class ChapterPublic(ChapterSummary):
    content_html: str | None
    author_notes_html: str | None
    content_hash: str | None


class ErrorBody(BaseModel):
    detail: str


class HealthCheck(BaseModel):
    ok: bool
    latency_ms: float | None
    error: str | None = None


class Health(BaseModel):
    status: str
    database: HealthCheck
    redis: HealthCheck
