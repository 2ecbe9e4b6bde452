"""Real services for tests: a PostgreSQL database per run, a Redis db, worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psycopg2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
PG_DSN = os.environ.get("TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
PG_URL_BASE = os.environ.get("TEST_PG_URL_BASE", "postgresql+psycopg2://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
# A queue of this test run's own: workers left over from another run never take its jobs.
QUEUE_NAME = f"ingestion-test-{os.getpid()}"
QUEUE_KEY = f"rq:queue:{QUEUE_NAME}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _admin(*statements: tuple[str, tuple[str, ...]]) -> None:
    connection = psycopg2.connect(PG_DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
    connection.close()


def drop_pg_database(name: str) -> None:
    _admin(
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)),
        (f'DROP DATABASE IF EXISTS "{name}"', ()),
    )


def create_pg_database(name: str) -> str:
    """(Re)create an empty database `name`; return its SQLAlchemy URL."""
    drop_pg_database(name)
    _admin((f'CREATE DATABASE "{name}"', ()))
    return f"{PG_URL_BASE}/{name}"


def clear_settings_caches() -> None:
    import db
    from config import get_settings

    get_settings.cache_clear()
    if db.get_engine.cache_info().currsize:
        db.get_engine().dispose()
    db.get_engine.cache_clear()
    db.get_session_factory.cache_clear()


def migrate() -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def truncate_all() -> None:
    from db import get_engine

    engine = get_engine()
    tables = "spooled_pages, chapters, job_events, ingestion_jobs, novels"
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        else:
            for table in tables.split(", "):
                connection.execute(text(f"DELETE FROM {table}"))


def wait_for(check: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


class WorkerProcess:
    """`python worker.py` as a real process, with its log kept for failure reports."""

    def __init__(self, *args: str, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"{self.name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        argv = [sys.executable, "worker.py", "--name", self.name, *args]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=self._log, stderr=self._log
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, *, timeout: float = 30) -> int | None:
        """Warm stop (SIGTERM, as the units send it); kill if it does not exit in time."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")
