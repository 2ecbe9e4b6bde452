"""What a run records (increments of the Redis hashes), how the collector turns the hashes
back into metric families, and the Grafana dashboard's expressions against both."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import metrics
from models import JobStatus

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "novel-ingest.json"
METRIC = re.compile(r"\bnovel_ingest_[a-z_]+\b")


def _figures(**answers: int) -> metrics.RunFigures:
    figures = metrics.RunFigures(site="royalroad", started=0.0)
    figures.add_crawl({f"downloader/response_status_count/{k[1:]}": v for k, v in answers.items()})
    return figures


def _key(family: metrics.Family, *rest: str) -> str:
    return json.dumps([family.name, *rest])


def test_phases_are_timed_from_the_run_start_to_its_end() -> None:
    figures = metrics.RunFigures(site="royalroad", started=10.0)
    figures.enter("crawl", now=10.5)
    figures.enter("parse", now=12.5)
    figures.enter("save", now=13.0)
    added = metrics.increments(figures, outcome="done", now=14.0)
    assert figures.phases == [("claim", 0.5), ("crawl", 2.0), ("parse", 0.5), ("save", 1.0)]
    assert added.sums[_key(metrics.JOB_DURATION, "royalroad", "done", "sum")] == 4.0
    index = metrics.BUCKETS.index(5)  # 4 s falls in the bucket whose bound is 5 s
    assert added.buckets == {
        _key(metrics.JOB_DURATION, "royalroad", "done", str(index)): 1,
        _key(metrics.PHASE_DURATION, "royalroad", "claim", "done", "2"): 1,  # 0.5 <= 0.5
        _key(metrics.PHASE_DURATION, "royalroad", "crawl", "done", "4"): 1,  # 2.0 <= 2.5
        _key(metrics.PHASE_DURATION, "royalroad", "parse", "done", "2"): 1,
        _key(metrics.PHASE_DURATION, "royalroad", "save", "done", "3"): 1,  # 1.0 <= 1
    }


def test_a_duration_past_every_bound_goes_to_the_inf_bucket() -> None:
    added = metrics.increments(
        metrics.RunFigures(site="ao3", started=0.0), outcome="error", now=1e5
    )
    inf = str(len(metrics.BUCKETS))
    assert added.buckets[_key(metrics.JOB_DURATION, "ao3", "error", inf)] == 1


def test_pages_come_from_scrapys_stats_and_failures_are_4xx_5xx_or_no_answer() -> None:
    figures = _figures(s200=48, s301=1, s404=1, s503=2)
    figures.add_crawl({"downloader/exception_count": 3, "retry/count": 2, "item_scraped_count": 9})
    counters = metrics.increments(figures, outcome="retry", now=1.0).counters
    fetched = {json.loads(k)[2]: v for k, v in counters.items() if "pages_fetched" in k}
    failed = {json.loads(k)[2]: v for k, v in counters.items() if "pages_failed" in k}
    assert fetched == {"200": 48, "301": 1, "404": 1, "503": 2}
    assert failed == {"404": 1, "503": 2, metrics.NO_ANSWER: 3}
    assert counters[_key(metrics.PAGE_RETRIES, "royalroad")] == 2
    assert counters[_key(metrics.JOB_RETRIES, "royalroad")] == 1
    assert not [k for k in counters if "jobs_finished" in k]  # a retry is not an end


@pytest.mark.parametrize("outcome", ["done", "error"])
def test_a_run_that_ends_its_job_counts_a_finished_job(outcome: str) -> None:
    counters = metrics.increments(_figures(s200=1), outcome=outcome, now=1.0).counters
    assert counters[_key(metrics.JOBS_FINISHED, "royalroad", outcome)] == 1
    assert not [k for k in counters if "job_retries" in k]


def test_outcomes() -> None:
    assert metrics.outcome_of(JobStatus.DONE, retried=False) == "done"
    assert metrics.outcome_of(JobStatus.ERROR, retried=False) == "error"
    assert metrics.outcome_of(JobStatus.QUEUED, retried=True) == "retry"
    assert metrics.outcome_of(None, retried=False) == "lost"


def test_histogram_hash_fields_become_cumulative_buckets_with_sum_and_count() -> None:
    raw = {
        _key(metrics.JOB_DURATION, "royalroad", "done", "0").encode(): b"2",
        _key(metrics.JOB_DURATION, "royalroad", "done", "3").encode(): b"1",
        _key(metrics.JOB_DURATION, "royalroad", "done", str(len(metrics.BUCKETS))).encode(): b"1",
        _key(metrics.JOB_DURATION, "royalroad", "done", "sum").encode(): b"5000.5",
        b"not json": b"1",
    }
    family = metrics.histogram_families(raw)[0]
    values = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert values[("novel_ingest_job_duration_seconds_bucket", "0.1")] == 2
    assert values[("novel_ingest_job_duration_seconds_bucket", "0.5")] == 2
    assert values[("novel_ingest_job_duration_seconds_bucket", "1.0")] == 3
    assert values[("novel_ingest_job_duration_seconds_bucket", "3600.0")] == 3
    assert values[("novel_ingest_job_duration_seconds_bucket", "+Inf")] == 4
    assert values[("novel_ingest_job_duration_seconds_count", None)] == 4
    assert values[("novel_ingest_job_duration_seconds_sum", None)] == 5000.5


def test_counter_hash_fields_of_other_shapes_are_skipped() -> None:
    raw = {
        _key(metrics.JOB_RETRIES, "ao3").encode(): b"4",
        _key(metrics.JOB_RETRIES, "ao3", "extra").encode(): b"1",
        json.dumps({"a": 1}).encode(): b"1",
    }
    retries = next(f for f in metrics.counter_families(raw) if f.name.endswith("job_retries"))
    assert [(s.labels, s.value) for s in retries.samples] == [({"site": "ao3"}, 4)]


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_the_grafana_dashboard_is_a_dashboard_over_a_prometheus_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    variable = dashboard["templating"]["list"][0]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
        assert panel["targets"], panel["title"]
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("status", "throughput", "duration", "pages", "queue", "workers", "oldest"):
        assert topic in titles


def test_every_dashboard_expression_names_metrics_that_metrics_exposes() -> None:
    exposed = metrics.exposed_names()
    counters = {metrics.metric_name(f) for f in metrics.COUNTERS}
    histograms = {metrics.metric_name(f) for f in metrics.HISTOGRAMS}
    served = (
        (exposed - counters - histograms)
        | {f"{name}_total" for name in counters}
        | {f"{name}_{part}" for name in histograms for part in ("bucket", "sum", "count")}
    )
    used = set()
    for expr in _expressions():
        names = set(METRIC.findall(expr))
        assert names, expr
        assert names <= served, (expr, names - served)
        used |= names
    assert {"novel_ingest_jobs", "novel_ingest_queue_depth", "novel_ingest_workers"} <= used
    assert "novel_ingest_job_duration_seconds_bucket" in used
