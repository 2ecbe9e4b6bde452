"""The service's figures: what each ingestion run records, and what GET /metrics collects.

A run's figures (its duration and its phases', pages by HTTP status, retries, how it
ended) are measured in the work-horse and added, at the run's end, to two Redis hashes
under KEY_PREFIX in one pipeline: counters (HINCRBY) and histogram buckets (HINCRBY per
bucket, HINCRBYFLOAT for the sum). Every worker on every host adds to the same hashes, so
the API's `Collector` reads the fleet's totals, whichever process serves the scrape. It
adds what the database knows (jobs by status, the oldest QUEUED row) and what RQ knows
(queue depth, registries, workers). A source that cannot be reached is reported by an
`*_up` gauge of 0; the other figures are still served.
"""

from __future__ import annotations

import json
import logging
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.worker import WorkerStatus
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from config import Settings
from db import get_engine
from ingestion_queue import KEY_PREFIX, callback_queue, queues, redis_connection
from models import IngestionJob, JobStatus
from models.base import utcnow

log = logging.getLogger(__name__)

NAMESPACE = "novel_ingest"
COUNTERS_KEY = f"{KEY_PREFIX}:metrics:counters"
HISTOGRAMS_KEY = f"{KEY_PREFIX}:metrics:histograms"
# Upper bounds (seconds) of every duration histogram, workers and collector alike; +Inf
# is implied. From a one-chapter update (~0.1 s) to a 10,000-chapter fiction (an hour).
BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
PHASES = ("claim", "crawl", "parse", "save")
NO_ANSWER = "none"  # the status label of a request that got no HTTP answer at all
REGISTRIES = ("scheduled", "started", "failed")


@dataclass(frozen=True)
class Family:
    """One metric that workers record: its name (without namespace or _total), help, labels."""

    name: str
    doc: str
    labels: tuple[str, ...]


PAGES_FETCHED = Family(
    "pages_fetched", "HTTP answers received by crawls, by site and status", ("site", "status")
)
PAGES_FAILED = Family(
    "pages_failed",
    "Requests that failed: an HTTP status of 400 or more, or none (status none: no answer)",
    ("site", "status"),
)
PAGE_RETRIES = Family("page_retries", "Page requests retried within a crawl", ("site",))
JOB_RETRIES = Family("job_retries", "Runs that ended in a retry of their job", ("site",))
JOBS_FINISHED = Family(
    "jobs_finished", "Jobs that ended, by site and final status (done, error)", ("site", "status")
)
JOB_DURATION = Family(
    "job_duration_seconds", "Duration of one run of a job, claim to end", ("site", "outcome")
)
PHASE_DURATION = Family(
    "phase_duration_seconds",
    "Duration of one phase of a run (claim, crawl, parse, save)",
    ("site", "phase", "outcome"),
)
COUNTERS = (PAGES_FETCHED, PAGES_FAILED, PAGE_RETRIES, JOB_RETRIES, JOBS_FINISHED)
HISTOGRAMS = (JOB_DURATION, PHASE_DURATION)


def metric_name(family: Family) -> str:
    return f"{NAMESPACE}_{family.name}"


def exposed_names() -> frozenset[str]:
    """Every metric family GET /metrics serves (counters without their _total)."""
    recorded = {metric_name(f) for f in (*COUNTERS, *HISTOGRAMS)}
    return frozenset(recorded | {f"{NAMESPACE}_{name}" for name in GAUGES})


GAUGES = {
    "jobs": "Jobs by status, from the database",
    "oldest_queued_age_seconds": "Age of the oldest QUEUED job (since it was created); 0 if none",
    "queue_depth": "RQ jobs waiting on each queue",
    "queue_registry_jobs": "RQ jobs in each queue's scheduled, started and failed registries",
    "workers": "RQ workers serving these queues, by state (busy, idle, ...)",
    "redis_up": "1 when Redis answered this scrape, else 0 (worker figures then missing)",
    "database_up": "1 when the database answered this scrape, else 0",
}


# --- what a run records ------------------------------------------------------------------


@dataclass
class RunFigures:
    """One run's figures, measured as it goes: the phase it is in, pages by status."""

    site: str
    started: float = field(default_factory=time.monotonic)
    phase: str = PHASES[0]
    phase_started: float | None = None  # None: since `started`
    phases: list[tuple[str, float]] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # HTTP status -> responses
    unanswered: int = 0
    page_retries: int = 0

    def enter(self, phase: str, *, now: float | None = None) -> None:
        """End the current phase and start `phase`."""
        now = time.monotonic() if now is None else now
        began = self.started if self.phase_started is None else self.phase_started
        self.phases.append((self.phase, now - began))
        self.phase, self.phase_started = phase, now

    def add_crawl(self, stats: Mapping[str, Any]) -> None:
        """Take the page figures out of a crawl's Scrapy stats."""
        prefix = "downloader/response_status_count/"
        for key, value in stats.items():
            if key.startswith(prefix):
                self.answers[key.removeprefix(prefix)] += int(value)
        self.unanswered += int(stats.get("downloader/exception_count", 0))
        self.page_retries += int(stats.get("retry/count", 0))


def outcome_of(status: JobStatus | None, *, retried: bool) -> str:
    """A run's outcome label: done, error, retry, or lost (its job went elsewhere)."""
    if retried:
        return "retry"
    return status.value if status in (JobStatus.DONE, JobStatus.ERROR) else "lost"


@dataclass
class Increments:
    """What one run adds to the Redis hashes: counter fields and histogram fields."""

    counters: Counter[str] = field(default_factory=Counter)
    buckets: Counter[str] = field(default_factory=Counter)
    sums: dict[str, float] = field(default_factory=dict)

    def count(self, family: Family, *labels: str, by: int = 1) -> None:
        if by:
            self.counters[_field(family, labels)] += by

    def observe(self, family: Family, *labels: str, value: float) -> None:
        self.buckets[_field(family, labels, str(bisect_left(BUCKETS, value)))] += 1
        key = _field(family, labels, "sum")
        self.sums[key] = self.sums.get(key, 0.0) + value


def _field(family: Family, labels: Sequence[str], *rest: str) -> str:
    assert len(labels) == len(family.labels), (family.name, labels)
    return json.dumps([family.name, *labels, *rest])


def increments(figures: RunFigures, *, outcome: str, now: float | None = None) -> Increments:
    """A run's figures as hash increments; the phase it was in ends now."""
    now = time.monotonic() if now is None else now
    figures.enter("end", now=now)
    site, out = figures.site, Increments()
    out.observe(JOB_DURATION, site, outcome, value=now - figures.started)
    for phase, seconds in figures.phases:
        out.observe(PHASE_DURATION, site, phase, outcome, value=seconds)
    for status, responses in figures.answers.items():
        out.count(PAGES_FETCHED, site, status, by=responses)
        if status.isdigit() and int(status) >= 400:
            out.count(PAGES_FAILED, site, status, by=responses)
    out.count(PAGES_FAILED, site, NO_ANSWER, by=figures.unanswered)
    out.count(PAGE_RETRIES, site, by=figures.page_retries)
    if outcome == "retry":
        out.count(JOB_RETRIES, site)
    elif outcome in ("done", "error"):
        out.count(JOBS_FINISHED, site, outcome)
    return out


def write(connection: Redis, added: Increments) -> None:
    """Add a run's increments to the hashes: one pipeline, one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for key, by in added.counters.items():
            pipe.hincrby(COUNTERS_KEY, key, by)
        for key, by in added.buckets.items():
            pipe.hincrby(HISTOGRAMS_KEY, key, by)
        for key, value in added.sums.items():
            pipe.hincrbyfloat(HISTOGRAMS_KEY, key, value)
        pipe.execute()


def record_run(figures: RunFigures, *, outcome: str, settings: Settings) -> None:
    """Record a run that ended; a failure to record never fails the job (a warning)."""
    try:
        write(redis_connection(settings), increments(figures, outcome=outcome))
    except Exception as error:  # figures are advisory: the job's own result stands
        log.warning("metrics of this run not recorded: %s", error)


# --- what the API collects ----------------------------------------------------------------


def _decoded(raw: Mapping[bytes, bytes]) -> Iterator[tuple[list[str], float]]:
    for key, value in raw.items():
        try:
            parts = json.loads(key)
        except ValueError:
            continue  # not ours: skipped rather than failing the scrape
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            yield parts, float(value)


def counter_families(raw: Mapping[bytes, bytes]) -> list[CounterMetricFamily]:
    values = sorted(_decoded(raw))
    out = []
    for family in COUNTERS:
        metric = CounterMetricFamily(metric_name(family), family.doc, labels=family.labels)
        for (name, *labels), value in values:
            if name == family.name and len(labels) == len(family.labels):
                metric.add_metric(labels, value)
        out.append(metric)
    return out


def histogram_families(raw: Mapping[bytes, bytes]) -> list[HistogramMetricFamily]:
    series: dict[tuple[str, ...], dict[str, float]] = {}
    for (name, *rest), value in _decoded(raw):
        if rest:
            series.setdefault((name, *rest[:-1]), {})[rest[-1]] = value
    out = []
    for family in HISTOGRAMS:
        metric = HistogramMetricFamily(metric_name(family), family.doc, labels=family.labels)
        for (name, *labels), values in sorted(series.items()):
            if name == family.name and len(labels) == len(family.labels):
                metric.add_metric(labels, _cumulative(values), sum_value=values.get("sum", 0.0))
        out.append(metric)
    return out


def _cumulative(values: Mapping[str, float]) -> list[tuple[str, float]]:
    bounds = [*(str(float(b)) for b in BUCKETS), "+Inf"]
    total, buckets = 0.0, []
    for index, bound in enumerate(bounds):
        total += values.get(str(index), 0.0)
        buckets.append((bound, total))
    return buckets


def database_families() -> list[GaugeMetricFamily]:
    """Jobs by status and the oldest QUEUED row's age: one GROUP BY query."""
    stmt = select(IngestionJob.status, func.count(), func.min(IngestionJob.updated_at)).group_by(
        IngestionJob.status
    )
    with get_engine().connect() as connection:
        rows = connection.execute(stmt).all()
    by_status = {str(status): (count, oldest) for status, count, oldest in rows}
    jobs = GaugeMetricFamily(f"{NAMESPACE}_jobs", GAUGES["jobs"], labels=["status"])
    for status in JobStatus:
        jobs.add_metric([status.value], by_status.get(status.value, (0, None))[0])
    oldest = by_status.get(JobStatus.QUEUED.value, (0, None))[1]
    age = max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    name = f"{NAMESPACE}_oldest_queued_age_seconds"
    return [jobs, GaugeMetricFamily(name, GAUGES["oldest_queued_age_seconds"], value=age)]


def rq_families(connection: Redis, every: Sequence[Queue]) -> list[Metric]:
    """Worker figures from the hashes, queue and registry sizes and workers from RQ."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.hgetall(COUNTERS_KEY)
        pipe.hgetall(HISTOGRAMS_KEY)
        for queue in every:
            pipe.llen(queue.key)
            for registry in _registries(queue):
                pipe.zcard(registry)
        counters, histograms, *sizes = pipe.execute()
    depth = GaugeMetricFamily(f"{NAMESPACE}_queue_depth", GAUGES["queue_depth"], labels=["queue"])
    held = GaugeMetricFamily(
        f"{NAMESPACE}_queue_registry_jobs",
        GAUGES["queue_registry_jobs"],
        labels=["queue", "registry"],
    )
    per_queue = 1 + len(REGISTRIES)
    for index, queue in enumerate(every):
        waiting, *registered = sizes[index * per_queue : (index + 1) * per_queue]
        depth.add_metric([queue.name], waiting)
        for registry, size in zip(REGISTRIES, registered, strict=True):
            held.add_metric([queue.name, registry], size)
    return [
        *counter_families(counters),
        *histogram_families(histograms),
        depth,
        held,
        workers_family(connection, every),
    ]


def _registries(queue: Queue) -> tuple[str, ...]:
    return (
        queue.scheduled_job_registry.key,
        queue.started_job_registry.key,
        queue.failed_job_registry.key,
    )


def workers_family(connection: Redis, every: Iterable[Queue]) -> GaugeMetricFamily:
    """Workers serving any of these queues, each counted once, by RQ state."""
    seen: dict[str, str] = {}
    for queue in every:
        for worker in Worker.all(connection=connection, queue=queue):
            seen[worker.name] = str(worker.get_state())
    states = Counter(seen.values())
    family = GaugeMetricFamily(f"{NAMESPACE}_workers", GAUGES["workers"], labels=["state"])
    for state in sorted({*(s.value for s in WorkerStatus), *states}):
        family.add_metric([state], states.get(state, 0))
    return family


def _up(name: str, ok: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NAMESPACE}_{name}_up", GAUGES[f"{name}_up"], value=int(ok))


class Collector:
    """Reads every figure at scrape time: the database's, then Redis's and RQ's."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        try:
            yield from database_families()
            yield _up("database", True)
        except SQLAlchemyError as error:
            log.warning("metrics: database unavailable: %s", type(error).__name__)
            yield _up("database", False)
        every = [*queues(self.settings), callback_queue(self.settings)]
        try:
            families = rq_families(redis_connection(self.settings), every)
        except RedisError as error:
            log.warning("metrics: Redis unavailable: %s", type(error).__name__)
            yield _up("redis", False)
            return
        yield from families
        yield _up("redis", True)


def registry(settings: Settings) -> CollectorRegistry:
    """A registry of this service's figures only (no process or platform collectors)."""
    own = CollectorRegistry(auto_describe=False)
    own.register(Collector(settings))
    return own
