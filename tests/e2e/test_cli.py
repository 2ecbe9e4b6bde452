"""cli.py commands as a user runs them, against the real services and a worker."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from db import session_scope
from models import IngestionJob, JobStatus, Novel
from models.base import utcnow
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import counts, wait_rows_terminal
from tests.utils.services import QUEUE_KEY, ROOT

pytestmark = pytest.mark.usefixtures("pg_db")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "cli.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_ingest_wait_status_and_cancel(fixture_site: FixtureSite, start_worker: Any) -> None:
    start_worker()
    ingest = cli("ingest", fixture_site.url("/fiction/1002/x"), "--wait", "--timeout", "60")
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "job 1 created (queued)" in ingest.stdout
    assert "status: done" in ingest.stdout
    assert counts() == (1, 5, 0)
    status = cli("status", "1")
    assert "chapters_saved: 5" in status.stdout
    listing = cli("status")
    assert "1 jobs" in listing.stdout and "done" in listing.stdout
    cancel = cli("cancel", "1")
    assert cancel.returncode == 1 and "had already ended" in cancel.stdout


def test_ingest_of_a_failing_fiction_exits_non_zero(
    fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    ingest = cli("ingest", fixture_site.url("/fiction/2001"), "--wait", "--timeout", "60")
    assert ingest.returncode == 1
    assert "not a Royal Road fiction page" in ingest.stdout


def test_ingest_of_a_bad_url_says_why() -> None:
    ingest = cli("ingest", "https://example.com/story/1")
    assert ingest.returncode == 2
    assert "example.com is not a supported site" in ingest.stdout


def test_reconcile_once_reports_what_it_did() -> None:
    result = cli("reconcile")
    assert result.returncode == 0
    assert "recovered 0, failed 0, pushed 0 of 0 queued, moved 0 due retries" in result.stdout
    assert "scheduled 0 refreshes" in result.stdout


@pytest.mark.parametrize("command", [("status", "999"), ("cancel", "999")])
def test_an_unknown_job_is_one_line_not_a_traceback(command: tuple[str, str]) -> None:
    result = cli(*command)
    assert result.returncode == 2
    assert "job 999 not found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_process_queue_with_redis_down_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    cli("ingest", "https://www.royalroad.com/fiction/4242")  # stays QUEUED: Redis is down
    result = cli("process-queue")
    assert result.returncode == 2
    assert "Redis unavailable" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def _store_novels(count: int, *, due: bool = False) -> list[int]:
    """Stored novels (as an earlier ingest left them), due for a refresh or not."""
    when = utcnow() + timedelta(hours=-1 if due else 1)
    with session_scope() as session:
        novels = [
            Novel(
                site="royalroad",
                site_novel_id=str(8100 + n),
                url=f"https://www.royalroad.com/fiction/{8100 + n}",
                title=f"Stored {n}",
                next_refresh_at=when,
            )
            for n in range(count)
        ]
        session.add_all(novels)
        session.flush()
        return [novel.id for novel in novels]


def _job_rows() -> list[IngestionJob]:
    with session_scope() as session:
        return list(session.execute(select(IngestionJob).order_by(IngestionJob.id)).scalars())


def test_refresh_of_a_stored_novel_runs_as_an_update(
    fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    ingest = cli("ingest", fixture_site.url("/fiction/1002/x"), "--wait", "--timeout", "60")
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    novel_id = _job_rows()[0].novel_id
    refresh = cli("refresh", str(novel_id))
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    assert f"novel {novel_id}: job 2 created (queued)" in refresh.stdout
    assert wait_rows_terminal([2], timeout=60) == {2: "done"}
    job = _job_rows()[1]
    assert (job.origin, job.priority, job.full) == ("refresh", "normal", False)
    assert job.novel_id == novel_id
    assert counts() == (1, 5, 0)
    # --wait follows the update to its end and prints what it changed
    waited = cli("refresh", str(novel_id), "--full", "--wait", "--timeout", "60")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "changes: 0 new, 0 updated, 0 removed, 5 unchanged" in waited.stdout


def test_refresh_submits_one_job_and_full_refetches(redis_conn: Redis) -> None:
    first, second = _store_novels(2)
    result = cli("refresh", str(first))
    assert result.returncode == 0 and f"novel {first}: job 1 created (queued)" in result.stdout
    again = cli("refresh", str(first))
    assert again.returncode == 0 and "job 1 already active" in again.stdout
    assert cli("refresh", str(second), "--full").returncode == 0
    rows = _job_rows()
    assert [(j.novel_id, j.origin, j.priority, j.full) for j in rows] == [
        (first, "refresh", "normal", False),
        (second, "refresh", "normal", True),
    ]
    assert redis_conn.lrange(QUEUE_KEY, 0, -1) == [b"ingestion-1", b"ingestion-2"]


def test_refresh_of_an_unknown_novel_exits_non_zero() -> None:
    result = cli("refresh", "999")
    assert result.returncode == 2
    assert "novel 999 not found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("args", [(), ("1", "--all")])
def test_refresh_needs_a_novel_id_or_all(args: tuple[str, ...]) -> None:
    result = cli("refresh", *args)
    assert result.returncode == 2
    assert "NOVEL_ID or --all" in result.stdout + result.stderr


def test_refresh_all_submits_every_stored_novel_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _store_novels(7)
    monkeypatch.setenv("PROCESS_QUEUE_BATCH", "3")  # three batches
    assert cli("refresh", str(ids[0])).returncode == 0  # one has an active job already
    result = cli("refresh", "--all", "--full")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 novels: 6 refresh jobs created, 1 already active, 0 refused" in result.stdout
    rows = _job_rows()
    assert sorted(j.novel_id or 0 for j in rows) == ids
    assert [j.full for j in rows] == [False] + [True] * 6


def test_schedule_submits_due_novels_once_and_says_so(redis_conn: Redis) -> None:
    [due] = _store_novels(1, due=True)
    first = cli("schedule")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "scheduled 1 refreshes" in first.stdout and "jobs 1" in first.stdout
    assert "scheduled 0 refreshes" in cli("schedule").stdout
    [job] = _job_rows()
    assert (job.novel_id, job.origin, job.priority, job.status) == (
        due,
        "schedule",
        "low",
        JobStatus.QUEUED,
    )
    assert redis_conn.lrange(f"{QUEUE_KEY}-low", 0, -1) == [b"ingestion-1"]


def test_schedule_with_refresh_off_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _store_novels(1, due=True)
    monkeypatch.setenv("REFRESH_INTERVAL", "0")
    result = cli("schedule")
    assert result.returncode == 0
    assert "scheduled refresh is off (REFRESH_INTERVAL=0)" in result.stdout
    assert _job_rows() == []


def test_schedule_with_redis_down_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _store_novels(1, due=True)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    result = cli("schedule")
    assert result.returncode == 2
    assert "Redis unavailable" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_help_lists_one_line_per_command() -> None:
    from typer.main import get_group

    from cli import app

    result = cli("--help")
    assert result.returncode == 0
    panel = result.stdout[result.stdout.index("Commands") :].splitlines()[1:]
    rows = [line.strip("│ ") for line in panel if line.startswith("│")]
    names = sorted(get_group(app).commands)
    assert sorted(row.split()[0] for row in rows) == names, result.stdout
    assert "Exit codes: 0 done" in result.stdout


def test_a_failed_job_retried_ends_done_and_the_wait_shows_each_attempt(
    fixture_site: FixtureSite, start_worker: Any
) -> None:
    start_worker()
    fixture_site.fail_next("/fiction/1002", 1, status=404)  # a permanent failure, once
    url = fixture_site.url("/fiction/1002/x")
    failed = cli("ingest", url, "--wait", "--timeout", "60")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "job 1: error after attempt 1/3:" in failed.stdout
    listing = cli("jobs", "--status", "error")
    assert listing.returncode == 0 and "1 error jobs" in listing.stdout
    assert f"\t{fixture_site.url('/fiction/1002')}\t" in listing.stdout  # the URL whole
    retried = cli("retry", "1", "--wait", "--timeout", "60")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "job 1: job 1 created (queued)" in retried.stdout
    assert "attempt 1/3, " in retried.stdout and "status: done" in retried.stdout
    assert counts() == (1, 5, 0)
    again = cli("retry", "1")
    assert again.returncode == 1
    assert "job 1 is done: only a job that ended in error can be retried" in again.stdout
    assert cli("retry", "--all-errors").returncode == 1  # nothing left to retry


def test_stats_and_workers_show_the_fleet(fixture_site: FixtureSite, start_worker: Any) -> None:
    assert cli("workers").returncode == 1  # none yet
    worker = start_worker()
    ingest = cli("ingest", fixture_site.url("/fiction/1002/x"), "--wait", "--timeout", "60")
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    listed = cli("workers")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "1 workers" in listed.stdout
    [row] = [line.split("\t") for line in listed.stdout.splitlines() if worker.name in line]
    assert row[0].startswith(worker.name) and QUEUE_KEY.removeprefix("rq:queue:") in row[3]
    assert row[5] == "1"  # jobs it finished
    figures = cli("stats")
    assert figures.returncode == 0, figures.stdout + figures.stderr
    assert "done\t1" in figures.stdout and "workers: 1" in figures.stdout
    assert "oldest queued job: none" in figures.stdout


def test_stats_with_redis_down_show_the_database_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    cli("ingest", "https://www.royalroad.com/fiction/4242")  # stays QUEUED: Redis is down
    result = cli("stats")
    assert result.returncode == 2
    assert "queued\t1" in result.stdout and "Redis unavailable" in result.stdout


def test_process_queue_dry_run_pushes_nothing(redis_conn: Redis) -> None:
    _store_novels(3)
    assert cli("refresh", "--all").returncode == 0
    redis_conn.delete("rq:job:ingestion-1", "rq:job:ingestion-2")  # two RQ jobs lost
    dry = cli("process-queue", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "3 queued jobs: 2 would be pushed, 1 already on the queue" in dry.stdout
    assert redis_conn.exists("rq:job:ingestion-1", "rq:job:ingestion-2") == 0


def test_purge_keeps_recent_and_active_jobs_and_every_novel() -> None:
    _store_novels(2)
    assert cli("refresh", "--all").returncode == 0
    assert cli("cancel", "1").returncode == 0
    with session_scope() as session:
        job = session.get(IngestionJob, 1)
        assert job is not None
        job.finished_at = utcnow() - timedelta(hours=13)
    assert (
        "1 jobs that ended over 12h ago would be purged"
        in cli("purge", "--older-than", "12h", "--dry-run").stdout
    )
    assert "0 jobs that ended over 30d ago purged" in cli("purge").stdout
    purged = cli("purge", "--older-than", "720m")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert "1 jobs that ended over 12h ago purged (2 history events" in purged.stdout
    assert [job.id for job in _job_rows()] == [2]
    with session_scope() as session:
        assert len(session.execute(select(Novel.id)).all()) == 2
    bad = cli("purge", "--older-than", "a week")
    assert bad.returncode == 2 and "not a duration" in bad.stdout + bad.stderr
