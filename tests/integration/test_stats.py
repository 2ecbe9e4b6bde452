"""GET /stats (and the figures `cli.py stats` prints) against real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import update

from db import session_scope
from models import IngestionJob, JobStatus
from models.base import utcnow
from tests.conftest import DEAD_PORT
from tests.utils.factories import make_jobs
from tests.utils.services import QUEUE_NAME

EVERY_STATUS = {status.value: 0 for status in JobStatus}


def test_stats_count_rows_by_status_and_site_and_the_queues(
    api: TestClient, redis_conn: Redis
) -> None:
    for url in ("https://www.royalroad.com/fiction/1", "https://www.royalroad.com/fiction/2"):
        assert api.post("/ingest", json={"url": url}).status_code == 202
    assert (
        api.post("/ingest", json={"url": "https://archiveofourown.org/works/7"}).status_code == 202
    )
    make_jobs(1, status=JobStatus.ERROR)
    an_hour_ago = utcnow() - timedelta(hours=1)
    with session_scope() as session:  # the oldest QUEUED row has waited an hour
        session.execute(
            update(IngestionJob).where(IngestionJob.id == 1).values(updated_at=an_hour_ago)
        )
    body = api.get("/stats").json()
    assert body["jobs"] == {**EVERY_STATUS, "queued": 3, "error": 1}
    assert body["sites"] == {
        "ao3": {**EVERY_STATUS, "queued": 1},
        "royalroad": {**EVERY_STATUS, "queued": 2, "error": 1},
    }
    assert body["queues"] == {
        f"{QUEUE_NAME}-callbacks": 0,
        f"{QUEUE_NAME}-high": 0,
        QUEUE_NAME: 3,
        f"{QUEUE_NAME}-low": 0,
    }
    assert body["workers"] == 0 and body["redis_error"] is None
    assert 3600 <= body["oldest_queued_seconds"] < 3600 + 60


def test_stats_of_an_empty_service(api: TestClient, redis_conn: Redis) -> None:
    body = api.get("/stats").json()
    assert body["jobs"] == EVERY_STATUS and body["sites"] == {}
    assert body["oldest_queued_seconds"] is None


def test_stats_with_redis_down_still_give_the_database_figures(
    client_with: Callable[..., TestClient],
) -> None:
    make_jobs(2)
    client = client_with(REDIS_URL=f"redis://127.0.0.1:{DEAD_PORT}/0")
    response = client.get("/stats")
    assert response.status_code == 200
    body = response.json()
    assert body["jobs"]["queued"] == 2
    assert (body["queues"], body["workers"]) == (None, None)
    assert body["redis_error"].startswith("Redis unavailable")
