"""The API's limits against real PostgreSQL and Redis: request body size (413), and the
per-caller rate of POST /ingest (429 with Retry-After, counted in Redis)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import func, select

from db import session_scope
from models import IngestionJob

TEN_MB = 10 * 1024 * 1024
KEY, OTHER_KEY = "rate-key-one-5b1d", "rate-key-two-77c3"


def _rows() -> int:
    with session_scope() as session:
        return session.execute(select(func.count(IngestionJob.id))).scalar_one()


def _url(n: int) -> dict[str, str]:
    return {"url": f"https://www.royalroad.com/fiction/{n}"}


# --- body size ------------------------------------------------------------------------


def test_a_10_mb_body_is_413_and_creates_nothing(api: TestClient) -> None:
    body = b'{"url": "https://www.royalroad.com/fiction/1", "pad": "' + b"x" * TEN_MB + b'"}'
    response = api.post("/ingest", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large: at most 65536 bytes"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert _rows() == 0


def test_a_chunked_10_mb_body_is_413(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"url": "https://www.royalroad.com/fiction/1", "pad": "'
        for _ in range(10):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    response = api.post("/ingest", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413
    assert _rows() == 0


def test_a_streamed_body_is_read_no_further_than_the_limit(pg_db: str) -> None:
    """The app as a server runs it: 1 MiB chunks with no Content-Length; the middleware
    stops pulling them just past 64 KiB and answers 413 at once."""
    from main import create_app

    app = create_app()
    pulled: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        pulled.append(1024 * 1024)
        return {"type": "http.request", "body": b"x" * pulled[-1], "more_body": len(pulled) < 10}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/ingest",
        "raw_path": b"/ingest",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert sum(pulled) == 1024 * 1024  # one chunk of ten: the rest never left the client
    assert _rows() == 0


def test_a_body_within_the_limit_is_read(api: TestClient) -> None:
    padded = b'{"url": "https://www.royalroad.com/fiction/3", "pad": "' + b"x" * 60_000 + b'"}'
    response = api.post("/ingest", content=padded, headers={"Content-Type": "application/json"})
    assert response.status_code == 202
    assert _rows() == 1


def test_api_max_body_bytes_sets_the_limit(client_with: Callable[..., TestClient]) -> None:
    client = client_with(API_MAX_BODY_BYTES="44")
    assert client.post("/ingest", json=_url(1)).status_code == 413  # 45 bytes
    assert client.post("/ingest", json={"url": "https://royalroad.com/fiction/1"}).status_code == (
        202  # 41 bytes
    )


# --- the rate of POST /ingest ---------------------------------------------------------


def test_over_the_rate_is_429_with_retry_after_and_counted_per_key(
    client_with: Callable[..., TestClient], redis_conn: Redis
) -> None:
    client = client_with(API_KEYS=f"{KEY},{OTHER_KEY}", API_INGEST_RATE="2/minute")
    first = {"X-API-Key": KEY}
    job_id = client.post("/ingest", json=_url(1), headers=first).json()["job_id"]
    assert client.post("/ingest", json=_url(2), headers=first).status_code == 202
    refused = client.post("/ingest", json=_url(3), headers=first)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "at most 2 per 1 minute" in refused.json()["detail"]
    assert _rows() == 2
    other = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert client.post("/ingest", json=_url(3), headers=other).status_code == 202
    counted = [k.decode() for k in redis_conn.keys("novel-ingest:rate:*")]
    assert len(counted) == 2  # one window per key, each named by a digest of its key
    assert not any(KEY in k or OTHER_KEY in k for k in counted)
    # reads and other writes are not counted
    assert client.get("/jobs").status_code == 200
    assert client.post(f"/jobs/{job_id}/cancel", headers=first).status_code == 200


def test_without_keys_the_rate_is_per_client_address(
    client_with: Callable[..., TestClient], redis_conn: Redis
) -> None:
    client = client_with(API_INGEST_RATE="1/hour")
    assert client.post("/ingest", json=_url(1)).status_code == 202
    refused = client.post("/ingest", json=_url(2))
    assert refused.status_code == 429
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert [k.decode() for k in redis_conn.keys("novel-ingest:rate:*")] == [
        "novel-ingest:rate:LIMITER/ingest/addr:testclient/1/1/hour"
    ]


def test_a_request_refused_before_the_rate_is_not_counted(
    client_with: Callable[..., TestClient], redis_conn: Redis
) -> None:
    client = client_with(API_KEYS=KEY, API_INGEST_RATE="1/minute")
    assert client.post("/ingest", json=_url(1)).status_code == 401
    assert client.post("/ingest", json=_url(1), headers={"X-API-Key": "bad"}).status_code == 403
    assert redis_conn.keys("novel-ingest:rate:*") == []
    assert client.post("/ingest", json=_url(1), headers={"X-API-Key": KEY}).status_code == 202


def test_with_redis_down_the_rate_is_not_applied_and_ingest_still_accepts(
    client_with: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = client_with(API_INGEST_RATE="1/minute", REDIS_URL="redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="api.throttle"):
        for n in (1, 2):
            response = client.post("/ingest", json=_url(n))
            assert response.status_code == 202, response.text
            assert "when the queue is reachable" in response.json()["message"]
    assert "rate limit not applied, Redis unavailable" in caplog.text
    assert _rows() == 2


def test_a_malformed_rate_stops_the_app_at_creation(pg_db: str) -> None:
    from config import Settings
    from main import create_app

    with pytest.raises(ValueError):
        create_app(Settings(api_ingest_rate="sixty a minute"))
