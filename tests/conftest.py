"""Test set-up: real PostgreSQL and Redis, a local fixture site, real worker processes.

The environment is set before any project module reads its settings; worker processes
started by tests inherit it. PostgreSQL gets a database of its own for the run; Redis a
db index of its own, flushed around each test.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.fixture_site.server import FixtureSite, served_sites
from tests.utils import services

RUN_DB = f"novel_ingest_test_{os.getpid()}"

os.environ.update(
    {
        "REDIS_URL": services.REDIS_URL,
        "QUEUE_NAME": services.QUEUE_NAME,
        "CRAWLER_DOWNLOAD_DELAY": "0",
        "CRAWLER_SITE_CONCURRENCY": "16",
        "CRAWLER_DOWNLOAD_TIMEOUT": "3",
        "CRAWLER_RETRY_TIMES": "1",
        "CRAWLER_RETRY_BACKOFF": "0.1",
        "JOB_RETRY_BACKOFF": "1",
        "JOB_TIMEOUT": "120",
        "WORKER_HEARTBEAT": "1",
        "STUCK_GRACE": "3",
        "RECONCILE_INTERVAL": "1",
        "LOG_LEVEL": "INFO",
        "EXPORT_CACHE_DIR": f"/tmp/novel_ingest_test_exports_{os.getpid()}",
        # TestClient's host is "testserver"; test_auth.py checks the default
        "API_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    }
)


DEAD_PORT = services.free_port()  # nothing listens here: a site that is down


@pytest.fixture(scope="session")
def fixture_sites() -> Iterator[dict[str, FixtureSite]]:
    """One look-alike server per site, each reached through an alias for its site."""
    started = {name: FixtureSite(site=name).start() for name in served_sites()}
    aliases = [f"{s.host}={name}" for name, s in started.items()]
    os.environ["CRAWLER_SITE_ALIASES"] = ",".join([*aliases, f"127.0.0.1:{DEAD_PORT}=royalroad"])
    services.clear_settings_caches()
    yield started
    for site in started.values():
        site.stop()


@pytest.fixture(scope="session")
def fixture_site(fixture_sites: dict[str, FixtureSite]) -> FixtureSite:
    """The Royal Road look-alike (most tests crawl it)."""
    return fixture_sites["royalroad"]


@pytest.fixture
def dead_site_url(fixture_site: FixtureSite) -> str:
    return f"http://127.0.0.1:{DEAD_PORT}/fiction/1001/down"


class InternalService:
    """A TCP listener on another loopback port: "an internal service" (an admin port, a
    metadata endpoint) that a crawl must never reach. Counts the connections it accepts."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        with self._lock:
            return self._accepted

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # closed: the test is over
                return
            with self._lock:
                self._accepted += 1
            connection.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self._socket.close()


@pytest.fixture
def internal_service(fixture_sites: dict[str, FixtureSite]) -> Iterator[InternalService]:
    """A fresh internal service; the fixture sites' hostile pages point at it."""
    service = InternalService()
    for site in fixture_sites.values():
        site.internal = service.host
    yield service
    service.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = services.create_pg_database(RUN_DB)
    yield url
    services.clear_settings_caches()
    services.drop_pg_database(RUN_DB)


@pytest.fixture(scope="session")
def _pg_schema(pg_url: str) -> str:
    os.environ["DATABASE_URL"] = pg_url
    services.clear_settings_caches()
    services.migrate()
    return pg_url


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    connection = Redis.from_url(services.REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def pg_db(
    _pg_schema: str, fixture_sites: dict[str, FixtureSite], redis_conn: Redis
) -> Iterator[str]:
    """A clean PostgreSQL schema and Redis db, with the settings pointing at them."""
    os.environ["DATABASE_URL"] = _pg_schema
    services.clear_settings_caches()
    services.truncate_all()
    for site in fixture_sites.values():
        site.reset()
    yield _pg_schema


@pytest.fixture
def sqlite_db(
    tmp_path: Path, fixture_sites: dict[str, FixtureSite], redis_conn: Redis, _pg_schema: str
) -> Iterator[str]:
    """A fresh SQLite file with the schema, for the duration of one test."""
    url = f"sqlite:///{tmp_path / 'novels.db'}"
    os.environ["DATABASE_URL"] = url
    services.clear_settings_caches()
    services.migrate()
    for site in fixture_sites.values():
        site.reset()
    yield url
    os.environ["DATABASE_URL"] = _pg_schema
    services.clear_settings_caches()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[services.WorkerProcess]]:
    """Started workers are appended here and stopped (then killed) at the end of the test."""
    started: list[services.WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop(timeout=15)


@pytest.fixture
def start_worker(tmp_path: Path, workers: list[services.WorkerProcess]):
    def start(*args: str, env: dict[str, str] | None = None) -> services.WorkerProcess:
        worker = services.WorkerProcess(*args, log_dir=tmp_path, env=env)
        workers.append(worker)
        return worker

    return start


@pytest.fixture
def api(pg_db: str):
    from fastapi.testclient import TestClient

    from main import create_app

    with TestClient(create_app()) as client:
        yield client


FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Report a line of figures; they are printed together at the end of the run."""
    lines = request.config.stash.setdefault(FIGURES, [])
    return lambda text: lines.append(f"{request.node.name}: {text}")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("figures")
        for line in lines:
            terminalreporter.write_line(line)
