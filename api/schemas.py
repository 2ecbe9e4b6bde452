"""Request and response bodies, separate from the database models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

import callback
from errors import InvalidURLError
from models import JobStatus, Priority
from models.ingestion_job import CallbackStatus

T = TypeVar("T")


class IngestRequest(BaseModel):
    url: str = Field(
        min_length=1, max_length=2048, examples=["https://www.royalroad.com/fiction/12345"]
    )
    priority: Priority = Field(
        default=Priority.NORMAL,
        description="which queue the job waits on: workers serve high, then normal, then low"
        " (scheduled refreshes); asking for a fiction whose job waits lower moves it up",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=callback.URL_LIMIT,
        description="POSTed the job's outcome (JSON) once it ends, retried with backoff and"
        " signed (X-Signature-256) when CALLBACK_SECRET is set; http(s), no credentials, and"
        " an address inside the operator's network only if CALLBACK_ALLOWED_HOSTS names it."
        " For a fiction with an active job: set on that job if it has none",
        examples=["https://example.com/hooks/novel-ingest"],
    )

    @field_validator("callback_url")
    @classmethod
    def _callback_url_allowed(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return callback.check_url(value)
        except InvalidURLError as error:
            raise ValueError(str(error)) from None


class RefreshRequest(BaseModel):
    full: bool = Field(
        default=False,
        description="refetch every chapter and rewrite those whose text changed (edits do not"
        " show in a site's table of contents); false: only what the listing shows changed",
    )
    allow_removals: bool = Field(
        default=False,
        description="mark removed however many chapters the site no longer lists (a fiction"
        " that really was cut); otherwise an update that would remove more than"
        " UPDATE_REMOVAL_LIMIT of them ends in error and changes nothing",
    )
    priority: Priority = Field(default=Priority.NORMAL, description="as for POST /ingest")


class Changes(BaseModel):
    new: int = Field(description="chapters the store did not have (or had marked removed)")
    updated: int = Field(description="chapters whose text, title, date or lock changed")
    removed: int = Field(description="chapters gone from the site's table of contents")
    unchanged: int


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


class CallbackPublic(BaseModel):
    status: CallbackStatus = Field(description="pending, delivered or failed")
    attempts: int = Field(description="deliveries tried")
    error: str | None = Field(description="why the last delivery failed")
    delivered_at: datetime | None


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
    full: bool = Field(description="refetches every chapter, not only what changed")
    allow_removals: bool = Field(description="UPDATE_REMOVAL_LIMIT waived for this job")
    priority: Priority = Field(description="high, normal or low (scheduled refreshes)")
    origin: str = Field(description="user (POST /ingest), refresh, or schedule")
    changes: Changes | None = Field(
        description="what the run did to the stored novel; null until it is DONE"
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    callback: CallbackPublic | None = Field(
        default=None, description="the callback_url delivery (the URL is not shown); null: none"
    )


class JobState(BaseModel):
    """The data of one `status` event of GET /jobs/{id}/events."""

    id: int
    status: JobStatus
    attempts: int
    progress: Progress
    error_message: str | None
    last_error: str | None = Field(description="why the last attempt failed, if one did")


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
    last_checked_at: datetime | None = Field(description="when a job last read the site for it")
    last_changed_at: datetime | None = Field(description="when that last changed a chapter")
    next_refresh_at: datetime | None = Field(
        description="when the scheduler refreshes it next; null: not scheduled"
    )


class NovelDetail(NovelPublic):
    description: str | None
    warnings: list[str] = Field(description="the site's content warnings")
    tag_groups: dict[str, list[str]] = Field(
        description="tags by kind (fandom, relationship, character, freeform, genre ...)"
    )
    language: str | None
    content_rating: str | None = Field(description="the site's audience rating, e.g. Mature")
    chapters_planned: int | None = Field(description="chapters the author plans, if stated")
    site_updated_at: datetime | None = Field(description="when the site says it last changed")
    notes_html: str | None = Field(description="work-level author notes, apart from chapters")
    volumes: list[dict[str, Any]]
    chapter_count: int = Field(description="current chapters (removed ones not counted)")


class SitePublic(BaseModel):
    id: str = Field(description="the site id used in `site` and CRAWLER_SITE_ALIASES")
    name: str
    hosts: list[str]
    url_patterns: list[str]
    example_url: str
    download_delay: float = Field(description="seconds between requests to the site")
    concurrent_requests: int = Field(description="requests in flight to the site at once")


class ChapterSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int
    site_chapter_id: str
    volume: str | None
    title: str
    published_at: datetime | None
    url: str
    locked: bool = Field(description="listed by the site but not served: no text")
    removed_at: datetime | None = Field(
        description="when an update found it gone from the site; null: a current chapter"
    )
    word_count: int | None


class ChapterPublic(ChapterSummary):
    content_html: str | None
    author_notes_html: str | None
    content_hash: str | None


class Problem(BaseModel):
    """One thing wrong with a request: where, what, and pydantic's error type."""

    loc: list[str | int] = Field(description="where: query/path/body, then the field")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer: what went wrong in words; never the input sent back."""

    detail: str
    errors: list[Problem] | None = Field(
        default=None, description="422 for invalid parameters or body: each problem"
    )
    supported_sites: str | None = Field(
        default=None, description="422 for an unsupported site: the sites there are"
    )


class HealthCheck(BaseModel):
    ok: bool
    latency_ms: float | None
    error: str | None = None


class Health(BaseModel):
    status: str
    database: HealthCheck
    redis: HealthCheck


class Stats(BaseModel):
    jobs: dict[JobStatus, int] = Field(description="job rows by status (every status listed)")
    sites: dict[str, dict[JobStatus, int]] = Field(description="job rows by site, then status")
    queues: dict[str, int] | None = Field(
        description="jobs waiting on each RQ queue (callbacks, high, normal, low); null: Redis"
        " unavailable"
    )
    workers: int | None = Field(description="RQ workers serving the queues; null: Redis down")
    oldest_queued_seconds: float | None = Field(
        description="how long the longest-waiting QUEUED job has waited; null: none waits"
    )
    redis_error: str | None = Field(default=None, description="why `queues` and `workers` are null")
