"""The API against real PostgreSQL and Redis (no worker: jobs stay queued)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import func, select

from db import session_scope
from models import IngestionJob
from tests.fixture_site.server import FixtureSite
from tests.utils.services import QUEUE_KEY


def _rows() -> int:
    with session_scope() as session:
        return session.execute(select(func.count(IngestionJob.id))).scalar_one()


def test_ingest_creates_a_queued_job_and_pushes_it(api: TestClient, redis_conn: Redis) -> None:
    response = api.post("/ingest", json={"url": "https://www.royalroad.com/fiction/12345/a-b"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["message"] == "Ingestion job created and queued"
    job = api.get(f"/jobs/{body['job_id']}").json()
    assert job["source_url"] == "https://www.royalroad.com/fiction/12345"
    assert job["site"] == "royalroad"
    assert job["progress"] == {
        "chapters_found": 0,
        "chapters_fetched": 0,
        "chapters_saved": 0,
        "chapters_locked": 0,
    }
    assert job["warnings"] == []
    assert [e["status"] for e in job["history"]] == ["queued"]
    queued = [j.decode() for j in redis_conn.lrange(QUEUE_KEY, 0, -1)]
    assert queued == [f"ingestion-{body['job_id']}"]


def test_same_fiction_twice_returns_the_active_job(api: TestClient, redis_conn: Redis) -> None:
    first = api.post("/ingest", json={"url": "https://www.royalroad.com/fiction/77/x"})
    again = api.post("/ingest", json={"url": "https://royalroad.com/fiction/77?utm=1"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert _rows() == 1
    assert redis_conn.llen(QUEUE_KEY) == 1


def test_one_fiction_is_one_job_whatever_digits_the_url_uses(
    api: TestClient, redis_conn: Redis
) -> None:
    first = api.post("/ingest", json={"url": "https://www.royalroad.com/fiction/24"})
    assert first.status_code == 202
    for url in ("/fiction/024", "/fiction/0024", "/fiction/%32%34/slug"):
        again = api.post("/ingest", json={"url": f"https://www.royalroad.com{url}"})
        assert (again.status_code, again.json()["job_id"]) == (200, first.json()["job_id"])
    for digits in ("\u0661\u0662", "\uff11\uff12"):  # Arabic-Indic, full-width: refused
        refused = api.post("/ingest", json={"url": f"https://www.royalroad.com/fiction/{digits}"})
        assert refused.status_code == 422, refused.json()
    assert _rows() == 1
    assert redis_conn.llen(QUEUE_KEY) == 1


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ('{"url": ', "not valid JSON"),
        ("{}", "url: Field required"),
        ('{"url": 42}', "url: Input should be a valid string"),
        ('{"url": ""}', "url"),
        ('{"url": "ftp://www.royalroad.com/fiction/1"}', "is not an http(s) URL"),
        ('{"url": "not a url"}', "is not an http(s) URL"),
        ('{"url": "https://example.com/fiction/1"}', "example.com is not a supported site"),
        ('{"url": "https://www.royalroad.com/profile/9"}', "royalroad.com/profile/9"),
        ('{"url": "https://www.royalroad.com:99999/fiction/1"}', "is not a valid URL"),
        ('{"url": "https://[::1/fiction/1"}', "is not a valid URL"),
        ('{"url": "https://www.royalroad.com/fiction/' + "9" * 70 + '"}', "not a Royal Road"),
    ],
)
def test_bad_requests_get_422_with_a_reason_and_create_nothing(
    api: TestClient, payload: str, needle: str
) -> None:
    response = api.post("/ingest", content=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]
    assert _rows() == 0


def test_unsupported_site_lists_the_supported_ones(api: TestClient) -> None:
    response = api.post("/ingest", json={"url": "https://www.wattpad.com/story/1"})
    assert response.status_code == 422
    assert "Royal Road" in response.json()["supported_sites"]
    assert "Royal Road" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/jobs?offset=99999999999999999999999",
        "/novels?offset=99999999999999999999999",
        "/novels/1/chapters?offset=99999999999999999999999",
        "/jobs/99999999999999999999",
        "/novels/99999999999999999999",
        "/novels/1/chapters/-99999999999999999999",
        "/jobs/-1",
    ],
)
def test_numbers_out_of_range_are_422_not_a_server_error(api: TestClient, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 422, response.text
    assert "invalid request" in response.json()["detail"]


def test_unknown_job_novel_and_chapter_are_404(api: TestClient) -> None:
    for path in ("/jobs/999", "/novels/999", "/novels/999/chapters", "/novels/999/chapters/1"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert "not found" in response.json()["detail"]


def test_jobs_list_filters_by_status_and_paginates(api: TestClient) -> None:
    ids = [
        api.post("/ingest", json={"url": f"https://www.royalroad.com/fiction/{n}"}).json()["job_id"]
        for n in range(1, 6)
    ]
    page = api.get("/jobs", params={"limit": 2, "offset": 1, "status": "queued"}).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [j["id"] for j in page["items"]] == sorted(ids, reverse=True)[1:3]
    assert api.get("/jobs", params={"status": "done"}).json()["total"] == 0
    assert api.get("/jobs", params={"status": "bogus"}).status_code == 422


def test_cancel_a_queued_job(api: TestClient, redis_conn: Redis) -> None:
    job_id = api.post("/ingest", json={"url": "https://www.royalroad.com/fiction/5"}).json()[
        "job_id"
    ]
    response = api.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "error"
    assert response.json()["error_message"] == "cancelled by user"
    assert redis_conn.llen(QUEUE_KEY) == 0
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 409


def test_cancel_with_redis_down_ends_the_row_and_answers_200(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import get_settings

    job_id = api.post("/ingest", json={"url": "https://www.royalroad.com/fiction/6"}).json()[
        "job_id"
    ]
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    response = api.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["error_message"] == "cancelled by user"
    # its RQ job, left in Redis, finds the row ended when it runs: it does nothing


def test_health_reports_both_services(api: TestClient) -> None:
    body = api.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["database"]["latency_ms"] >= 0


def test_redis_down_still_accepts_and_keeps_the_row(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config import get_settings

    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    response = api.post("/ingest", json={"url": "https://www.royalroad.com/fiction/8"})
    assert response.status_code == 202
    assert "when the queue is reachable" in response.json()["message"]
    assert api.get(f"/jobs/{response.json()['job_id']}").json()["status"] == "queued"
    health = api.get("/health")
    assert health.status_code == 503 and not health.json()["redis"]["ok"]


def test_database_down_is_a_503_with_json(
    pg_db: str, fixture_site: FixtureSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.utils import services

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/none")
    services.clear_settings_caches()
    from main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        response = client.post("/ingest", json={"url": "https://www.royalroad.com/fiction/8"})
        assert response.status_code == 503
        assert response.json() == {"detail": "database unavailable, try again shortly"}
        assert client.get("/jobs/1").status_code == 503
        assert client.get("/health").json()["database"]["ok"] is False
    monkeypatch.undo()
    services.clear_settings_caches()


def test_openapi_docs_are_served(api: TestClient) -> None:
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/ingest", "/jobs/{job_id}", "/novels/{novel_id}/chapters/{position}"} <= set(paths)


def test_sites_lists_every_site_with_its_pace(api: TestClient) -> None:
    listed = {s["id"]: s for s in api.get("/sites").json()}
    assert {"royalroad", "scribblehub", "ao3"} <= set(listed)
    royal = listed["royalroad"]
    assert royal["name"] == "Royal Road" and "www.royalroad.com" in royal["hosts"]
    assert royal["example_url"].startswith("https://www.royalroad.com/fiction/")
    assert "/fiction/<id>[/<slug>]" in royal["url_patterns"]
    # the tests set CRAWLER_DOWNLOAD_DELAY=0 and 16 at once: the operator's pace wins
    assert {(s["download_delay"], s["concurrent_requests"]) for s in listed.values()} == {(0, 16)}


def test_an_unsupported_site_lists_the_three(api: TestClient) -> None:
    response = api.post("/ingest", json={"url": "https://www.wattpad.com/story/1"})
    assert response.status_code == 422
    supported = response.json()["supported_sites"]
    for name in ("Royal Road", "Scribble Hub", "Archive of Our Own"):
        assert name in supported


SECRET_URL = "https://reader:hunter2-secret@www.royalroad.com/fiction/12345"


@pytest.mark.parametrize(
    "payload",
    [
        {"url": SECRET_URL},
        {"url": SECRET_URL + "/" + "x" * 2048},  # too long: pydantic's error holds the input
        {"url": [SECRET_URL]},
        {"url": SECRET_URL, "priority": "hunter2-secret"},
        {"link": SECRET_URL},
    ],
)
def test_a_422_never_echoes_the_url_or_its_credentials(api: TestClient, payload: dict) -> None:
    response = api.post("/ingest", json=payload)
    assert response.status_code == 422, response.text
    assert "hunter2" not in response.text and "reader:" not in response.text
    assert set(response.json()) <= {"detail", "errors", "supported_sites"}
    for problem in response.json().get("errors", []):
        assert set(problem) == {"loc", "msg", "type"}
    assert _rows() == 0


def test_a_422_for_bad_json_or_a_bad_query_echoes_nothing(api: TestClient) -> None:
    broken = api.post(
        "/ingest",
        content='{"url": "' + SECRET_URL + '"',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert broken.json()["detail"] == "invalid request: the body is not valid JSON"
    assert "hunter2" not in broken.text
    query = api.get("/jobs", params={"status": "hunter2-secret", "limit": "hunter2"})
    assert query.status_code == 422
    assert "hunter2" not in query.text


def test_a_body_that_is_not_utf8_is_422_not_400(api: TestClient) -> None:
    response = api.post(
        "/ingest", content=b'{"url": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "invalid request: the body is not valid JSON"


def test_api_answers_carry_nosniff_and_a_csp_that_allows_nothing(api: TestClient) -> None:
    for response in (api.get("/jobs"), api.get("/jobs/999"), api.get("/openapi.json")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        csp = response.headers["Content-Security-Policy"]
        assert csp.startswith("default-src 'none'") and "frame-ancestors 'none'" in csp
    assert "Cache-Control" not in api.get("/jobs").headers  # no key sent: cacheable
    keyed = api.get("/jobs", headers={"X-API-Key": "anything"})
    assert keyed.headers["Cache-Control"] == "no-store"


def test_retry_of_a_failed_job_queues_it_again_and_is_409_otherwise(
    api: TestClient, redis_conn: Redis
) -> None:
    job_id = api.post("/ingest", json={"url": "https://www.royalroad.com/fiction/31"}).json()[
        "job_id"
    ]
    refused = api.post(f"/jobs/{job_id}/retry")
    assert refused.status_code == 409
    assert "only a job that ended in error can be retried" in refused.json()["detail"]
    assert api.post(f"/jobs/{job_id}/cancel").status_code == 200
    retried = api.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 202, retried.text
    body = retried.json()
    assert (body["id"], body["status"], body["attempts"], body["error_message"]) == (
        job_id,
        "queued",
        0,
        None,
    )
    history = api.get(f"/jobs/{job_id}").json()["history"]
    assert [(e["status"], e["message"]) for e in history] == [
        ("queued", None),
        ("error", "cancelled by user"),
        ("queued", "retried by user"),
    ]
    assert [j.decode() for j in redis_conn.lrange(QUEUE_KEY, 0, -1)] == [f"ingestion-{job_id}"]
    assert api.post("/jobs/999/retry").status_code == 404


def test_retry_is_documented_with_its_conflict(api: TestClient) -> None:
    operation = api.get("/openapi.json").json()["paths"]["/jobs/{job_id}/retry"]["post"]
    assert {"202", "404", "409", "503"} <= set(operation["responses"])
    assert "ended in error" in operation["responses"]["409"]["description"]
    stats = api.get("/openapi.json").json()["paths"]["/stats"]["get"]
    assert stats["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Stats"
    )
