"""Passwords for Redis (plain and TLS) and the database work end to end, and never show:
not in a worker's log, a job row, /health, the CLI's output or a process's command line.

Each test starts a redis-server of its own that asks for a password (and, for rediss://,
serves TLS alone with a certificate made here). PostgreSQL trusts local connections, so the
database password is not checked by the server; what is checked is that a DATABASE_URL
carrying one still works and shows it nowhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.engine import make_url

from db import session_scope
from models import IngestionJob, JobEvent
from tests.fixture_site.server import FixtureSite
from tests.utils import services
from tests.utils.jobs import submit
from tests.utils.services import QUEUE_NAME, ROOT, free_port, wait_for

FICTION = "/fiction/1002/fixture-fiction-1002"  # 5 chapters
CHAPTERS = 5


def _secret(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}"


class SecuredRedis:
    """A redis-server of the test's own that asks for a password; with `tls`, it listens
    for TLS only (no plain port), with a self-signed certificate made for 127.0.0.1. The
    password goes in its config file, not on its command line."""

    def __init__(self, directory: Path, *, password: str, tls: bool) -> None:
        self.dir, self.password, self.tls = directory, password, tls
        self.port = free_port()
        self.cert, self.key = directory / "redis.crt", directory / "redis.key"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, password: str | None = None) -> str:
        scheme, query = ("rediss", f"?ssl_ca_certs={self.cert}") if self.tls else ("redis", "")
        return f"{scheme}://:{password or self.password}@127.0.0.1:{self.port}/0{query}"

    def start(self) -> SecuredRedis:
        lines = ["bind 127.0.0.1", "protected-mode yes", f"requirepass {self.password}"]
        lines += [f"dir {self.dir}", 'save ""', "appendonly no"]
        if self.tls:
            self._make_certificate()
            lines += ["port 0", f"tls-port {self.port}", "tls-auth-clients no"]
            lines += [f"tls-cert-file {self.cert}", f"tls-key-file {self.key}"]
        else:
            lines += [f"port {self.port}"]
        conf = self.dir / "redis.conf"
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        log = (self.dir / "redis.log").open("wb")
        self.proc = subprocess.Popen(["redis-server", str(conf)], stdout=log, stderr=log)
        assert wait_for(self.ping, timeout=10), (self.dir / "redis.log").read_text()
        return self

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-keyout", str(self.key), "-out", str(self.cert), "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
        self.key.chmod(0o644)  # redis-server, like the test, runs as this user

    def ping(self) -> bool:
        try:
            return bool(Redis.from_url(self.url(), socket_timeout=1).ping())
        except RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(params=["redis", "rediss"])
def secured_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecuredRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = SecuredRedis(directory, password=_secret("redis"), tls=request.param == "rediss")
    yield server.start()
    server.stop()


@pytest.fixture
def secret_env(
    pg_db: str, secured_redis: SecuredRedis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """REDIS_URL and DATABASE_URL with passwords, for this process and those it starts."""
    db_secret = _secret("db")
    database_url = make_url(pg_db).set(password=db_secret).render_as_string(hide_password=False)
    env = {"REDIS_URL": secured_redis.url(), "DATABASE_URL": database_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    services.clear_settings_caches()
    yield {"redis": secured_redis.password, "db": db_secret}
    monkeypatch.undo()
    services.clear_settings_caches()


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it has exited
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    return children


def _tree(*roots: int) -> dict[int, str]:
    """The command line of every process in the trees under `roots`, as they are now."""
    children, found, todo = _children(), {}, list(roots)
    while todo:
        pid = todo.pop()
        found[pid] = _cmdline(pid)
        todo.extend(children.get(pid, []))
    return found


class Dashboard:
    """`python cli.py dashboard` as an operator starts it, on a free port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / "dashboard.log"
        log = self.log_path.open("wb")
        env = {**_environ(), "DASHBOARD_PORT": str(self.port)}
        self.proc = subprocess.Popen(
            [sys.executable, "cli.py", "dashboard"], cwd=ROOT, env=env, stdout=log, stderr=log
        )

    def queues(self) -> list[str]:
        """The queues rq-dashboard reads from Redis (so it got in with the password)."""
        url = f"http://127.0.0.1:{self.port}/0/data/queues.json"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return [queue["name"] for queue in json.load(response)["queues"]]
        except OSError:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _environ() -> dict[str, str]:
    return dict(os.environ)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "cli.py", *args],
        cwd=ROOT,
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _job_texts(job_id: int) -> str:
    """Everything the job's row and history hold, as text."""
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        row = {c.name: getattr(job, c.name) for c in IngestionJob.__table__.columns}
        events = session.execute(select(JobEvent).where(JobEvent.job_id == job_id)).scalars()
        history = [(e.status, e.message) for e in events]
    return f"{row} {history}"


def _follow(api: TestClient, job_id: int, roots: list[int], seen: dict[int, str]) -> dict:
    """Wait for the job to end, noting the command line of every process meanwhile (the
    work-horse lives only while the job runs)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.update(_tree(*roots))
        job = api.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "error"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not end: {job}")


def test_passwords_work_and_show_nowhere(
    secret_env: dict[str, str],
    secured_redis: SecuredRedis,
    fixture_site: FixtureSite,
    start_worker: Any,
    tmp_path: Path,
) -> None:
    from main import create_app

    worker = start_worker()
    dashboard = Dashboard(tmp_path)
    seen: dict[int, str] = {}
    try:
        with TestClient(create_app()) as api:
            job_id = submit(api, fixture_site.url(FICTION))
            job = _follow(api, job_id, [worker.pid, dashboard.proc.pid], seen)
            health = api.get("/health")
            queues = wait_for(lambda: QUEUE_NAME in dashboard.queues(), timeout=30)
            seen.update(_tree(worker.pid, dashboard.proc.pid, secured_redis.proc.pid))  # type: ignore[union-attr]
        listing = subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True)
    finally:
        dashboard.stop()
    status, migrate = _cli("status", str(job_id)), _cli("migrate")

    # it all worked, with the passwords (and, for rediss://, over TLS: no plain port)
    assert job["status"] == "done", job
    assert job["progress"]["chapters_saved"] == CHAPTERS
    assert health.status_code == 200 and health.json()["redis"]["ok"], health.text
    assert health.json()["database"]["ok"], health.text
    assert queues, dashboard.log_path.read_text()
    assert status.returncode == 0 and "status: done" in status.stdout, status.stderr
    assert migrate.returncode == 0 and "postgres:***@127.0.0.1" in migrate.stdout, migrate

    # ... and neither password shows anywhere
    assert "Listening on" in worker.log()
    assert any("cli.py dashboard" in line for line in seen.values())
    shown = {
        "worker log": worker.log(),
        "dashboard log": dashboard.log_path.read_text(),
        "job row": _job_texts(job_id),
        "job": str(job),
        "/health": health.text,
        "cli status": status.stdout + status.stderr,
        "cli migrate": migrate.stdout + migrate.stderr,
        "ps": listing.stdout,
        **{f"cmdline of {pid}": line for pid, line in seen.items()},
    }
    for secret in secret_env.values():
        leaks = [where for where, text in shown.items() if secret in text]
        assert not leaks, f"{secret[:5]}... shown in {leaks}"


def test_failures_name_no_secret_host_or_port(
    secret_env: dict[str, str],
    secured_redis: SecuredRedis,
    start_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A wrong Redis password and a database that is away: /health, the CLI and the worker
    say what failed, with no password; /health names no host or port either."""
    dead = free_port()
    wrong = _secret("wrong")
    database_url = f"postgresql+psycopg2://postgres:{secret_env['db']}@127.0.0.1:{dead}/none"
    monkeypatch.setenv("REDIS_URL", secured_redis.url(wrong))
    monkeypatch.setenv("DATABASE_URL", database_url)
    services.clear_settings_caches()
    from main import create_app

    worker = start_worker()
    with (
        caplog.at_level("WARNING", logger="api.routes.health"),
        TestClient(create_app(), raise_server_exceptions=False) as api,
    ):
        health = api.get("/health")
    status = _cli("status")
    assert wait_for(lambda: "Redis unavailable" in worker.log(), timeout=60), worker.log()

    assert health.status_code == 503
    body = health.json()
    assert body["redis"] == {
        "ok": False,
        "latency_ms": body["redis"]["latency_ms"],
        "error": "authentication failed",
    }
    assert body["database"]["ok"] is False and body["database"]["error"] == "connection refused"
    for internal in ("127.0.0.1", str(secured_redis.port), str(dead), "Errno", "postgres"):
        assert internal not in health.text, internal
    # the detail is in the API's log, for the operator, without the passwords
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert f"port {dead} failed" in logged and "username-password" in logged, logged
    assert status.returncode == 2 and "database error" in status.stdout, status
    shown = {
        "/health": health.text,
        "API log": logged,
        "cli status": status.stdout + status.stderr,
        "worker log": worker.log(),
    }
    for secret in (*secret_env.values(), wrong):
        leaks = [where for where, text in shown.items() if secret in text]
        assert not leaks, f"{secret[:5]}... shown in {leaks}"
