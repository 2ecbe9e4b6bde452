"""Per-job overhead: our worker on stub and tiny fictions vs a plain RQ worker on no-op jobs.

A stub fiction (no chapters) is the smallest real job: fork, claim, the fiction page (one
redirect; robots.txt is shared by all jobs of a site), parse, save, four status moves. Its
time over RQ's no-op floor, less the time the same two requests take from a plain client,
is our overhead.
"""

from __future__ import annotations

import time
import urllib.request

from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from bench.e2e import Environment, http
from tests.utils import services


def noop() -> None:
    """A job that does nothing: RQ's own floor (dequeue, fork, bookkeeping)."""


def _span(jobs: list[Job]) -> float:
    for job in jobs:
        job.refresh()
    started = min(j.started_at for j in jobs if j.started_at)
    ended = max(j.ended_at for j in jobs if j.ended_at)
    return (ended - started).total_seconds() / len(jobs)


def rq_floor(count: int) -> float:
    connection = Redis.from_url(services.REDIS_URL)
    queue = Queue("bench-noop", connection=connection)
    jobs = [queue.enqueue(noop) for _ in range(count)]
    Worker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    return _span(jobs)


def ours(env: Environment, count: int, *, first_fiction: int) -> float:
    env.reset()
    env.worker.stop()
    accepted = [
        http(
            "POST", f"{env.api_url}/ingest", {"url": env.site.url(f"/fiction/{first_fiction + n}")}
        )
        for n in range(count)
    ]
    env.worker = services.WorkerProcess(log_dir=env.log_dir)
    connection = Redis.from_url(services.REDIS_URL)
    jobs = [Job.fetch(f"ingestion-{a['job_id']}", connection=connection) for a in accepted]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if all(j.get_status(refresh=True) in ("finished", "failed") for j in jobs):
            break
        time.sleep(0.1)
    return _span(jobs)


def plain_fetches(env: Environment, fiction_id: int, samples: int = 20) -> float:
    """The fiction page (through its redirect), from urllib."""
    started = time.perf_counter()
    for _ in range(samples):
        with urllib.request.urlopen(env.site.url(f"/fiction/{fiction_id}"), timeout=10) as page:
            page.read()
    return (time.perf_counter() - started) / samples


def run(env: Environment, *, jobs: int) -> dict[str, float]:
    floor = rq_floor(jobs)
    stub = ours(env, jobs, first_fiction=6000)
    tiny = ours(env, jobs, first_fiction=5000)
    fetches = plain_fetches(env, 6000)
    overhead = stub - floor - fetches
    print(
        f"per job, one worker, {jobs} jobs each: stub fiction {stub * 1000:.0f} ms,"
        f" 3-9 chapter fiction {tiny * 1000:.0f} ms; RQ no-op floor {floor * 1000:.1f} ms;"
        f" its 2 requests from urllib {fetches * 1000:.1f} ms;"
        f" our overhead per job {overhead * 1000:.0f} ms (target < 50 ms)"
    )
    return {
        "stub_job_ms": stub * 1000,
        "tiny_job_ms": tiny * 1000,
        "rq_noop_ms": floor * 1000,
        "overhead_ms": overhead * 1000,
    }
