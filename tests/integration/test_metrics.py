"""GET /metrics against real PostgreSQL and Redis: figures from the database, from RQ and
from what workers recorded in Redis; a source that is down is a 0 gauge, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from sqlalchemy import update

import ingestion_queue
import metrics
from config import get_settings
from db import session_scope
from models import IngestionJob, JobStatus
from models.base import utcnow
from tests.utils.factories import make_jobs
from tests.utils.services import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return _samples(response.text)


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _run(site: str, outcome: str, *, seconds: float, answers: dict[str, int]) -> None:
    """Record one run's figures the way a work-horse does, at a known duration."""
    figures = metrics.RunFigures(site=site, started=0.0)
    figures.enter("crawl", now=seconds / 2)
    figures.add_crawl({f"downloader/response_status_count/{s}": n for s, n in answers.items()})
    added = metrics.increments(figures, outcome=outcome, now=seconds)
    metrics.write(ingestion_queue.redis_connection(get_settings()), added)


def test_worker_figures_recorded_in_redis_are_served_as_counters_and_histograms(
    api: TestClient,
) -> None:
    _run("royalroad", "done", seconds=0.3, answers={"200": 10, "404": 1})
    _run("royalroad", "done", seconds=7.0, answers={"200": 5})
    _run("ao3", "retry", seconds=2.0, answers={"503": 2})

    samples = _scrape(api)
    fetched = "novel_ingest_pages_fetched_total"
    assert _value(samples, fetched, site="royalroad", status="200") == 15
    assert _value(samples, fetched, site="royalroad", status="404") == 1
    failed = "novel_ingest_pages_failed_total"
    assert _value(samples, failed, site="royalroad", status="404") == 1
    assert _value(samples, failed, site="ao3", status="503") == 2
    assert (failed, frozenset({("site", "royalroad"), ("status", "200")})) not in samples
    assert _value(samples, "novel_ingest_job_retries_total", site="ao3") == 1
    finished = "novel_ingest_jobs_finished_total"
    assert _value(samples, finished, site="royalroad", status="done") == 2

    bucket = "novel_ingest_job_duration_seconds_bucket"
    done = {"site": "royalroad", "outcome": "done"}
    assert _value(samples, bucket, **done, le="0.25") == 0
    assert _value(samples, bucket, **done, le="0.5") == 1  # cumulative
    assert _value(samples, bucket, **done, le="5.0") == 1
    assert _value(samples, bucket, **done, le="10.0") == 2
    assert _value(samples, bucket, **done, le="+Inf") == 2
    assert _value(samples, "novel_ingest_job_duration_seconds_count", **done) == 2
    assert _value(samples, "novel_ingest_job_duration_seconds_sum", **done) == pytest.approx(7.3)
    phase = "novel_ingest_phase_duration_seconds_count"
    assert _value(samples, phase, site="ao3", phase="claim", outcome="retry") == 1
    assert _value(samples, phase, site="ao3", phase="crawl", outcome="retry") == 1
    assert _value(samples, "novel_ingest_redis_up") == 1


def test_jobs_by_status_and_the_oldest_queued_age_come_from_the_database(
    api: TestClient,
) -> None:
    queued = make_jobs(2)
    make_jobs(3, status=JobStatus.DONE)
    make_jobs(1, status=JobStatus.ERROR)
    with session_scope() as session:
        session.execute(
            update(IngestionJob)
            .where(IngestionJob.id == queued[0])
            .values(updated_at=utcnow() - timedelta(hours=1))  # waiting since (as GET /stats)
        )

    samples = _scrape(api)
    expected = {"queued": 2, "done": 3, "error": 1, "crawling": 0, "parsing": 0, "saving": 0}
    for status, count in expected.items():
        assert _value(samples, "novel_ingest_jobs", status=status) == count
    age = _value(samples, "novel_ingest_oldest_queued_age_seconds")
    assert 3600 <= age < 7200
    assert _value(samples, "novel_ingest_database_up") == 1


def test_queue_depths_registries_and_workers_come_from_rq(api: TestClient) -> None:
    settings = get_settings()
    ids = make_jobs(2)
    ingestion_queue.enqueue_many(
        [(ids[0], ingestion_queue.Priority.HIGH), (ids[1], ingestion_queue.Priority.NORMAL)],
        settings=settings,
    )
    worker = ingestion_queue.IngestionWorker(
        ingestion_queue.queues(settings), connection=ingestion_queue.redis_connection(settings)
    )
    worker.register_birth()
    worker.set_state("idle")
    try:
        samples = _scrape(api)
    finally:
        worker.register_death()

    base = settings.queue_name
    depth = "novel_ingest_queue_depth"
    assert _value(samples, depth, queue=f"{base}-high") == 1
    assert _value(samples, depth, queue=base) == 1
    assert _value(samples, depth, queue=f"{base}-low") == 0
    assert _value(samples, depth, queue=f"{base}-callbacks") == 0
    held = "novel_ingest_queue_registry_jobs"
    for registry in ("scheduled", "started", "failed"):
        assert _value(samples, held, queue=base, registry=registry) == 0
    assert _value(samples, "novel_ingest_workers", state="idle") == 1
    assert _value(samples, "novel_ingest_workers", state="busy") == 0


def test_redis_down_still_serves_the_database_figures(
    client_with: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = client_with(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    make_jobs(1)
    with caplog.at_level(logging.WARNING, logger="metrics"):
        samples = _scrape(client)
    assert _value(samples, "novel_ingest_redis_up") == 0
    assert _value(samples, "novel_ingest_jobs", status="queued") == 1
    assert not [name for name, _ in samples if name.startswith("novel_ingest_queue_depth")]
    assert "Redis unavailable" in caplog.text


def test_database_down_still_serves_the_redis_figures(
    client_with: Callable[..., TestClient],
) -> None:
    _run("royalroad", "done", seconds=1.0, answers={"200": 3})
    client = client_with(DATABASE_URL=f"postgresql+psycopg2://u@127.0.0.1:{free_port()}/none")
    samples = _scrape(client)
    assert _value(samples, "novel_ingest_database_up") == 0
    assert _value(samples, "novel_ingest_redis_up") == 1
    fetched = "novel_ingest_pages_fetched_total"
    assert _value(samples, fetched, site="royalroad", status="200") == 3
    assert not [name for name, _ in samples if name == "novel_ingest_jobs"]


def test_metrics_need_a_key_when_reads_do(client_with: Callable[..., TestClient]) -> None:
    client = client_with(API_KEYS="scrape-key-1", API_READ_AUTH="true")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer other"}).status_code == 403
    answer = client.get("/metrics", headers={"Authorization": "Bearer scrape-key-1"})
    assert answer.status_code == 200
    assert "novel_ingest_jobs" in answer.text


def test_a_run_whose_figures_cannot_be_written_only_logs_a_warning(
    pg_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = get_settings().model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}"})
    with caplog.at_level(logging.WARNING, logger="metrics"):
        metrics.record_run(metrics.RunFigures(site="royalroad"), outcome="done", settings=settings)
    assert "metrics of this run not recorded" in caplog.text


def test_every_exposed_family_is_one_the_module_names(api: TestClient, redis_conn: Redis) -> None:
    """The names the Grafana dashboard test checks against are the ones really served."""
    _run("royalroad", "done", seconds=1.0, answers={"200": 1})
    response = api.get("/metrics")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert names == metrics.exposed_names()
