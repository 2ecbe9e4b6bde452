"""Who may call the API (real PostgreSQL and Redis, no worker): keys for writes and, with
API_READ_AUTH, reads; no cross-site writes, keys or none; the start-up bind rule."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.binding import UnsafeBindError, choose_bind, is_loopback
from db import session_scope
from models import IngestionJob
from tests.utils import services
from tests.utils.factories import make_job

KEY, OTHER_KEY = "first-key-8f2a61c0", "second-key-d41e99b7"
URL = "https://www.royalroad.com/fiction/4242"
EVIL = "http://evil.example"


def _rows() -> int:
    with session_scope() as session:
        return session.execute(select(func.count(IngestionJob.id))).scalar_one()


def _status(job_id: int) -> str:
    with session_scope() as session:
        return session.get_one(IngestionJob, job_id).status


@pytest.fixture
def keyed(client_with: Callable[..., TestClient]) -> TestClient:
    return client_with(API_KEYS=f"{KEY}, {OTHER_KEY}")


# --- keys ------------------------------------------------------------------------------


def test_without_keys_configured_nothing_needs_a_key(api: TestClient) -> None:
    assert api.post("/ingest", json={"url": URL}).status_code == 202
    assert api.get("/jobs").status_code == 200
    assert _rows() == 1


def test_a_write_without_a_key_is_401_and_creates_nothing(keyed: TestClient) -> None:
    response = keyed.post("/ingest", json={"url": URL})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "API key is needed" in response.json()["detail"]
    assert _rows() == 0


def test_an_authorization_that_is_not_bearer_is_401(keyed: TestClient) -> None:
    response = keyed.post("/ingest", json={"url": URL}, headers={"Authorization": f"Basic {KEY}"})
    assert response.status_code == 401
    assert _rows() == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": KEY[:-1]},
        {"Authorization": f"Bearer {KEY}x"},
    ],
)
def test_a_wrong_key_is_403_and_creates_nothing(keyed: TestClient, headers: dict) -> None:
    response = keyed.post("/ingest", json={"url": URL}, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "this API key is not accepted"}
    assert response.headers["Cache-Control"] == "no-store"
    assert _rows() == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"Authorization": f"bearer {OTHER_KEY}"},
        {"X-API-Key": KEY},
        {"X-API-Key": OTHER_KEY},
    ],
)
def test_a_right_key_in_either_header_writes(keyed: TestClient, headers: dict) -> None:
    response = keyed.post("/ingest", json={"url": URL}, headers=headers)
    assert response.status_code == 202, response.text
    assert response.headers["Cache-Control"] == "no-store"
    job_id = response.json()["job_id"]
    cancelled = keyed.post(f"/jobs/{job_id}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert _status(job_id) == "error"


def test_cancel_and_refresh_need_a_key_too(keyed: TestClient) -> None:
    job_id = make_job()
    assert keyed.post(f"/jobs/{job_id}/cancel").status_code == 401
    assert keyed.post(f"/jobs/{job_id}/cancel", headers={"X-API-Key": "no"}).status_code == 403
    assert keyed.post("/novels/1/refresh").status_code == 401
    assert keyed.post("/novels/1/refresh", headers={"X-API-Key": KEY}).status_code == 404
    assert _status(job_id) == "queued"


def test_reads_are_open_unless_api_read_auth(keyed: TestClient) -> None:
    for path in ("/jobs", "/novels", "/sites", "/health"):
        assert keyed.get(path).status_code == 200, path


def test_api_read_auth_protects_every_read_but_health_and_docs(
    client_with: Callable[..., TestClient],
) -> None:
    client = client_with(API_KEYS=KEY, API_READ_AUTH="true")
    job_id = make_job()
    for path in ("/jobs", f"/jobs/{job_id}", "/novels", "/novels/1", "/novels/1/chapters"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == 403, path
    assert client.get("/sites").status_code == 401
    assert client.get(f"/jobs/{job_id}", headers={"X-API-Key": KEY}).status_code == 200
    assert client.get("/novels/1", headers={"Authorization": f"Bearer {KEY}"}).status_code == 404
    for path in ("/health", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_api_read_auth_without_keys_changes_nothing(
    client_with: Callable[..., TestClient],
) -> None:
    client = client_with(API_READ_AUTH="true")
    assert client.get("/jobs").status_code == 200
    assert client.post("/ingest", json={"url": URL}).status_code == 202


def test_keys_are_never_logged(keyed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        keyed.post("/ingest", json={"url": URL}, headers={"X-API-Key": KEY})
        keyed.post("/ingest", json={"url": URL}, headers={"Authorization": f"Bearer {OTHER_KEY}"})
        keyed.post("/ingest", json={"url": URL}, headers={"X-API-Key": "wrong-key-123"})
    assert caplog.records  # the requests were logged...
    assert KEY not in caplog.text and OTHER_KEY not in caplog.text  # ...their keys not
    assert "wrong-key-123" not in caplog.text


# --- cross-site requests -----------------------------------------------------------------

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_a_cross_site_form_post_cannot_cancel_a_job(api: TestClient) -> None:
    job_id = make_job()
    response = api.post(f"/jobs/{job_id}/cancel", content=b"", headers={**FORM, "Origin": EVIL})
    assert response.status_code == 403
    assert "cross-site" in response.json()["detail"]
    assert _status(job_id) == "queued"


def test_a_cross_site_form_post_cannot_submit(api: TestClient) -> None:
    body = b"url=https%3A%2F%2Fwww.royalroad.com%2Ffiction%2F4242"
    response = api.post("/ingest", content=body, headers={**FORM, "Origin": EVIL})
    assert response.status_code == 403
    assert _rows() == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "http://testserver:8001"},
        {"Origin": "http://["},  # no URL at all: refused, not a 500
    ],
)
def test_any_cross_site_sign_refuses_a_write(api: TestClient, headers: dict) -> None:
    job_id = make_job()
    assert api.post(f"/jobs/{job_id}/cancel", headers=headers).status_code == 403
    assert api.post("/ingest", json={"url": URL}, headers=headers).status_code == 403
    assert _status(job_id) == "queued"
    assert _rows() == 1


def test_a_cross_site_write_is_refused_even_with_a_key(keyed: TestClient) -> None:
    job_id = make_job()
    headers = {"X-API-Key": KEY, "Origin": EVIL}
    assert keyed.post(f"/jobs/{job_id}/cancel", headers=headers).status_code == 403
    assert _status(job_id) == "queued"


def test_a_form_post_without_origin_is_415(api: TestClient) -> None:
    job_id = make_job()
    response = api.post(f"/jobs/{job_id}/cancel", content=b"x=1", headers=FORM)
    assert response.status_code == 415
    assert "JSON" in response.json()["detail"]
    plain = api.post(
        "/ingest", content=f'{{"url": "{URL}"}}', headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    assert _status(job_id) == "queued"
    assert _rows() == 1


def test_same_origin_and_json_writes_are_accepted(api: TestClient) -> None:
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    response = api.post("/ingest", json={"url": URL}, headers=same)
    assert response.status_code == 202
    typed = {"Content-Type": "application/json; charset=utf-8"}
    job_id = response.json()["job_id"]
    assert api.post(f"/jobs/{job_id}/cancel", headers={**same, **typed}).status_code == 200


# --- the OpenAPI document ---------------------------------------------------------------


def _operations(document: dict) -> dict[str, dict]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


SCHEMES = [{"BearerKey": []}, {"ApiKeyHeader": []}]
KEYLESS = {"GET /health", "GET /health/live"}  # readiness and liveness probes send no key
WRITES = {
    "POST /ingest",
    "POST /jobs/{job_id}/cancel",
    "POST /jobs/{job_id}/retry",
    "POST /novels/{novel_id}/refresh",
}


def test_openapi_declares_keys_where_they_are_needed(
    client_with: Callable[..., TestClient],
) -> None:
    writes_only = _operations(client_with(API_KEYS=KEY).get("/openapi.json").json())
    for name, operation in writes_only.items():
        assert operation.get("security") == (SCHEMES if name in WRITES else None), name
    every = client_with(API_KEYS=KEY, API_READ_AUTH="true").get("/openapi.json").json()
    assert every["components"]["securitySchemes"]["ApiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "`X-API-Key: <key>`, the key one of API_KEYS",
    }
    assert every["components"]["securitySchemes"]["BearerKey"]["scheme"] == "bearer"
    for name, operation in _operations(every).items():
        assert operation.get("security") == (None if name in KEYLESS else SCHEMES), name
        assert ("401" in operation["responses"]) == (name not in KEYLESS), name


def test_openapi_without_keys_declares_no_key_but_keeps_the_schemes(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    assert {"BearerKey", "ApiKeyHeader"} <= set(document["components"]["securitySchemes"])
    for name, operation in _operations(document).items():
        assert "security" not in operation, name
        assert "401" not in operation["responses"], name
        assert ("403" in operation["responses"]) == (name in WRITES), name


def test_openapi_documents_every_error_with_the_one_error_body(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    expected = {
        "POST /ingest": {"403", "413", "415", "422", "429", "503"},
        "POST /jobs/{job_id}/cancel": {"403", "404", "409", "413", "415", "422", "503"},
        "GET /jobs/{job_id}": {"404", "413", "422", "503"},
        "GET /novels/{novel_id}/chapters/{position}": {"404", "413", "422", "503"},
        "POST /novels/{novel_id}/refresh": {"403", "404", "413", "415", "422", "429", "503"},
    }
    operations = _operations(document)
    for name, codes in expected.items():
        responses = operations[name]["responses"]
        assert {c for c in responses if c >= "400"} == codes, name
        for code in codes:
            assert responses[code]["content"]["application/json"]["schema"] == error_body
    retry = operations["POST /ingest"]["responses"]["429"]["headers"]["Retry-After"]
    assert retry["schema"] == {"type": "integer"}
    fields = document["components"]["schemas"]["ErrorBody"]["properties"]
    assert set(fields) == {"detail", "errors", "supported_sites"}


# --- where `python main.py` listens ---------------------------------------------------


def test_bind_defaults_to_loopback_without_keys_and_everywhere_with_them() -> None:
    assert choose_bind(api_host=None, has_keys=False, allow_anonymous=False).host == "127.0.0.1"
    assert choose_bind(api_host=None, has_keys=False, allow_anonymous=False).open
    keyed = choose_bind(api_host=None, has_keys=True, allow_anonymous=False)
    assert (keyed.host, keyed.open) == ("0.0.0.0", False)
    assert choose_bind(api_host="10.0.0.5", has_keys=True, allow_anonymous=False).host == (
        "10.0.0.5"
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_an_open_api_may_bind_any_loopback_address(host: str) -> None:
    assert is_loopback(host)
    assert choose_bind(api_host=host, has_keys=False, allow_anonymous=False).host == host


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.4", "api.example", "127.0.0.1.nip.io"]
)
def test_an_open_api_elsewhere_needs_allow_anonymous(host: str) -> None:
    with pytest.raises(UnsafeBindError, match="API_ALLOW_ANONYMOUS=true"):
        choose_bind(api_host=host, has_keys=False, allow_anonymous=False)
    allowed = choose_bind(api_host=host, has_keys=False, allow_anonymous=True)
    assert (allowed.host, allowed.open) == (host, True)


def _serve(env: dict[str, str]) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("API_")}
    return subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=services.ROOT,
        env={**clean, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_main_refuses_to_serve_open_beyond_loopback_in_one_line(pg_db: str) -> None:
    server = _serve({"API_HOST": "0.0.0.0", "API_PORT": str(services.free_port())})
    _, err = server.communicate(timeout=60)
    assert server.returncode == 1
    assert err.strip().splitlines() == [
        "novel-ingest API: refusing to serve on 0.0.0.0 without API_KEYS: set API_KEYS,"
        " or API_ALLOW_ANONYMOUS=true to serve it open"
    ]


def test_main_serves_an_open_api_on_loopback_and_says_so(pg_db: str) -> None:
    port = services.free_port()
    server = _serve({"API_PORT": str(port)})
    try:
        assert services.wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), timeout=30)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "the API is open (no API_KEYS)" in err
    assert f"Uvicorn running on http://127.0.0.1:{port}" in err


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_open_api_answers_loopback_names_only(pg_db: str) -> None:
    """DNS rebinding: a page of evil.example, re-pointed at 127.0.0.1, sends Host evil.example."""
    from config import Settings
    from main import create_app

    app = create_app(Settings(api_allowed_hosts="", api_keys=""))
    with TestClient(app, base_url="http://evil.example:8000") as rebound:
        assert rebound.post("/ingest", json={"url": URL}).status_code == 400
        assert rebound.get("/jobs").status_code == 400
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/jobs").status_code == 200
    assert _rows() == 0
    keyed = create_app(Settings(api_allowed_hosts="", api_keys=KEY))
    with TestClient(keyed, base_url="http://api.example:8000") as client:
        assert client.get("/jobs").status_code == 200  # keys guard it: any name
