"""Kill things for real and check that every job still ends, with its data written once.

Each test reports its figures (printed in the "figures" section at the end of the run:
jobs submitted / done / error / lost / duplicated, seconds from the end of the fault until
every job had ended) and asserts: zero lost (non-terminal at the end), zero duplicated
(chapter, novel or job rows beyond one per submission, or a job moved to DONE twice), and
every job DONE with exact chapter counts.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from db import session_scope
from models import Chapter, IngestionJob, JobEvent, Novel
from tests.chaos.conftest import Chaos
from tests.fixture_site import content
from tests.utils import chaos as tools
from tests.utils.jobs import counts, wait_rows_terminal
from tests.utils.services import ROOT, free_port, wait_for

pytestmark = pytest.mark.chaos


def _submit(env: Chaos, fiction_ids: list[int]) -> list[int]:
    ids = []
    for fiction_id in fiction_ids:
        response = env.api.post("/ingest", json={"url": env.site.url(f"/fiction/{fiction_id}")})
        assert response.status_code == 202, response.text
        ids.append(response.json()["job_id"])
    return ids


def _verdict(
    env: Chaos,
    job_ids: list[int],
    fiction_ids: list[int],
    started: float,
    *,
    fault_over: float | None = None,
    fault: str = "",
) -> dict:
    """Wait for every job to end; report and check the figures.

    `fault_over` is when the fault ended (the last kill, Redis back, PostgreSQL up).
    """
    statuses = wait_rows_terminal(job_ids, timeout=180)
    ended = time.monotonic()
    tally = Counter(statuses.values())
    novels, chapters, _ = counts()
    expected = sum(len(content.fiction(f).chapters) for f in set(fiction_ids))
    duplicated = {  # rows or effects beyond what one run of each job writes
        "chapters": chapters - expected,
        "novels": novels - len(set(fiction_ids)),
        "jobs": _job_rows() - len(job_ids),
        "done_twice": _done_twice(job_ids),
    }
    figures = {
        "submitted": len(job_ids),
        "done": tally["done"],
        "error": tally["error"],
        "lost": sum(n for s, n in tally.items() if s not in ("done", "error")),
        "duplicated": sum(duplicated.values()),
        "novels": novels,
        "chapters": chapters,
        "seconds": round(ended - started, 1),
        "recovered_s": round(ended - (fault_over or started), 1),
    }
    env.report(f"{fault}; {figures}" if fault else str(figures))
    assert figures["lost"] == 0, env.supervisor.logs()
    assert tally["done"] == len(job_ids), _errors(job_ids)  # says why, before the counts
    assert duplicated == dict.fromkeys(duplicated, 0), duplicated
    _assert_exact_chapters(fiction_ids)
    return figures


def _job_rows() -> int:
    with session_scope() as session:
        return session.execute(select(func.count(IngestionJob.id))).scalar_one()


def _done_twice(job_ids: list[int]) -> int:
    """Jobs whose history shows more than one move to DONE (a run that wrote twice)."""
    with session_scope() as session:
        stmt = (
            select(JobEvent.job_id)
            .where(JobEvent.job_id.in_(job_ids), JobEvent.status == "done")
            .group_by(JobEvent.job_id)
            .having(func.count() > 1)
        )
        return len(session.execute(stmt).all())


def _errors(job_ids: list[int]) -> list[str]:
    """Each failed job's error and history, to say why it failed."""
    with session_scope() as session:
        stmt = select(IngestionJob.id, IngestionJob.error_message).where(
            IngestionJob.id.in_(job_ids), IngestionJob.status == "error"
        )
        failed = list(session.execute(stmt))
        moves = {
            job_id: [
                f"{e.status}: {e.message}"
                for e in session.execute(
                    select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
                ).scalars()
            ]
            for job_id, _ in failed
        }
    return [f"job {job_id}: {message}; history {moves[job_id]}" for job_id, message in failed]


def _assert_exact_chapters(fiction_ids: list[int]) -> None:
    with session_scope() as session:
        stmt = (
            select(Novel.site_novel_id, func.count(Chapter.id))
            .join(Chapter, Chapter.novel_id == Novel.id)
            .group_by(Novel.site_novel_id)
        )
        stored = dict(session.execute(stmt).all())
    expected = {str(f): len(content.fiction(f).chapters) for f in set(fiction_ids)}
    assert stored == expected


STORM = ("horse", "horse", "worker", "horse", "worker")  # repeated: 8 kills make 5 + 3
LEAST = {"horse": 5, "worker": 3}


def test_random_sigkills_of_horses_and_workers_lose_nothing(chaos: Chaos) -> None:
    chaos.site.delay = 0.05  # a job takes ~0.5 s: horses are there to be killed
    fiction_ids = [5000 + n for n in range(200)]
    started = time.monotonic()
    job_ids = _submit(chaos, fiction_ids)
    kills: Counter[str] = Counter()
    last_kill = started
    rng = random.Random(7)  # which worker, which horse
    storm = itertools.cycle(STORM)
    kind = next(storm)
    spare = iter(range(5600, 5800))  # more fictions, should the work end before the storm
    while time.monotonic() - started < 240:  # kill until both counts are met and all ended
        tick = time.monotonic()
        delivered = all(kills[k] >= n for k, n in LEAST.items())
        if all(s in ("done", "error") for s in wait_rows_terminal(job_ids, timeout=0).values()):
            if delivered:
                break
            more = [next(spare) for _ in range(20)]  # jobs for the kills still owed
            job_ids += _submit(chaos, more)
            fiction_ids += more
        if not delivered or rng.random() < 0.5:  # owed kills first; then some more, by chance
            target = _victim(chaos, kind, rng)
            if target is not None and tools.kill(target):
                kills[kind] += 1
                last_kill = time.monotonic()
                kind = next(storm)  # a tick that found no victim tries the same kind again
        time.sleep(max(0.0, 2.0 - (time.monotonic() - tick)))  # a kill every ~2 s
    storm_s = round(last_kill - started, 1)
    fault = f"SIGKILLed {dict(kills)} over {storm_s} s"
    figures = _verdict(chaos, job_ids, fiction_ids, started, fault_over=last_kill, fault=fault)
    assert all(kills[k] >= n for k, n in LEAST.items()), (dict(kills), figures)  # 240 s ran out


def _victim(env: Chaos, kind: str, rng: random.Random) -> int | None:
    """A random worker, or a random horse in the middle of a job (waiting up to 1 s for one)."""
    workers = env.supervisor.worker_pids()
    if kind == "worker":
        return rng.choice(workers) if workers else None
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        horses = env.supervisor.horse_pids(workers)
        if horses:
            return rng.choice(horses)
        time.sleep(0.05)
    return None


def test_redis_outage_mid_run_loses_nothing(chaos: Chaos) -> None:
    chaos.site.delay = 0.05
    # One fiction's job fails its first run with a 429 asking for 5 s: its retry is waiting
    # in RQ's scheduled registry when Redis dies, and must still run once Redis is back.
    retried = 5229
    chaos.site.fail_next(f"/fiction/{retried}", count=2, status=429, retry_after=5)
    first = [5200 + n for n in range(30)]
    started = time.monotonic()
    job_ids = _submit(chaos, first)
    retried_job = job_ids[first.index(retried)]
    assert wait_for(lambda: _retry_pending(retried_job), timeout=60), chaos.supervisor.logs()
    time.sleep(1.5)  # the AOF is fsynced every second: the scheduled retry is on disk
    chaos.redis.crash()  # SIGKILL: no final flush
    outage = time.monotonic()
    during = [5230 + n for n in range(20)]
    for fiction_id in during:  # ingests keep arriving while Redis is down
        response = chaos.api.post("/ingest", json={"url": chaos.site.url(f"/fiction/{fiction_id}")})
        assert response.status_code == 202
        assert "when the queue is reachable" in response.json()["message"]
        job_ids.append(response.json()["job_id"])
        time.sleep(1.0)
    chaos.redis.start()
    back = time.monotonic()
    fault = f"Redis SIGKILLed, down {back - outage:.1f} s, {len(during)} ingests meanwhile"
    _verdict(chaos, job_ids, first + during, started, fault_over=back, fault=fault)
    with session_scope() as session:
        job = session.get(IngestionJob, retried_job)
        assert job is not None and job.attempts == 2 and "HTTP 429" in (job.last_error or "")


def _retry_pending(job_id: int) -> bool:
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        return job is not None and job.status == "queued" and job.attempts == 1


def test_postgresql_restart_mid_run_loses_nothing(chaos: Chaos) -> None:
    chaos.site.delay = 0.05
    fiction_ids = [5300 + n for n in range(40)]
    started = time.monotonic()
    job_ids = _submit(chaos, fiction_ids)
    time.sleep(2)
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        timeout=120,
    )
    up = time.monotonic()
    fault = f"PostgreSQL restarted {up - started:.1f} s into the run"
    _verdict(chaos, job_ids, fiction_ids, started, fault_over=up, fault=fault)


def test_api_killed_between_commit_and_enqueue_still_completes(chaos: Chaos) -> None:
    port = free_port()
    env = {"FAULT_INJECTION": "kill-after-commit", "API_PORT": str(port)}
    api = subprocess.Popen([sys.executable, "main.py"], cwd=ROOT, env={**os.environ, **env})

    assert wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), timeout=30)
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):  # the API dies mid-request
        httpx.post(f"http://127.0.0.1:{port}/ingest", json={"url": chaos.site.url("/fiction/1002")})
    assert api.wait(10) == -9
    killed = time.monotonic()
    with session_scope() as session:
        [job_id] = session.execute(select(IngestionJob.id)).scalars().all()
    fault = "API SIGKILLed between commit and enqueue"
    _verdict(chaos, [job_id], [1002], started, fault_over=killed, fault=fault)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code in (200, 503)
    except httpx.TransportError:
        return False


def test_warm_stop_of_workers_lets_running_jobs_finish(chaos: Chaos) -> None:
    chaos.site.delay = 0.6  # each job takes a few seconds
    fiction_ids = [1002, 5400, 5401]
    started = time.monotonic()
    job_ids = _submit(chaos, fiction_ids)
    assert wait_for(lambda: _running(job_ids) == 3, timeout=30)
    out = chaos.supervisor.ctl("stop", "worker:*")  # SIGTERM to each worker, as the units do
    stopped = time.monotonic()
    with session_scope() as session:
        attempts = session.execute(
            select(IngestionJob.attempts).where(IngestionJob.id.in_(job_ids))
        ).scalars()
        assert list(attempts) == [1, 1, 1]  # finished by the run that had them, not retried
    fault = f"supervisorctl stop worker:* during 3 jobs ({' '.join(out.split())})"
    _verdict(chaos, job_ids, fiction_ids, started, fault_over=stopped, fault=fault)
    assert chaos.supervisor.worker_pids() == []


def _running(job_ids: list[int]) -> int:
    with session_scope() as session:
        stmt = select(func.count(IngestionJob.id)).where(
            IngestionJob.id.in_(job_ids), IngestionJob.status == "crawling"
        )
        return session.execute(stmt).scalar_one()
