"""End to end: one 160-chapter fiction through the real API process and a real worker."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from redis import Redis

from tests.fixture_site.server import FixtureSite
from tests.utils import services

BIG_FICTION = 1003
# Its own database and log folder (BENCH_DATABASE, BENCH_LOG_DIR), as its own Redis db
# (TEST_REDIS_URL): two benchmark runs on one machine keep apart
BENCH_DB = os.environ.get("BENCH_DATABASE", "novel_ingest_bench")
LOG_DIR = Path(os.environ.get("BENCH_LOG_DIR", "data/bench"))


# What a benchmark's jobs leave in its own Redis db: RQ's jobs, queues, registries and
# results, the enqueue locks (ingestion_queue.KEY_PREFIX). Workers' own keys stay (a
# running worker keeps its name).
STALE_KEYS = (
    "rq:job:*",
    "rq:executions:*",
    "rq:results:*",
    "rq:queue:*",
    "rq:finished:*",
    "rq:failed:*",
    "rq:canceled:*",
    "rq:scheduled:*",
    "rq:deferred:*",
    "rq:wip:*",
    "{prefix}:enqueue-lock:*",
)


def delete_matching(connection: Redis, pattern: str) -> int:
    """Delete the keys matching `pattern` in the connection's db; how many there were."""
    keys = list(connection.scan_iter(match=pattern, count=10_000))
    for first in range(0, len(keys), 10_000):
        connection.unlink(*keys[first : first + 10_000])
    return len(keys)


def http(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.load(response)
        return result


class Environment:
    """PostgreSQL database, Redis db, fixture site, API process and one worker."""

    def __enter__(self) -> Environment:
        self.site = FixtureSite().start()
        self.log_dir = LOG_DIR
        self.log_dir.mkdir(parents=True, exist_ok=True)
        os.environ.update(
            {
                "DATABASE_URL": services.create_pg_database(BENCH_DB),
                "REDIS_URL": services.REDIS_URL,
                "QUEUE_NAME": services.QUEUE_NAME,
                "CRAWLER_SITE_ALIASES": f"{self.site.host}=royalroad",
                "CRAWLER_DOWNLOAD_DELAY": "0",  # politeness set aside, as in the goal
                "CRAWLER_CONCURRENT_REQUESTS": "32",
                "CRAWLER_SITE_CONCURRENCY": "32",
                "API_PORT": str(services.free_port()),
                "LOG_LEVEL": "INFO",  # the worker logs each job's phases and peak RSS
            }
        )
        services.clear_settings_caches()
        services.migrate()
        self.api_url = f"http://127.0.0.1:{os.environ['API_PORT']}"
        self.api = subprocess.Popen(
            [sys.executable, "main.py"],
            cwd=services.ROOT,
            stdout=(self.log_dir / "api.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.worker = services.WorkerProcess(log_dir=self.log_dir)
        services.wait_for(self._api_up, timeout=30)
        return self

    def _api_up(self) -> bool:
        try:
            http("GET", f"{self.api_url}/health")
        except OSError:
            return False
        return True

    def reset(self) -> None:
        """Empty tables, and no trace in Redis of the jobs they held: row ids start at 1
        again, and a stale RQ job of the same id would be a suspect the Pusher waits on."""
        from ingestion_queue import KEY_PREFIX

        services.truncate_all()
        connection = Redis.from_url(services.REDIS_URL)
        for pattern in STALE_KEYS:
            delete_matching(connection, pattern.format(prefix=KEY_PREFIX))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.worker.stop()
        self.api.terminate()
        self.api.wait(10)
        self.site.stop()
        services.clear_settings_caches()
        services.drop_pg_database(BENCH_DB)


def submit_and_wait(
    env: Environment, fiction_id: int, *, timeout: float = 600
) -> tuple[dict[str, Any], float]:
    """POST the fiction's URL and follow its job until it ends (or `timeout`): the job as
    GET /jobs shows it then, and the client's seconds from the POST.

    The client polls slowly (every 50 ms) so that it does not take CPU from the worker on
    a 2-core machine; the job's own timestamps give its time.
    """
    started = time.perf_counter()
    accepted = http(
        "POST", f"{env.api_url}/ingest", {"url": env.site.url(f"/fiction/{fiction_id}")}
    )
    deadline = time.monotonic() + timeout
    while True:
        job = http("GET", f"{env.api_url}/jobs/{accepted['job_id']}")
        if job["status"] in ("done", "error") or time.monotonic() > deadline:
            return job, time.perf_counter() - started
        time.sleep(0.05)


def job_seconds(job: dict[str, Any]) -> float:
    """The job's own created_at (the API's row) -> finished_at (the worker's DONE)."""
    created, finished = (datetime.fromisoformat(job[k]) for k in ("created_at", "finished_at"))
    return (finished - created).total_seconds()


def ingest_once(env: Environment, fiction_id: int) -> float:
    """Seconds from the API's row to the worker's DONE, by the job's own timestamps;
    asserts DONE with every chapter saved."""
    from tests.fixture_site import content

    fiction = content.fiction(fiction_id)
    assert fiction is not None
    job, _ = submit_and_wait(env, fiction_id)
    assert job["status"] == "done", job
    assert job["progress"]["chapters_saved"] == len(fiction.chapters)
    return job_seconds(job)


def sequential_baseline(env: Environment, fiction_id: int) -> float:
    """Fetch and parse the same pages one at a time, as a sequential crawler does."""
    from crawler.sites.royalroad import ADAPTER

    started = time.perf_counter()
    url = env.site.url(f"/fiction/{fiction_id}")
    with urllib.request.urlopen(url, timeout=30) as response:
        novel = ADAPTER.parse_fiction(response.read().decode(), response.url)
    for ref in (r for r in novel.chapters if not r.locked):
        with urllib.request.urlopen(ref.url, timeout=30) as response:
            ADAPTER.parse_chapter(response.read().decode(), ref)
    return time.perf_counter() - started


def peak_rss_mib(env: Environment) -> tuple[float, float]:
    """(work-horse peak RSS of the last job, worker parent RSS now), from the worker."""
    peaks = re.findall(r"peak RSS (\d+) MiB", env.worker.log())
    status = Path(f"/proc/{env.worker.pid}/status").read_text()
    parent = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    return float(peaks[-1]) if peaks else float("nan"), parent


def with_latency(env: Environment, seconds: float) -> dict[str, float]:
    """The same comparison when every page takes `seconds` to serve, as real sites do."""
    env.site.delay = seconds
    try:
        env.reset()
        ours = ingest_once(env, BIG_FICTION)
        baseline = sequential_baseline(env, BIG_FICTION)
    finally:
        env.site.delay = 0.0
    print(
        f"end to end with {seconds * 1000:.0f} ms per page: ours {ours:.2f} s; sequential"
        f" fetch+parse baseline {baseline:.2f} s; ratio baseline/ours {baseline / ours:.1f}x"
    )
    return {"latency_ours_s": ours, "latency_sequential_s": baseline}


def run(env: Environment, *, quick: bool = False) -> dict[str, object]:
    rounds = 1 if quick else 3
    ours, baseline = [], []
    for _ in range(rounds):
        env.reset()
        ours.append(ingest_once(env, BIG_FICTION))
        baseline.append(sequential_baseline(env, BIG_FICTION))
    horse, parent = peak_rss_mib(env)
    result = {
        "horse_peak_rss_mib": horse,
        "worker_parent_rss_mib": parent,
        "ours_s": min(ours),
        "ours_median_s": statistics.median(ours),
        "sequential_baseline_s": min(baseline),
        "speedup_vs_sequential": min(baseline) / min(ours),
    }
    print(
        "end to end, 160 chapters (API -> RQ -> Scrapy -> PostgreSQL):"
        f" best {result['ours_s']:.2f} s,"
        f" median {result['ours_median_s']:.2f} s; sequential fetch+parse baseline"
        f" {result['sequential_baseline_s']:.2f} s; ratio baseline/ours"
        f" {result['speedup_vs_sequential']:.2f}x"
    )
    print(
        f"memory: work-horse peak RSS for the 160-chapter job {horse:.0f} MiB; the preloaded"
        f" worker parent it forks from {parent:.0f} MiB; ratio {horse / parent:.2f}"
    )
    return {**result, **with_latency(env, 0.02)}
