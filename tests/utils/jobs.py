"""Helpers to submit jobs and wait for them, through the API or the database."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from db import session_scope
from models import Chapter, IngestionJob, JobEvent, Novel
from tests.fixture_site.server import FixtureSite
from tests.utils.chaos import horse_of
from tests.utils.services import WorkerProcess, wait_for

TERMINAL = ("done", "error")


def submit(api: TestClient, url: str) -> int:
    response = api.post("/ingest", json={"url": url})
    assert response.status_code == 202, response.text
    assert response.json()["message"] == "Ingestion job created and queued", response.text
    return int(response.json()["job_id"])


def wait_job(api: TestClient, job_id: int, *, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout} s: {job}")


def wait_rows_terminal(job_ids: list[int], *, timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            rows = session.execute(
                select(IngestionJob.id, IngestionJob.status).where(IngestionJob.id.in_(job_ids))
            ).all()
        statuses = {job_id: status for job_id, status in rows}
        if all(s in TERMINAL for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def history(job_id: int) -> list[str]:
    with session_scope() as session:
        stmt = select(JobEvent.status).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        return list(session.execute(stmt).scalars())


def counts() -> tuple[int, int, int]:
    """(novels, chapters, duplicate chapter keys) in the database now."""
    with session_scope() as session:
        novels = session.execute(select(func.count(Novel.id))).scalar_one()
        chapters = session.execute(select(func.count(Chapter.id))).scalar_one()
        keys = select(Chapter.novel_id, Chapter.site_chapter_id).distinct().subquery()
        distinct = session.execute(select(func.count()).select_from(keys)).scalar_one()
    return novels, chapters, chapters - distinct


def job_in_a_horse(
    api: TestClient, site: FixtureSite, start_worker: Any, env: dict[str, str] | None = None
) -> tuple[WorkerProcess, int, int]:
    """A worker, a job it is crawling (slowly: 0.2 s a page), and the horse running it."""
    worker = start_worker(env=env)
    site.delay = 0.2
    job_id = submit(api, site.url("/fiction/1002"))
    assert wait_for(lambda: api.get(f"/jobs/{job_id}").json()["status"] == "crawling", timeout=30)
    assert wait_for(lambda: horse_of(worker.pid) is not None, timeout=10), worker.log()
    horse = horse_of(worker.pid)
    assert horse is not None
    return worker, job_id, horse
