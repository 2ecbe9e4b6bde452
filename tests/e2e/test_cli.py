"""cli.py commands as a user runs them, against the real services and a worker."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import counts
from tests.utils.services import ROOT

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
