"""Chaos set-up: a persistent Redis of our own, supervised workers and reconciler."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.fixture_site.server import FixtureSite
from tests.utils import services
from tests.utils.chaos import RedisServer, Supervisor

CHAOS_ENV = {
    "JOB_MAX_ATTEMPTS": "25",  # every SIGKILL costs a run: the budget must outlast the storm
    "JOB_RETRY_BACKOFF": "0.5",
    "WORKER_HEARTBEAT": "1",
    "STUCK_GRACE": "3",
    "RECONCILE_INTERVAL": "1",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Chaos:
    redis: RedisServer
    supervisor: Supervisor
    api: TestClient
    site: FixtureSite
    tmp: Path
    report: Callable[[str], None]


@pytest.fixture
def chaos(
    pg_db: str,
    fixture_site: FixtureSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Callable[[str], None],
) -> Iterator[Chaos]:
    redis = RedisServer(tmp_path).start()
    for key, value in {**CHAOS_ENV, "REDIS_URL": redis.url}.items():
        monkeypatch.setenv(key, value)
    services.clear_settings_caches()
    supervisor = Supervisor(tmp_path, workers=3, env={}).start()
    from main import create_app

    try:
        with TestClient(create_app()) as api:
            yield Chaos(redis, supervisor, api, fixture_site, tmp_path, figures)
    finally:
        supervisor.stop()
        redis.stop()
        monkeypatch.undo()
        os.environ["DATABASE_URL"] = pg_db
        services.clear_settings_caches()
