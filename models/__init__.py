"""SQLAlchemy models: jobs (with the state machine), novels, chapters."""

from models.base import Base
from models.chapter import Chapter
from models.ingestion_job import ACTIVE, RUNNING, TERMINAL, IngestionJob, JobEvent, JobStatus
from models.novel import Novel

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
]
