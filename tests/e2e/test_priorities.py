"""Priorities end to end: one worker takes every high job, then normal, then low."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

import jobs
from config import get_settings
from db import session_scope
from models import IngestionJob, Priority
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import wait_rows_terminal

pytestmark = pytest.mark.usefixtures("pg_db")


def _submit(site: FixtureSite, fiction_id: int, priority: Priority) -> int:
    with session_scope() as session:
        submission = jobs.submit(
            session,
            site.url(f"/fiction/{fiction_id}/x"),
            settings=get_settings(),
            priority=priority,
        )
    assert submission.created and submission.enqueued
    return submission.job.id


def test_one_worker_takes_high_then_normal_then_low(
    fixture_site: FixtureSite, start_worker: Any
) -> None:
    # Submitted lowest first, so that serving in arrival order would give the reverse.
    order = [Priority.LOW, Priority.LOW, Priority.NORMAL, Priority.NORMAL, Priority.HIGH]
    submitted = {
        _submit(fixture_site, 6001 + n, priority): priority for n, priority in enumerate(order)
    }
    worker = start_worker("--burst")
    assert worker.wait(120) == 0, worker.log()
    statuses = wait_rows_terminal(list(submitted), timeout=10)
    assert set(statuses.values()) == {"done"}, worker.log()
    with session_scope() as session:
        stmt = select(IngestionJob.id, IngestionJob.started_at).where(
            IngestionJob.id.in_(list(submitted))
        )
        started = sorted(session.execute(stmt).all(), key=lambda row: row.started_at)
    served = [submitted[job_id] for job_id, _ in started]
    assert served == [Priority.HIGH, Priority.NORMAL, Priority.NORMAL, Priority.LOW, Priority.LOW]
    # within one priority, first come first served
    ids = list(submitted)
    assert [job_id for job_id, _ in started] == [ids[4], ids[2], ids[3], ids[0], ids[1]]
