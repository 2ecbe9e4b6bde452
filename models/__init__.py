"""SQLAlchemy models: jobs (with the state machine), novels, chapters."""

from models.base import Base
from models.chapter import Chapter
from models.ingestion_job import (
    ACTIVE,
    RUNNING,
    TERMINAL,
    IngestionJob,
    JobEvent,
    JobStatus,
    Origin,
    Priority,
)
from models.novel import Novel
from models.spooled_page import SpooledPage

__all__ = [
    "ACTIVE",
    "RUNNING",
    "TERMINAL",
    "Base",
    "Chapter",
    "IngestionJob",
    "JobEvent",
    "JobStatus",
    "Novel",
    "Origin",
    "Priority",
    "SpooledPage",
]
