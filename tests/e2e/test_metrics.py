"""A worker ingests from the fixture site; GET /metrics on the API shows what it did.

The figures cross processes: the work-horse records them in Redis, the API (another
process) reads them back. The worker logs JSON (LOG_FORMAT=json): every line parses.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.fixture_site import content
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import submit, wait_job

RUN_LOGGERS = ("ingestion", "crawler", "scrapy", "spool", "novel_store", "metrics")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(api: TestClient) -> Samples:
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _by(samples: Samples, name: str, **labels: str) -> dict[str, float]:
    """The samples of `name` whose labels include `labels`, by their other labels' values
    (in the order of the labels' names)."""
    found: dict[str, float] = {}
    for (sample, sample_labels), value in samples.items():
        rest = dict(sample_labels)
        if sample == name and all(rest.pop(k, None) == v for k, v in labels.items()):
            found[",".join(v for _, v in sorted(rest.items()))] = value
    return found


def _answered(site: FixtureSite) -> Counter[str]:
    return Counter(str(r.status) for r in site.requests() if r.status is not None)


def _url(site: FixtureSite, fiction_id: int) -> str:
    fiction = content.fiction(fiction_id)
    return site.url(f"/fiction/{fiction_id}/{fiction.slug if fiction else 'x'}")


def test_an_ingested_fiction_shows_in_the_metrics_and_the_worker_logs_json(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker(env={"LOG_FORMAT": "json"})
    job_id = submit(api, _url(fixture_site, 1001))
    job = wait_job(api, job_id, timeout=90)
    assert job["status"] == "done", worker.log()
    worker.stop(timeout=15)

    samples = _scrape(api)
    assert _by(samples, "novel_ingest_jobs", status="done") == {"": 1}
    assert _by(samples, "novel_ingest_jobs", status="queued") == {"": 0}
    fetched = _by(samples, "novel_ingest_pages_fetched_total", site="royalroad")
    assert fetched == {status: float(n) for status, n in _answered(fixture_site).items()}
    assert fetched["200"] >= 49  # the fiction page and its 48 chapters, at least
    assert _by(samples, "novel_ingest_pages_failed_total", site="royalroad") == {}
    assert _by(samples, "novel_ingest_jobs_finished_total", site="royalroad") == {"done": 1}
    count = "novel_ingest_job_duration_seconds_count"
    assert _by(samples, count, site="royalroad") == {"done": 1}
    phases = "novel_ingest_phase_duration_seconds_count"
    assert _by(samples, phases, site="royalroad", outcome="done") == dict.fromkeys(
        ("claim", "crawl", "parse", "save"), 1
    )
    assert _by(samples, "novel_ingest_redis_up") == {"": 1}
    assert _by(samples, "novel_ingest_database_up") == {"": 1}

    lines = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    about_job = [r for r in records if r.get("job_id") == job_id]
    assert any(f"job {job_id} done" in r["message"] for r in about_job), lines
    for record in about_job:
        assert {"time", "level", "logger", "message"} <= record.keys()
        if record["logger"].startswith("rq."):  # RQ's lines around the run: the job id only
            continue
        assert record["site"] == "royalroad"
        assert record["phase"] in ("claim", "crawl", "parse", "save")
    assert any(r["logger"].startswith("rq.") for r in about_job), about_job  # "Job OK"
    # the run's own lines (RQ's bookkeeping in the worker parent names its RQ job instead)
    own = [r for r in records if r["logger"].split(".")[0] in RUN_LOGGERS]
    assert own and all(r.get("job_id") == job_id for r in own), own


def test_a_failing_fiction_shows_in_failed_pages_retries_and_errors(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker = start_worker()
    job = wait_job(api, submit(api, _url(fixture_site, 2002)), timeout=90)
    assert job["status"] == "error", worker.log()
    attempts = job["attempts"]

    samples = _scrape(api)
    answered = _answered(fixture_site)
    assert answered["503"] > 0
    failed = _by(samples, "novel_ingest_pages_failed_total", site="royalroad")
    assert failed == {"503": answered["503"]}
    fetched = _by(samples, "novel_ingest_pages_fetched_total", site="royalroad")
    assert fetched == {status: float(n) for status, n in answered.items()}
    assert _by(samples, "novel_ingest_jobs_finished_total", site="royalroad") == {"error": 1}
    assert _by(samples, "novel_ingest_job_retries_total", site="royalroad") == {"": attempts - 1}
    assert _by(samples, "novel_ingest_page_retries_total", site="royalroad")[""] >= attempts
    runs = _by(samples, "novel_ingest_job_duration_seconds_count", site="royalroad")
    assert runs == {"retry": attempts - 1, "error": 1}
    assert _by(samples, "novel_ingest_jobs", status="error") == {"": 1}
