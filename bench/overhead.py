"""Per-job overhead: a one-chapter fiction through the service vs the same crawl in plain Scrapy.

Ours: POST /ingest of fixture fiction 1007 (a fiction page and one chapter) on the real
API process, RQ and one worker, until the job's RQ result is written (a blocking XREAD
on RQ's result stream: no polling), with the database emptied before each sample so every
sample is a first ingest. The job's own created_at -> finished_at is reported too.

Baseline: the same two pages (same URLs) fetched and parsed by the same site adapter in a
minimal scrapy.Spider, with the service's Scrapy settings less its own components
(shared pacing, origin guard, the address-checking resolver, robots.txt, which the
service caches per site), each crawl timed from CrawlerRunner.crawl() to its end, in one
long-lived process whose reactor runs throughout (no reactor start-up is counted).

The overhead is the difference of the medians: what the service adds to a plain crawl
(the API's row and push, RQ's dequeue and fork, the claim, the spool, status moves, the
save). RQ's own floor per job (a no-op job: dequeue, fork, bookkeeping) is shown beside it.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from bench.check import check
from bench.e2e import Environment, http, job_seconds
from tests.utils import services

ONE_CHAPTER = 1007  # the fixture site's one-chapter fiction
TARGET_MS = 50
PHASES = ("claim", "crawl", "parse", "save")


def noop() -> None:
    """A job that does nothing: RQ's own floor (dequeue, fork, bookkeeping)."""


def _span(jobs: list[Job]) -> float:
    for job in jobs:
        job.refresh()
    started = min(j.started_at for j in jobs if j.started_at)
    ended = max(j.ended_at for j in jobs if j.ended_at)
    return (ended - started).total_seconds() / len(jobs)


def rq_floor(count: int) -> float:
    """Seconds per no-op job of a plain RQ worker in burst mode (its fork per job)."""
    connection = Redis.from_url(services.REDIS_URL)
    queue = Queue("bench-noop", connection=connection)
    jobs = [queue.enqueue(noop) for _ in range(count)]
    Worker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    return _span(jobs)


@dataclass(frozen=True)
class Sample:
    client_s: float  # POST sent -> RQ result written, as the client sees it
    row_s: float  # the row's created_at -> finished_at


def _wait_idle(connection: Redis, name: str, timeout: float = 30) -> None:
    """Until the worker is back at its dequeue (the previous horse gone): not timed."""

    def idle() -> bool:
        found = [w for w in Worker.all(connection=connection) if w.name.startswith(name)]
        return bool(found) and all(w.get_state() == "idle" for w in found)

    services.wait_for(idle, timeout=timeout, interval=0.005)


def _reset(env: Environment, tries: int = 5) -> None:
    """env.reset(), again if its TRUNCATE met a deadlock (the reconciler's pass may hold
    one of the tables' locks at that moment)."""
    from sqlalchemy.exc import OperationalError

    for left in range(tries - 1, -1, -1):
        try:
            env.reset()
            return
        except OperationalError:
            if not left:
                raise
            time.sleep(0.2)


def one_job(env: Environment, connection: Redis) -> Sample:
    """One first ingest of the one-chapter fiction, timed from the client."""
    _wait_idle(connection, env.worker.name)
    _reset(env)  # the earlier jobs' result streams too: row ids start again at 1
    url = env.site.url(f"/fiction/{ONE_CHAPTER}")
    started = time.perf_counter()
    accepted = http("POST", f"{env.api_url}/ingest", {"url": url})
    stream = f"rq:results:ingestion-{accepted['job_id']}"
    answer = connection.xread({stream: "0-0"}, block=60_000)
    client = time.perf_counter() - started
    assert answer, f"no RQ result for job {accepted['job_id']} within 60 s"
    job = http("GET", f"{env.api_url}/jobs/{accepted['job_id']}")
    assert job["status"] == "done", job
    assert job["progress"]["chapters_saved"] == 1, job
    return Sample(client_s=client, row_s=job_seconds(job))


def plain_scrapy(env: Environment, count: int) -> list[float]:
    """Seconds per crawl of the same two pages by plain Scrapy, in a process of its own
    (a reactor cannot be restarted in this one), one warm-up crawl first."""
    argv = [sys.executable, "-m", "bench.overhead", env.site.url(f"/fiction/{ONE_CHAPTER}")]
    done = subprocess.run(
        [*argv, str(count)], cwd=services.ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"plain Scrapy crawl failed:\n{done.stderr[-2000:]}")
    times: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def phases(log: str, last: int) -> dict[str, float]:
    """Median ms of each phase over the worker's last `last` "job N done" lines."""
    pattern = r"claim (\d+) ms, crawl (\d+) ms, parse (\d+) ms, save (\d+) ms"
    found = [tuple(map(float, m)) for m in re.findall(pattern, log)][-last:]
    if not found:
        return {}
    return {f"{p}_ms": statistics.median(row[i] for row in found) for i, p in enumerate(PHASES)}


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _ms(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values) * 1000, "p90": p90(values) * 1000}


def run(env: Environment, *, quick: bool = False) -> dict[str, Any]:
    count = 5 if quick else 30
    connection = Redis.from_url(services.REDIS_URL)
    one_job(env, connection)  # warm-up: the API's and the worker's first job
    samples = [one_job(env, connection) for _ in range(count)]
    plain = plain_scrapy(env, count)
    floor = rq_floor(count)
    client, row = _ms([s.client_s for s in samples]), _ms([s.row_s for s in samples])
    baseline = _ms(plain)
    overhead = client["median"] - baseline["median"]
    split = phases(env.worker.log(), count)
    print(
        f"one-chapter fiction, {count} jobs: POST -> DONE median {client['median']:.0f} ms"
        f" (p90 {client['p90']:.0f}); row created -> finished {row['median']:.0f} ms"
        f" (p90 {row['p90']:.0f}); plain Scrapy, same pages, in-process"
        f" {baseline['median']:.0f} ms (p90 {baseline['p90']:.0f}); overhead"
        f" {overhead:.0f} ms; RQ no-op floor {floor * 1000:.1f} ms"
    )
    if split:
        print("  worker's split (medians): " + ", ".join(f"{k} {v:.0f}" for k, v in split.items()))
    return {
        "jobs": count,
        "post_to_done_ms": client["median"],
        "post_to_done_p90_ms": client["p90"],
        "row_created_to_finished_ms": row["median"],
        "row_created_to_finished_p90_ms": row["p90"],
        "plain_scrapy_ms": baseline["median"],
        "plain_scrapy_p90_ms": baseline["p90"],
        "overhead_ms": overhead,
        "overhead_by_row_ms": row["median"] - baseline["median"],
        "rq_noop_ms": floor * 1000,
        "worker_phases_ms": split,
        "checks": [
            check(
                "overhead",
                "per-job overhead (POST -> DONE minus plain Scrapy)",
                overhead,
                "ms",
                at_most=TARGET_MS,
                bound=(
                    "CPU of the 2 cores shared by the API, the worker, its horse and PostgreSQL:"
                    " RQ's fork and bookkeeping (the no-op floor), the horse's copy-on-write"
                    " page faults, and the job's PostgreSQL commits"
                ),
            )
        ],
    }


# --- the baseline's own process: python -m bench.overhead URL COUNT -------------------


def _plain_settings() -> dict[str, Any]:
    """The service's Scrapy settings less the service's own components."""
    from config import get_settings
    from crawler.egress import ALIAS_HOSTS_SETTING
    from crawler.settings import scrapy_settings

    values = scrapy_settings(get_settings())
    for own in ("DNS_RESOLVER", "DOWNLOADER_MIDDLEWARES", ALIAS_HOSTS_SETTING):
        values.pop(own)
    for own in ("ROBOTSTXT_CACHE_TTL", "ROBOTSTXT_CACHE_REDIS_URL", "PACE_REDIS_URL"):
        values.pop(own, None)
    values["ROBOTSTXT_OBEY"] = False  # the service reads it from its per-site cache
    return values


def _plain_main(url: str, count: int) -> None:
    import scrapy
    from scrapy.crawler import CrawlerRunner
    from scrapy.utils import defer as scrapy_defer
    from scrapy.utils.reactor import install_reactor

    from crawler.crawl import CALLBACK_DELAY
    from crawler.settings import REACTOR
    from crawler.sites.royalroad import ADAPTER

    install_reactor(REACTOR)
    from twisted.internet import defer
    from twisted.internet import reactor as installed

    reactor: Any = installed

    scrapy_defer._DEFER_DELAY = CALLBACK_DELAY  # as crawler.crawl sets it for every job

    class Plain(scrapy.Spider):
        """Fiction page, then its chapters, parsed by the site adapter; nothing stored."""

        name = "plain"

        async def start(self) -> Any:
            ref = ADAPTER.fiction_ref(url, base=url.split("/fiction/")[0])
            first = ADAPTER.first_fetch(ref)
            yield scrapy.Request(first.url, cb_kwargs={"fetch": first})

        def parse(self, response: Any, fetch: Any) -> Any:
            step = ADAPTER.read_listing(response.text, response.url, fetch, None)
            assert step.novel is not None and not step.follow
            for page in ADAPTER.chapter_fetches(step.novel):
                yield scrapy.Request(page.url, callback=self.chapter, cb_kwargs={"fetch": page})

        def chapter(self, response: Any, fetch: Any) -> None:
            chapters.extend(ADAPTER.parse_chapters(response.text, fetch))

    runner = CrawlerRunner(_plain_settings())
    times: list[float] = []
    chapters: list[Any] = []

    @defer.inlineCallbacks
    def crawls() -> Any:
        for n in range(count + 1):  # the first warms up: not counted
            started = time.perf_counter()
            yield runner.crawl(Plain)
            assert len(chapters) == n + 1, "the plain crawl did not parse its chapter"
            if n:
                times.append(time.perf_counter() - started)
        reactor.stop()

    reactor.callWhenRunning(crawls)
    reactor.run()
    print(json.dumps(times))


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    _plain_main(sys.argv[1], int(sys.argv[2]))
