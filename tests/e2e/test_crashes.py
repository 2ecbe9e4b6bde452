"""Processes killed mid-job, one at a time: the job is run again and completes, once."""

from __future__ import annotations

import os
import signal
from typing import Any

from fastapi.testclient import TestClient

import reconciler
from config import get_settings
from tests.fixture_site.server import FixtureSite
from tests.utils.chaos import children, gone, title
from tests.utils.jobs import counts, job_in_a_horse, wait_job
from tests.utils.services import wait_for

# The second test runs the reconciler's pass itself: no worker may run it first.
OWN_PASSES = {"WORKER_RECONCILE": "false"}


def test_a_killed_horse_is_run_again_and_the_job_completes(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker, job_id, horse = job_in_a_horse(api, fixture_site, start_worker)
    os.kill(horse, signal.SIGKILL)
    fixture_site.delay = 0.0
    job = wait_job(api, job_id, timeout=60)
    assert job["status"] == "done", worker.log()
    assert job["attempts"] == 2
    assert "work-horse died" in job["last_error"]
    statuses = [e["status"] for e in job["history"]]
    assert statuses == ["queued", "crawling", "queued", "crawling", "parsing", "saving", "done"]
    assert counts() == (1, 5, 0)


def test_a_killed_worker_takes_its_children_along_and_the_job_is_recovered(
    api: TestClient, fixture_site: FixtureSite, start_worker: Any
) -> None:
    worker, job_id, horse = job_in_a_horse(api, fixture_site, start_worker, OWN_PASSES)
    family = children(worker.pid)  # the horse and RQ's scheduler
    assert horse in family and len(family) >= 2, [title(pid) for pid in family]
    worker.kill()  # SIGKILL: no warm stop, no clean-up
    # No child may outlive its worker: an orphaned horse would go on writing to the RQ
    # job that the reconciler hands to the next run, an orphaned scheduler run on forever.
    for pid in family:
        assert wait_for(lambda pid=pid: gone(pid), timeout=10), f"{title(pid)} outlived its worker"
    fixture_site.delay = 0.0
    replacement = start_worker(env=OWN_PASSES)
    settings = get_settings()
    recovered: list[int] = []
    # Once the dead worker's heartbeats are overdue, a reconcile pass sends the row back.
    assert wait_for(
        lambda: bool(recovered.extend(reconciler.reconcile(settings).recovered) or recovered),
        timeout=60,
        interval=0.5,
    )
    assert recovered == [job_id]
    job = wait_job(api, job_id, timeout=60)
    assert job["status"] == "done", replacement.log()
    assert job["attempts"] == 2
    assert "its worker was lost" in job["last_error"]
    assert counts() == (1, 5, 0)
