"""A page a job has fetched, kept until the job is DONE so that a retry need not fetch it.

Pages are stored compressed, one row per request (`fetch_key`: its method, URL and form).
The PARSING phase adds the chapter records parsed from the page, so that saving reads
them back in batches instead of holding a whole fiction in memory. Rows go with their
job's DONE transaction; a failed job's rows expire after SPOOL_RETENTION (reconciler).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class SpooledPage(Base):
    __tablename__ = "spooled_pages"
    __table_args__ = (UniqueConstraint("job_id", "fetch_key", name="uq_spooled_pages_job_fetch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("ingestion_jobs.id", ondelete="CASCADE"))
    fetch_key: Mapped[str] = mapped_column(String(64))
    page: Mapped[bytes] = mapped_column(LargeBinary)  # zlib-compressed UTF-8 text
    records: Mapped[bytes | None] = mapped_column(LargeBinary)  # zlib-compressed JSON
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
