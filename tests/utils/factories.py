"""Rows for tests, written straight to the database."""

from __future__ import annotations

import itertools

from db import session_scope
from models import IngestionJob, JobStatus

_numbers = itertools.count(1)


def make_jobs(
    count: int = 1,
    *,
    status: JobStatus = JobStatus.QUEUED,
    run_id: str | None = None,
    attempts: int = 0,
) -> list[int]:
    """`count` job rows for distinct fictions; their ids."""
    with session_scope() as session:
        jobs = []
        for _ in range(count):
            number = next(_numbers)
            jobs.append(
                IngestionJob(
                    source_url=f"https://www.royalroad.com/fiction/{number}",
                    site="royalroad",
                    site_novel_id=str(number),
                    status=status.value,
                    run_id=run_id,
                    attempts=attempts,
                )
            )
        session.add_all(jobs)
        session.flush()
        return [job.id for job in jobs]


def make_job(**kwargs: object) -> int:
    return make_jobs(1, **kwargs)[0]  # type: ignore[arg-type]
