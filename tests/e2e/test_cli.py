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
