"""RQ's own state tells the truth: each RQ job ends where its row ended (finished, failed
with the row's error, canceled), so RQ's registries count what the rows count."""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq.job import Job
from rq.registry import (
    CanceledJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import select

from db import session_scope
from errors import CANCELLED_BY_USER
from ingestion_queue import queues, rq_job_id
from models import IngestionJob
from tests.fixture_site.server import FixtureSite
from tests.utils.chaos import horse_of
from tests.utils.jobs import job_in_a_horse, submit, wait_job
from tests.utils.services import wait_for

REGISTRIES = {
    "finished": FinishedJobRegistry,
    "failed": FailedJobRegistry,
    "canceled": CanceledJobRegistry,
    "scheduled": ScheduledJobRegistry,
    "started": StartedJobRegistry,
}


def _rq(redis_conn: Redis, job_id: int) -> Job:
    return Job.fetch(rq_job_id(job_id), connection=redis_conn)


def _rq_status(redis_conn: Redis, job_id: int) -> str:
    return _rq(redis_conn, job_id).get_status().value


def _settles(redis_conn: Redis, job_id: int, status: str) -> bool:
    return wait_for(lambda: _rq_status(redis_conn, job_id) == status, timeout=30)


def _registered(redis_conn: Redis) -> dict[str, list[str]]:
    """The RQ ids in each registry (and on the lists, "queued"), over all three queues."""
    found: dict[str, list[str]] = {name: [] for name in [*REGISTRIES, "queued"]}
    for queue in queues():
        for name, registry in REGISTRIES.items():
            found[name] += registry(queue.name, connection=redis_conn).get_job_ids()
        found["queued"] += queue.get_job_ids()
    return found


def _rows_by_rq_state() -> Counter[str]:
    """What each row's RQ job should say: done -> finished, a cancelled row -> canceled,
    another error -> failed."""
    with session_scope() as session:
        rows = session.execute(select(IngestionJob.status, IngestionJob.error_message)).all()
    expected = {"done": "finished", "error": "failed"}
    return Counter(
        "canceled" if message == CANCELLED_BY_USER else expected.get(status, status)
        for status, message in rows
    )


def test_rq_jobs_end_where_their_rows_ended_and_the_registries_count_the_rows(
    api: TestClient, redis_conn: Redis, fixture_site: FixtureSite, start_worker: Any
) -> None:
    waiting = submit(api, fixture_site.url("/fiction/1003"))  # no worker yet
    assert api.post(f"/jobs/{waiting}/cancel").status_code == 200
    assert _settles(redis_conn, waiting, "canceled")

    worker = start_worker()
    done = submit(api, fixture_site.url("/fiction/1001"))
    missing = submit(api, fixture_site.url("/fiction/9999"))  # the site answers 404
    assert wait_job(api, done)["status"] == "done", worker.log()
    error = wait_job(api, missing)
    assert error["status"] == "error", worker.log()
    assert _settles(redis_conn, done, "finished"), worker.log()
    assert _settles(redis_conn, missing, "failed"), worker.log()
    failed = _rq(redis_conn, missing)
    result = failed.latest_result()
    assert result is not None and result.exc_string is not None
    assert error["error_message"] in result.exc_string  # the row's words, in RQ's record
    assert "JobFailed" in result.exc_string

    fixture_site.delay = 0.5
    running = submit(api, fixture_site.url("/fiction/1002"))
    assert wait_for(lambda: api.get(f"/jobs/{running}").json()["status"] == "crawling", timeout=30)
    assert wait_for(lambda: horse_of(worker.pid) is not None, timeout=10), worker.log()
    assert api.post(f"/jobs/{running}/cancel").status_code == 200
    assert _settles(redis_conn, running, "canceled"), worker.log()
    fixture_site.delay = 0.0

    registered = _registered(redis_conn)
    assert sorted(registered["finished"]) == [rq_job_id(done)]
    assert sorted(registered["failed"]) == [rq_job_id(missing)]
    assert sorted(registered["canceled"]) == sorted([rq_job_id(waiting), rq_job_id(running)])
    assert registered["started"] == registered["scheduled"] == registered["queued"] == []
    counted = Counter({name: len(ids) for name, ids in registered.items() if ids})
    assert counted == _rows_by_rq_state()


@pytest.mark.parametrize(
    ("attempts", "row_status", "rq_status"), [("3", "done", "finished"), ("1", "error", "failed")]
)
def test_a_killed_horse_is_run_again_by_the_same_rq_job_while_the_row_has_attempts(
    api: TestClient,
    redis_conn: Redis,
    fixture_site: FixtureSite,
    start_worker: Any,
    attempts: str,
    row_status: str,
    rq_status: str,
) -> None:
    worker, job_id, horse = job_in_a_horse(
        api, fixture_site, start_worker, {"JOB_MAX_ATTEMPTS": attempts}
    )
    os.kill(horse, signal.SIGKILL)
    fixture_site.delay = 0.0
    job = wait_job(api, job_id, timeout=60)
    assert job["status"] == row_status, worker.log()
    assert _settles(redis_conn, job_id, rq_status), worker.log()
    registered = _registered(redis_conn)
    assert [i for ids in registered.values() for i in ids] == [rq_job_id(job_id)]  # one job
    assert registered[rq_status] == [rq_job_id(job_id)]
    results = _rq(redis_conn, job_id).results()
    assert len(results) == int(attempts == "3") + 1  # the killed run, then the run that won
    latest = results[0]
    if row_status == "error":
        assert latest.exc_string is not None and job["error_message"] in latest.exc_string
        assert "gave up after 1 attempts: work-horse died" in job["error_message"]
    else:
        assert latest.type == latest.Type.SUCCESSFUL and job["attempts"] == 2
