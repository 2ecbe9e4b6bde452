"""A deployment of only the API and workers recovers on its own: the workers take turns at
the reconciler's pass (one at a time, taken over when its holder dies); a queue emptied by
hand, or a Redis flushed mid-run, strands no job."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import func, select

import reconciler
from config import get_settings
from db import session_scope
from models import JobEvent
from tests.fixture_site.server import FixtureSite
from tests.utils.chaos import children, gone, title
from tests.utils.jobs import counts, submit, wait_rows_terminal
from tests.utils.services import QUEUE_KEY, ROOT, WorkerProcess, wait_for

PASS_LINE = re.compile(r"^(\S+ \S+) reconciler reconcile pass by (\S+): (began|ended)$", re.M)


def _passes(workers: list[WorkerProcess]) -> list[tuple[float, float, str]]:
    """(began, ended, holder) of every finished pass in the workers' logs."""
    spans: list[tuple[float, float, str]] = []
    for worker in workers:
        began: dict[str, float] = {}
        for stamp, holder, event in PASS_LINE.findall(worker.log()):
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if event == "began":
                began[holder] = at
            elif holder in began:
                spans.append((began.pop(holder), at, holder))
    return sorted(spans)


def _holder(redis_conn: Redis) -> str:
    value = redis_conn.get(reconciler.lock_key(get_settings()))
    return value.decode() if value else ""


def _crawls_per_row(job_ids: list[int]) -> dict[int, int]:
    with session_scope() as session:
        rows = session.execute(
            select(JobEvent.job_id, func.count())
            .where(JobEvent.job_id.in_(job_ids), JobEvent.status == "crawling")
            .group_by(JobEvent.job_id)
        ).all()
    return {job_id: count for job_id, count in rows}


def test_workers_run_one_pass_at_a_time_and_take_over_from_a_dead_holder(
    api: TestClient, redis_conn: Redis, start_worker: Any
) -> None:
    env = {"RECONCILE_LOCK_TTL": "5"}  # RECONCILE_INTERVAL is 1 s in tests
    workers = [start_worker(env=env), start_worker(env=env)]
    assert wait_for(lambda: len(_passes(workers)) >= 6, timeout=30), workers[0].log()
    spans = _passes(workers)
    for (_, ended, _), (began, _, _) in pairwise(spans):
        assert began >= ended, spans  # never two passes at once
    window = spans[-1][1] - spans[0][0]
    assert len(spans) <= window / 1.0 + 2, spans  # one per interval over the fleet, not per worker

    assert wait_for(lambda: _holder(redis_conn).startswith(workers[0].name), timeout=30)
    family = children(workers[0].pid)  # RQ's scheduler and the reconciler companion
    assert any("reconciler" in title(pid) for pid in family), [title(p) for p in family]
    workers[0].kill()  # SIGKILL: its companion dies with it, the lock is never released
    killed = time.monotonic()
    for pid in family:
        assert wait_for(lambda pid=pid: gone(pid), timeout=10), f"{title(pid)} outlived it"
    assert wait_for(lambda: _holder(redis_conn).startswith(workers[1].name), timeout=10)
    assert time.monotonic() - killed <= 5 + 2  # within the lock's TTL (and a poll)
    before = len(_passes([workers[1]]))
    assert wait_for(lambda: len(_passes([workers[1]])) > before + 1, timeout=10)


def test_a_queue_emptied_by_hand_is_pushed_again_and_each_job_runs_once(
    api: TestClient, redis_conn: Redis, fixture_site: FixtureSite, start_worker: Any
) -> None:
    job_ids = [submit(api, fixture_site.url(f"/fiction/{5000 + n}")) for n in range(30)]
    assert redis_conn.llen(QUEUE_KEY) == 30
    redis_conn.delete(QUEUE_KEY)  # `redis-cli DEL rq:queue:ingestion`
    out = subprocess.run(
        [sys.executable, "cli.py", "process-queue"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "30 queued jobs: 30 pushed, 0 already on the queue" in out.stdout
    worker = start_worker()
    statuses = wait_rows_terminal(job_ids, timeout=120)
    assert set(statuses.values()) == {"done"}, worker.log()
    assert _crawls_per_row(job_ids) == dict.fromkeys(job_ids, 1)  # each run once
    assert counts()[0] == 30


@pytest.mark.chaos  # flushes Redis under a running fleet
def test_api_and_two_workers_recover_from_a_redis_flushed_mid_run(
    api: TestClient, redis_conn: Redis, fixture_site: FixtureSite, start_worker: Any
) -> None:
    workers = [start_worker(), start_worker()]  # and no reconciler process
    fixture_site.delay = 0.05
    job_ids = [submit(api, fixture_site.url(f"/fiction/{5100 + n}")) for n in range(30)]
    assert wait_for(lambda: _done(job_ids) >= 4, timeout=60), workers[0].log()
    redis_conn.flushdb()  # this test's own db: queues, RQ jobs, locks, all gone
    assert _done(job_ids) < 30
    statuses = wait_rows_terminal(job_ids, timeout=180)
    assert set(statuses.values()) == {"done"}, [w.log()[-3000:] for w in workers]
    novels, _, duplicates = counts()
    assert (novels, duplicates) == (30, 0)  # each novel stored once, no chapter twice


def _done(job_ids: list[int]) -> int:
    return list(wait_rows_terminal(job_ids, timeout=0).values()).count("done")
