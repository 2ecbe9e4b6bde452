"""Following a job without polling, end to end: API -> RQ worker -> crawl -> callback_url
POSTed by a worker to a receiver on 127.0.0.1 (stdlib http.server in a thread that records
every request), and GET /jobs/{id}/events following a real job.

Workers are separate processes: the callback settings reach them through the environment
(CALLBACK_ALLOWED_HOSTS names the receiver, and only it). No reconciler process: the
workers' own reconciler pass (RECONCILE_INTERVAL=1 here) queues the delivery of an ended
job (callback.pass_due), and a cancel queues it at once.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

import callback
from db import session_scope
from models import IngestionJob
from models.base import utcnow
from models.ingestion_job import reopen
from tests.conftest import InternalService
from tests.fixture_site.server import FixtureSite
from tests.integration.test_events import ServedApp, events
from tests.utils import services
from tests.utils.jobs import wait_job

SECRET = "callback-test-secret-0123456789"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """An HTTP receiver that answers each POST with the next of `statuses` (then 200)."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.received: list[Received] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def _answer(self, request: Received) -> int:
        with self._lock:
            self.received.append(request)
            return self._statuses.pop(0) if self._statuses else 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(Received(self.path, headers, body, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started
    started.close()


@pytest.fixture
def callback_env(pg_db: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The callback settings of this test, for the API here and every process started."""
    for name, value in {
        "CALLBACK_SECRET": SECRET,
        "CALLBACK_ALLOWED_HOSTS": receiver.host,
        "CALLBACK_BACKOFF": "1.5",  # waits of 2 s, then 3 s (RQ: whole seconds)
        "CALLBACK_ATTEMPTS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    services.clear_settings_caches()
    yield
    monkeypatch.undo()
    services.clear_settings_caches()


@pytest.fixture
def client(callback_env: None) -> Iterator[TestClient]:
    from main import create_app

    with TestClient(create_app()) as started:
        yield started


def _submit(client: TestClient, url: str, callback_url: str) -> int:
    response = client.post("/ingest", json={"url": url, "callback_url": callback_url})
    assert response.status_code == 202, response.text
    return int(response.json()["job_id"])


def _settled_callback(client: TestClient, job_id: int, *, timeout: float = 30) -> dict[str, Any]:
    """The job's `callback` once it is delivered or failed."""
    found: dict[str, Any] = {}

    def settled() -> bool:
        found.update(client.get(f"/jobs/{job_id}").json()["callback"] or {})
        return found.get("status") in ("delivered", "failed")

    assert services.wait_for(settled, timeout=timeout, interval=0.1), found
    return found


def _signed(request: Received) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("x-signature-256", ""), expected)


def test_a_done_job_posts_its_outcome_once_signed(
    client: TestClient,
    fixture_site: FixtureSite,
    receiver: Receiver,
    start_worker: Any,
) -> None:
    worker = start_worker()
    job_id = _submit(
        client, fixture_site.url("/fiction/1001"), receiver.url("/hooks/ingest?token=abc")
    )
    job = wait_job(client, job_id, timeout=90)
    assert job["status"] == "done", worker.log()
    delivered = _settled_callback(client, job_id)
    assert delivered["status"] == "delivered" and delivered["attempts"] == 1, worker.log()
    time.sleep(2.5)  # two more reconciler passes: nothing is sent again
    assert len(receiver.received) == 1
    request = receiver.received[0]
    assert request.path == "/hooks/ingest?token=abc"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-novel-ingest-event"] == "job.done"
    assert _signed(request)
    body = request.json()
    assert request.headers["x-delivery-id"] == body["delivery_id"]
    assert {k: body[k] for k in ("job_id", "status", "novel_id", "source_url", "attempts")} == {
        "job_id": job_id,
        "status": "done",
        "novel_id": job["novel_id"],
        "source_url": job["source_url"],
        "attempts": job["attempts"],
    }
    assert body["chapters_saved"] == job["progress"]["chapters_saved"] > 0
    assert body["error_message"] is None and body["finished_at"] is not None


def test_a_receiver_failing_twice_gets_the_callback_on_the_third_attempt(
    client: TestClient,
    fixture_site: FixtureSite,
    receiver: Receiver,
    start_worker: Any,
) -> None:
    receiver._statuses.extend([500, 500])
    worker = start_worker()
    job_id = _submit(client, fixture_site.url("/fiction/1001"), receiver.url("/hook"))
    assert wait_job(client, job_id, timeout=90)["status"] == "done", worker.log()
    delivered = _settled_callback(client, job_id)
    assert delivered == {
        "status": "delivered",
        "attempts": 3,
        "error": None,
        "delivered_at": delivered["delivered_at"],
    }, worker.log()
    requests = receiver.received
    assert len(requests) == 3
    assert [r.headers["x-delivery-attempt"] for r in requests] == ["1", "2", "3"]
    assert len({r.headers["x-delivery-id"] for r in requests}) == 1
    assert all(_signed(r) for r in requests)
    # RQ schedules in whole seconds, so a 2 s wait may be cut to just over 1 s
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert all(gap >= 1 for gap in gaps), gaps


def test_a_callback_to_a_loopback_port_not_allowed_is_never_connected(
    client: TestClient,
    fixture_site: FixtureSite,
    internal_service: InternalService,
    start_worker: Any,
) -> None:
    worker = start_worker()
    job_id = _submit(
        client, fixture_site.url("/fiction/1001"), f"http://{internal_service.host}/hook"
    )
    assert wait_job(client, job_id, timeout=90)["status"] == "done", worker.log()
    failed = _settled_callback(client, job_id)
    assert failed["status"] == "failed", worker.log()
    assert failed["error"] == "callback_url refused: 127.0.0.1 is a loopback address"
    assert failed["attempts"] == 1
    assert internal_service.connections == 0


def test_a_cancelled_job_posts_its_error_at_once(
    client: TestClient, fixture_site: FixtureSite, receiver: Receiver, start_worker: Any
) -> None:
    """The cancel queues the delivery itself, before any worker runs."""
    job_id = _submit(client, fixture_site.url("/fiction/1001"), receiver.url("/hook"))
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 200
    worker = start_worker()
    assert _settled_callback(client, job_id)["status"] == "delivered", worker.log()
    (request,) = receiver.received
    assert request.headers["x-novel-ingest-event"] == "job.error"
    body = request.json()
    assert (body["status"], body["error_message"]) == ("error", "cancelled by user")


@pytest.mark.parametrize(
    ("callback_url", "says"),
    [
        ("https://hook-user:s3cret-pw@example.com/hook", "user name or password"),
        ("ftp://example.com/hook", "not an http(s) URL"),
        ("https://example.com/" + "a" * 2100, "at most 2048 characters"),
    ],
)
def test_a_callback_url_outside_the_rules_is_422_without_echoing_it(
    client: TestClient, fixture_site: FixtureSite, callback_url: str, says: str
) -> None:
    response = client.post(
        "/ingest", json={"url": fixture_site.url("/fiction/1001"), "callback_url": callback_url}
    )
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert "s3cret-pw" not in response.text and "example.com" not in response.text
    assert client.get("/jobs").json()["total"] == 0


def test_the_event_stream_follows_a_real_job_to_done(
    callback_env: None, fixture_site: FixtureSite, start_worker: Any
) -> None:
    served = ServedApp().start()
    try:
        answer = httpx.post(
            f"{served.url}/ingest", json={"url": fixture_site.url("/fiction/1001")}, timeout=10
        )
        job_id = answer.json()["job_id"]
        seen: list[dict[str, Any]] = []
        with httpx.stream("GET", f"{served.url}/jobs/{job_id}/events", timeout=60) as response:
            stream = events(response)
            seen.append(next(stream).data)
            start_worker()  # only now: the stream has shown the job queued
            seen.extend(event.data for event in stream)
    finally:
        served.stop()
    order = ["queued", "crawling", "parsing", "saving", "done"]
    statuses = [event["status"] for event in seen]
    assert statuses[0] == "queued" and statuses[-1] == "done"
    ranks = [order.index(status) for status in statuses]
    # the row is read every 0.5 s: a run faster than that shows only its ends
    assert ranks == sorted(ranks), statuses
    saved = [event["progress"]["chapters_saved"] for event in seen]
    assert saved == sorted(saved) and saved[-1] > 0


# deliver() run here, in the test's process, against the receiver: the races of the
# delivery's copies and of a user's retry, made to happen at a chosen moment.


def _ended_job(callback_url: str, *, status: str = "done") -> int:
    with session_scope() as session:
        job = IngestionJob(
            source_url="https://www.royalroad.com/fiction/4242",
            site="royalroad",
            site_novel_id="4242",
            status=status,
            error_message="HTTP 503" if status == "error" else None,
            finished_at=utcnow() - timedelta(minutes=1),
            callback_url=callback_url,
            callback_status="pending",
        )
        session.add(job)
        session.flush()
        return int(job.id)


def _row(job_id: int) -> IngestionJob:
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_two_copies_of_a_delivery_post_once(
    callback_env: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both copies read attempt 0; only the one that claims it first POSTs."""
    job_id = _ended_job(receiver.url("/hook"))
    due, results = callback._due, []

    def other_copy_runs_now(job: IngestionJob) -> bool:
        monkeypatch.setattr(callback, "_due", due)
        results.append(callback.deliver(job_id))  # the other copy, start to end
        return due(job)

    monkeypatch.setattr(callback, "_due", other_copy_runs_now)
    assert callback.deliver(job_id) == "skipped"
    assert results == ["delivered"]
    assert len(receiver.received) == 1
    row = _row(job_id)
    assert (row.callback_status, row.callback_attempts) == ("delivered", 1)


@pytest.mark.parametrize("answer", [200, 500])
def test_an_old_delivery_does_not_settle_a_retried_jobs_callback(
    callback_env: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, answer: int
) -> None:
    """The job is retried and ends again while its first outcome is being POSTed: that
    POST's answer settles nothing, and the new outcome gets its own delivery (a new id)."""
    job_id = _ended_job(receiver.url("/hook"), status="error")
    receiver._statuses.append(answer)
    post = callback.post

    def retried_meanwhile(*args: Any, **kwargs: Any) -> int:
        with session_scope() as session:
            assert reopen(session, job_id, message="retried by user")
        with session_scope() as session:  # the new attempt ends
            session.execute(
                update(IngestionJob)
                .where(IngestionJob.id == job_id)
                .values(status="done", finished_at=utcnow())
            )
        return post(*args, **kwargs)

    monkeypatch.setattr(callback, "post", retried_meanwhile)
    assert callback.deliver(job_id) == "superseded"  # no raise: RQ does not send it again
    row = _row(job_id)
    assert (row.callback_status, row.callback_attempts, row.callback_error) == ("pending", 0, None)
    monkeypatch.setattr(callback, "post", post)
    assert callback.deliver(job_id) == "delivered"
    old, new = receiver.received
    assert (old.json()["status"], new.json()["status"]) == ("error", "done")
    assert old.headers["x-delivery-id"] != new.headers["x-delivery-id"]
    assert new.headers["x-delivery-attempt"] == "1"
    row = _row(job_id)
    assert (row.callback_status, row.callback_attempts) == ("delivered", 1)


def test_a_stored_url_httpx_refuses_fails_the_callback_with_a_reason(
    callback_env: None, receiver: Receiver
) -> None:
    """A row stored before check_url refused such URLs: failed at once, not retried, and
    the URL (where a header would be injected) is not repeated."""
    job_id = _ended_job(receiver.url("/hook\r\nX-Injected: 1"))
    assert callback.deliver(job_id) == "refused"
    row = _row(job_id)
    assert (row.callback_status, row.callback_attempts) == ("failed", 1)
    assert row.callback_error == "callback_url refused: not a valid URL"
    assert receiver.received == []
