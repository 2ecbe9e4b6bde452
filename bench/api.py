"""Ingest API: POST /ingest throughput and latency at 1, 16 and 64 concurrent clients, as
a ratio to the same server's no-I/O endpoint (GET /health/live) under the same load.

The load comes from another process (bench/load.py: keep-alive clients on raw asyncio
streams, one request at a time each) against the real API process (main.py). Every POST
sends a fiction URL of its own on the fixture site (ids from FIRST_ID up: no two requests
name the same fiction, so each one creates a job: a row committed, then an RQ push) and
must be answered 202; any other answer is counted and reported, a 5xx fails the run.
The worker is stopped while it measures, so no job is processed: the table and the queue
grow by every request (tens of thousands of rows in a full run). Afterwards the tables and
the queue are emptied and a fresh worker is started.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from redis import Redis
from sqlalchemy import func, select

from bench.check import check
from bench.e2e import Environment
from tests.utils import services

LEVELS = (1, 16, 64)  # concurrent clients
FIRST_ID = 10_000_000  # fiction ids beyond the fixture site's own: nothing else names them
TARGET_RATIO = 50.0  # % of the no-I/O endpoint's throughput, 16 clients
TARGET_P99_MS = 25.0  # at 16 clients

RATIO_BOUND = (
    "the API process's own CPU: each POST (one uvicorn worker, h11, a sync route in the"
    " threadpool) costs ~15 ms of Python CPU in SQLAlchemy (6 statements and a commit) and"
    " redis-py/RQ (4 Redis round trips, the job's hash built by RQ) against ~1 ms for the"
    " no-I/O route, with PostgreSQL, Redis and the load generator on the same 2 cores"
)
P99_BOUND = (
    "queueing: 16 clients wait on one process that serves ~60-90 POSTs/s (its CPU, GIL-bound"
    " threads), so p99 is ~16 x the per-request cost; 25 ms at 16 clients needs ~600 POSTs/s"
)


def load(
    url: str, *, clients: int, seconds: float, warmup: float, post_prefix: str = "", first_id: int
) -> dict[str, Any]:
    """bench/load.py's figures for one endpoint and concurrency, from a process of its own."""
    argv = [sys.executable, "-m", "bench.load", "--url", url, "--clients", str(clients)]
    argv += ["--seconds", str(seconds), "--warmup", str(warmup), "--first-id", str(first_id)]
    if post_prefix:
        argv += ["--post-url-prefix", post_prefix]
    done = subprocess.run(argv, cwd=services.ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _others(figures: dict[str, Any], expected: str) -> int:
    return sum(n for status, n in figures["statuses"].items() if status != expected)


def _refuse_failures(name: str, figures: dict[str, Any], expected: str) -> None:
    server_errors = {s: n for s, n in figures["statuses"].items() if s.startswith("5")}
    if server_errors or figures["errors"]:
        raise RuntimeError(
            f"{name} at {figures['clients']} clients: server errors {server_errors},"
            f" connection errors {figures['errors']} (see {services.ROOT}/api.log in BENCH_LOG_DIR)"
        )
    if not figures["requests"]:
        raise RuntimeError(f"{name} at {figures['clients']} clients: no request answered")
    if others := _others(figures, expected):
        print(f"api: {name} at {figures['clients']} clients: {others} answers not {expected}")


def _level(env: Environment, clients: int, *, seconds: float, warmup: float, first_id: int) -> Any:
    live = load(
        f"{env.api_url}/health/live", clients=clients, seconds=seconds, warmup=warmup, first_id=0
    )
    _refuse_failures("GET /health/live", live, "200")
    ingest = load(
        f"{env.api_url}/ingest",
        clients=clients,
        seconds=seconds,
        warmup=warmup,
        post_prefix=env.site.url("/fiction/"),
        first_id=first_id,
    )
    _refuse_failures("POST /ingest", ingest, "202")
    ratio = 100 * ingest["per_second"] / live["per_second"]
    print(
        f"api, {clients} clients: POST /ingest {ingest['per_second']:.0f} req/s"
        f" (p50 {ingest['p50_ms']:.1f} ms, p99 {ingest['p99_ms']:.1f} ms,"
        f" {_others(ingest, '202')} not 202); GET /health/live {live['per_second']:.0f} req/s"
        f" (p50 {live['p50_ms']:.1f} ms, p99 {live['p99_ms']:.1f} ms); ratio {ratio:.0f}%"
    )
    return {
        "clients": clients,
        "ingest_per_s": ingest["per_second"],
        "ingest_p50_ms": ingest["p50_ms"],
        "ingest_p99_ms": ingest["p99_ms"],
        "ingest_not_202": _others(ingest, "202"),
        "live_per_s": live["per_second"],
        "live_p50_ms": live["p50_ms"],
        "live_p99_ms": live["p99_ms"],
        "ratio_pct": ratio,
        "next_id": ingest["next_id"],
    }


def _grown() -> tuple[int, int]:
    """(job rows, RQ jobs waiting on the normal queue) after the measurement."""
    from db import session_scope
    from models import IngestionJob

    with session_scope() as session:
        rows = session.execute(select(func.count(IngestionJob.id))).scalar_one()
    return rows, int(Redis.from_url(services.REDIS_URL).llen(services.QUEUE_KEY))


def measure(env: Environment, *, seconds: float, warmup: float) -> list[dict[str, Any]]:
    levels: list[dict[str, Any]] = []
    first_id = FIRST_ID
    for clients in LEVELS:
        levels.append(_level(env, clients, seconds=seconds, warmup=warmup, first_id=first_id))
        first_id = levels[-1]["next_id"]
    rows, queued = _grown()
    print(f"api: worker stopped while measuring: {rows} job rows and {queued} RQ jobs queued")
    return levels


def run(env: Environment, *, quick: bool = False) -> dict[str, Any]:
    seconds, warmup = (1.0, 0.3) if quick else (6.0, 1.0)
    env.worker.stop()
    env.reset()  # no RQ job of earlier rows either: a reused id would be a suspect
    try:
        levels = measure(env, seconds=seconds, warmup=warmup)
    finally:
        env.reset()
        env.worker = services.WorkerProcess(log_dir=env.log_dir)
    at16 = next(level for level in levels if level["clients"] == 16)
    checks = [
        check(
            "api",
            "POST /ingest throughput / no-I/O, 16 clients",
            at16["ratio_pct"],
            "%",
            at_least=TARGET_RATIO,
            bound=RATIO_BOUND,
        ),
        check(
            "api",
            "POST /ingest p99, 16 clients",
            at16["ingest_p99_ms"],
            "ms",
            at_most=TARGET_P99_MS,
            bound=P99_BOUND,
        ),
    ]
    return {"levels": levels, "seconds_per_level": seconds, "checks": checks}
