"""The service's figures at a glance, for `cli.py stats` and `GET /stats`.

Job rows by status and by site, and the age of the oldest QUEUED row, from the database;
queue depths and the worker count from Redis. With Redis down the database part still
answers: the Redis part is None, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import ingestion_queue
from config import Settings
from errors import QueueUnavailableError
from models import IngestionJob, JobStatus
from models.base import utcnow


@dataclass
class Stats:
    jobs: dict[str, int]  # rows by status, every status listed
    sites: dict[str, dict[str, int]]  # rows by site, then status (every status listed)
    oldest_queued_seconds: float | None  # how long the longest-waiting QUEUED row has waited
    queues: dict[str, int] | None = None  # jobs waiting on each RQ queue; None: Redis down
    workers: int | None = None  # RQ workers serving the queues; None: Redis down
    redis_error: str | None = field(default=None)  # why the Redis part is None


def collect(session: Session, *, settings: Settings) -> Stats:
    """Every figure: the database's (its outages raise), then Redis' (reported in
    `redis_error`)."""
    figures = Stats(jobs=_zeros(), sites=by_site(session), oldest_queued_seconds=None)
    for counts in figures.sites.values():
        for status, count in counts.items():
            figures.jobs[status] += count
    figures.oldest_queued_seconds = oldest_queued_seconds(session)
    try:
        figures.queues = ingestion_queue.queue_depths(settings)
        figures.workers = len(ingestion_queue.workers(settings))
    except QueueUnavailableError as error:
        figures.queues, figures.workers, figures.redis_error = None, None, str(error)
    return figures


def _zeros() -> dict[str, int]:
    return {status.value: 0 for status in JobStatus}


def by_site(session: Session) -> dict[str, dict[str, int]]:
    """Rows by site and status, in one GROUP BY."""
    stmt = select(IngestionJob.site, IngestionJob.status, func.count()).group_by(
        IngestionJob.site, IngestionJob.status
    )
    sites: dict[str, dict[str, int]] = {}
    for site, status, count in session.execute(stmt.order_by(IngestionJob.site)):
        sites.setdefault(site, _zeros())[str(status)] = int(count)
    return sites


def oldest_queued_seconds(session: Session) -> float | None:
    """Seconds since the longest-waiting QUEUED row became QUEUED (its last status move:
    a retried row waits from its retry, not from its creation); None when none waits."""
    stmt = select(func.min(IngestionJob.updated_at)).where(
        IngestionJob.status == JobStatus.QUEUED.value
    )
    since = session.execute(stmt).scalar_one_or_none()
    if since is None:
        return None
    return max(0.0, (utcnow() - since).total_seconds())
