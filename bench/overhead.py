"""Per-job overhead: our worker on tiny fictions vs a plain RQ worker on no-op jobs."""

from __future__ import annotations

import time

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


def ours(env: Environment, count: int) -> float:
    env.reset()
    env.worker.stop()
    accepted = [
        http("POST", f"{env.api_url}/ingest", {"url": env.site.url(f"/fiction/{5000 + n}")})
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


def run(env: Environment, *, jobs: int) -> dict[str, float]:
    floor = rq_floor(jobs)
    per_job = ours(env, jobs)
    print(
        f"per job ({jobs} jobs, 3-9 chapters each, one worker): {per_job * 1000:.0f} ms;"
        f" RQ no-op floor {floor * 1000:.1f} ms; overhead over RQ {1000 * (per_job - floor):.0f} ms"
    )
    return {"per_job_ms": per_job * 1000, "rq_noop_ms": floor * 1000}
