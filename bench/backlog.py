"""Backlog: `cli.py process-queue` over 100,000 QUEUED rows vs raw RQ `enqueue_many`.

The rows go straight into PostgreSQL (one COPY: valid rows of distinct fictions, as the
API would leave them, with no RQ job). `cli.py process-queue` then runs as an operator
runs it: a fresh process (interpreter start-up and imports included) with the
benchmark's DATABASE_URL, REDIS_URL and QUEUE_NAME, until it exits. Redis must then hold
exactly one RQ job per row, each once on the normal queue's list.

Baseline, on the same Redis db in the same run: RQ's own `Queue.enqueue_many` of as many
jobs (`Queue.prepare_data` with our job function, arguments and options), in
transactions of PROCESS_QUEUE_BATCH jobs, timed in-process (no start-up, no database,
no look at what Redis holds already), then removed. A second process-queue pass over the
rows already queued is timed too (it pushes nothing: every job is found on its list).
The workers are stopped meanwhile (they would take the jobs, and their reconciler pass
pushes QUEUED rows too).
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq import Queue

from bench.check import check
from bench.e2e import Environment, delete_matching
from tests.utils import services

ROWS, QUICK_ROWS = 100_000, 10_000
FIRST_FICTION = 1_000_000  # site ids of the made-up fictions (the fixture site has none)
RAW_QUEUE = "bench-raw-enqueue"
COLUMNS = (
    "source_url, site, site_novel_id, status, attempts, chapters_found, chapters_fetched,"
    " chapters_saved, priority, origin, created_at, updated_at"
)
TARGET_PCT = 70.0


def insert_queued(env: Environment, count: int) -> None:
    """`count` QUEUED rows of distinct fictions, in one COPY."""
    from db import get_engine

    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    lines = io.StringIO()
    for n in range(FIRST_FICTION, FIRST_FICTION + count):
        url = env.site.url(f"/fiction/{n}")
        lines.write(f"{url}\troyalroad\t{n}\tqueued\t0\t0\t0\t0\tnormal\tuser\t{now}\t{now}\n")
    lines.seek(0)
    connection: Any = get_engine().raw_connection()  # psycopg2's, for its COPY
    try:
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY ingestion_jobs ({COLUMNS}) FROM STDIN", lines)
        connection.commit()
    finally:
        connection.close()


def process_queue(env: Environment) -> tuple[float, str]:
    """Seconds `cli.py process-queue` takes, start-up included, and its last line."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "cli.py", "process-queue"],
        cwd=services.ROOT,
        env={**os.environ, "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    elapsed = time.perf_counter() - started
    (env.log_dir / "backlog-process-queue.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"process-queue exited {done.returncode}: {done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return elapsed, lines[-1] if lines else ""


def verify_queued(connection: Redis, count: int) -> None:
    """Exactly one RQ job per row, each once on the normal queue's list, nothing else."""
    from ingestion_queue import get_queue, queues, rq_job_id

    listed = [i.decode() for i in connection.lrange(get_queue().key, 0, -1)]
    expected = {rq_job_id(job_id) for job_id in range(1, count + 1)}
    if len(listed) != count or set(listed) != expected:
        raise RuntimeError(
            f"the queue lists {len(listed)} ids ({len(set(listed))} distinct) for {count} rows"
        )
    others = sum(connection.llen(q.key) for q in queues() if q.key != get_queue().key)
    hashes = sum(1 for _ in connection.scan_iter(match="rq:job:ingestion-*", count=10_000))
    if others or hashes != count:
        raise RuntimeError(f"{hashes} RQ job hashes for {count} rows; {others} on other queues")


def raw_enqueue_many(connection: Redis, count: int, batch: int) -> float:
    """RQ's own enqueue_many of `count` jobs shaped as ours, `batch` per transaction."""
    from config import get_settings
    from ingestion_queue import HARD_TIMEOUT_MARGIN, perform

    settings = get_settings()
    queue = Queue(RAW_QUEUE, connection=connection)
    started = time.perf_counter()
    for first in range(1, count + 1, batch):
        datas = [
            Queue.prepare_data(
                perform,
                args=(job_id,),
                job_id=f"raw-{job_id}",
                timeout=settings.job_timeout + HARD_TIMEOUT_MARGIN,
                result_ttl=settings.result_ttl,
                failure_ttl=settings.failure_ttl,
                description=f"ingest job {job_id}",
            )
            for job_id in range(first, min(first + batch, count + 1))
        ]
        with connection.pipeline() as pipe:
            queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()
    elapsed = time.perf_counter() - started
    if connection.llen(queue.key) != count:
        raise RuntimeError(f"raw enqueue_many listed {connection.llen(queue.key)} of {count}")
    return elapsed


def remove_raw(connection: Redis) -> None:
    delete_matching(connection, "rq:job:raw-*")
    connection.delete(Queue(RAW_QUEUE, connection=connection).key)
    connection.srem(Queue.redis_queues_keys, Queue(RAW_QUEUE, connection=connection).key)


def one_round(env: Environment, count: int, batch: int) -> dict[str, float]:
    connection = Redis.from_url(services.REDIS_URL)
    env.reset()  # our RQ jobs and locks of the round before go with the rows
    started = time.perf_counter()
    insert_queued(env, count)
    inserted = time.perf_counter() - started
    first, line = process_queue(env)
    verify_queued(connection, count)
    second, again = process_queue(env)
    verify_queued(connection, count)
    raw = raw_enqueue_many(connection, count, batch)
    remove_raw(connection)
    print(
        f"backlog, {count:,} QUEUED rows (COPY {inserted:.1f} s): process-queue {first:.2f} s"
        f" ({line}); raw enqueue_many {raw:.2f} s, {raw / first:.0%} of ours; a second pass"
        f" {second:.2f} s ({again})"
    )
    return {"process_queue_s": first, "raw_enqueue_many_s": raw, "second_pass_s": second}


def run(env: Environment, *, quick: bool = False) -> dict[str, Any]:
    from config import get_settings

    count = QUICK_ROWS if quick else ROWS
    batch = get_settings().process_queue_batch
    env.worker.stop()  # it would take the jobs; its reconciler pass pushes QUEUED rows too
    rounds: list[dict[str, float]] = []
    try:
        for _ in range(1 if quick else 3):
            rounds.append(one_round(env, count, batch))
    finally:
        env.reset()
        env.worker = services.WorkerProcess(log_dir=env.log_dir)
    ours = statistics.median(r["process_queue_s"] for r in rounds)
    raw = statistics.median(r["raw_enqueue_many_s"] for r in rounds)
    second = statistics.median(r["second_pass_s"] for r in rounds)
    ratio = 100 * raw / ours
    label = f"{count // 1000}k"
    return {
        "rows": count,
        "batch": batch,
        "process_queue_s": ours,
        "raw_enqueue_many_s": raw,
        "second_pass_s": second,
        "rows_per_s": count / ours,
        "rounds": rounds,
        "checks": [
            check(
                "backlog",
                f"process-queue / raw enqueue_many, {label} rows",
                ratio,
                "%",
                at_least=TARGET_PCT,
                bound="Redis round trips and building each RQ job's hash in Python, on the"
                " same 2 cores as Redis and PostgreSQL; ours adds the process's start-up, the"
                " rows' read and a look at each job before it is pushed",
            )
        ],
    }
