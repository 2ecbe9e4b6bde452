"""GET /health against real services: each dependency ok or not, with its latency and a
generic reason; never a host, port, path, user or password. The detail goes to the log."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from tests.utils import services
from tests.utils.services import free_port

SECRET = f"pw-{uuid.uuid4().hex}"
LOGGER = "api.routes.health"


def _internals(*extra: str) -> tuple[str, ...]:
    return ("127.0.0.1", "localhost", "Errno", "Error ", SECRET, *extra)


def _assert_tells_nothing(text: str, *extra: str) -> None:
    for internal in _internals(*extra):
        assert internal not in text, internal


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


@pytest.fixture
def redis_url(api: TestClient, monkeypatch: pytest.MonkeyPatch):
    """Point the running API's Redis somewhere else."""
    from config import get_settings

    return lambda url: monkeypatch.setattr(get_settings(), "redis_url", url)


@pytest.fixture
def database_api(pg_db: str, monkeypatch: pytest.MonkeyPatch):
    """An API whose DATABASE_URL is the one given."""
    from main import create_app

    def start(url: str) -> TestClient:
        monkeypatch.setenv("DATABASE_URL", url)
        services.clear_settings_caches()
        return stack.enter_context(TestClient(create_app(), raise_server_exceptions=False))

    with ExitStack() as stack:
        yield start
    monkeypatch.undo()
    services.clear_settings_caches()


def test_both_up_is_ok_with_latencies(api: TestClient) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    for check in (body["database"], body["redis"]):
        assert check["ok"] is True and check["error"] is None and check["latency_ms"] >= 0
    _assert_tells_nothing(response.text)


def test_redis_refusing_is_unavailable_and_its_address_is_only_logged(
    api: TestClient, redis_url, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    redis_url(f"redis://:{SECRET}@127.0.0.1:{port}/0")
    with caplog.at_level("WARNING", logger=LOGGER):
        response = api.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["database"]["ok"] is True
    assert body["redis"]["ok"] is False and body["redis"]["error"] == "connection refused"
    assert body["redis"]["latency_ms"] >= 0
    _assert_tells_nothing(response.text, str(port))
    logged = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(logged) == 1 and "Redis unavailable" in logged[0]
    assert f"127.0.0.1:{port}" in logged[0] and SECRET not in logged[0]
    assert caplog.records[-1].levelname == "WARNING"


def test_a_wrong_redis_password_is_an_authentication_failure(
    api: TestClient, redis_url, caplog: pytest.LogCaptureFixture
) -> None:
    redis_url(f"{services.REDIS_URL.replace('redis://', f'redis://:{SECRET}@')}")
    with caplog.at_level("WARNING", logger=LOGGER):
        response = api.get("/health")
    assert response.status_code == 503
    assert response.json()["redis"]["error"] == "authentication failed"
    _assert_tells_nothing(response.text)
    assert SECRET not in caplog.text


def test_redis_that_never_answers_has_timed_out(
    api: TestClient, redis_url, silent_port: int
) -> None:
    redis_url(f"redis://127.0.0.1:{silent_port}/0?socket_timeout=0.3")
    response = api.get("/health")
    assert response.status_code == 503
    assert response.json()["redis"]["error"] == "timed out"
    _assert_tells_nothing(response.text, str(silent_port))


def test_database_away_is_unavailable_without_its_address(
    database_api, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    client = database_api(f"postgresql+psycopg2://novel:{SECRET}@127.0.0.1:{port}/novels")
    with caplog.at_level("WARNING", logger=LOGGER):
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"]["ok"] is True
    assert body["database"] == {
        "ok": False,
        "latency_ms": body["database"]["latency_ms"],
        "error": "connection refused",
    }
    _assert_tells_nothing(response.text, str(port), "novel")
    assert f"port {port} failed" in caplog.text and SECRET not in caplog.text


def test_database_refusing_the_login_is_an_authentication_failure(pg_db: str, database_api) -> None:
    ghost = f"ghost_{uuid.uuid4().hex[:8]}"
    login = make_url(pg_db).set(username=ghost, password=SECRET)
    client = database_api(login.render_as_string(hide_password=False))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"]["error"] == "authentication failed"
    _assert_tells_nothing(response.text, ghost)


# --- liveness: GET /health/live -----------------------------------------------------


def test_liveness_answers_while_the_database_and_redis_are_away(
    database_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import get_settings

    client = database_api(f"postgresql+psycopg2://novel:{SECRET}@127.0.0.1:{free_port()}/novels")
    monkeypatch.setattr(get_settings(), "redis_url", f"redis://127.0.0.1:{free_port()}/0")
    readiness = client.get("/health")
    assert readiness.status_code == 503
    assert not readiness.json()["database"]["ok"] and not readiness.json()["redis"]["ok"]
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_liveness_needs_no_key_even_when_reads_do(client_with) -> None:
    client = client_with(API_KEYS="live-test-key-5b1c", API_READ_AUTH="true")
    assert client.get("/jobs").status_code == 401  # reads need a key here
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    operation = client.get("/openapi.json").json()["paths"]["/health/live"]["get"]
    assert "security" not in operation and "401" not in operation["responses"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Liveness"}
