"""GET /jobs/{id}/events against the real app served by uvicorn (PostgreSQL; no worker):
the test moves the job itself, each move once the stream has shown the last one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from api.csp import LOCKED
from db import session_scope
from models import JobStatus
from models.ingestion_job import claim, record_progress, transition
from tests.utils import services
from tests.utils.factories import make_job


class ServedApp:
    """create_app() under uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self) -> None:
        from main import create_app

        self.port = services.free_port()
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedApp:
        self.thread.start()
        assert services.wait_for(lambda: self.server.started, timeout=10)
        return self

    def requests_running(self) -> int:
        """Requests whose app call has not returned (a stream still running)."""
        return len(self.server.server_state.tasks)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(pg_db: str) -> Iterator[ServedApp]:
    app = ServedApp().start()
    yield app
    app.stop()


@dataclass
class Event:
    name: str
    data: dict[str, Any]


def events(response: httpx.Response) -> Iterator[Event]:
    """The events of an SSE stream as they arrive (comments, such as pings, skipped)."""
    name, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def _progress(event: Event) -> tuple[int, int, int]:
    p = event.data["progress"]
    return p["chapters_found"], p["chapters_fetched"], p["chapters_saved"]


def _steps(job_id: int) -> list[Any]:
    """The moves of a run, each applied once the stream has shown the state before it."""
    run: dict[str, str | None] = {}

    def start(session: Any) -> None:
        run["id"] = claim(session, job_id)

    def progress(**counts: int) -> Any:
        return lambda session: record_progress(session, job_id, run_id=str(run["id"]), **counts)

    def move(target: JobStatus) -> Any:
        return lambda session: transition(session, job_id, target, owner=run["id"])

    return [
        start,
        progress(chapters_found=3),
        progress(chapters_fetched=3),
        move(JobStatus.PARSING),
        move(JobStatus.SAVING),
        progress(chapters_saved=3),
        move(JobStatus.DONE),
    ]


def test_the_stream_shows_every_change_in_order_and_ends_after_done(served: ServedApp) -> None:
    job_id = make_job()
    steps = _steps(job_id)
    seen: list[Event] = []
    with httpx.stream("GET", f"{served.url}/jobs/{job_id}/events", timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["content-security-policy"] == LOCKED
        assert response.headers["x-content-type-options"] == "nosniff"
        for event in events(response):
            seen.append(event)
            if steps:
                with session_scope() as session:
                    steps.pop(0)(session)
    assert {e.name for e in seen} == {"status"}
    assert [(e.data["status"], _progress(e)) for e in seen] == [
        ("queued", (0, 0, 0)),
        ("crawling", (0, 0, 0)),
        ("crawling", (3, 0, 0)),
        ("crawling", (3, 3, 0)),
        ("parsing", (3, 3, 0)),
        ("saving", (3, 3, 0)),
        ("saving", (3, 3, 3)),
        ("done", (3, 3, 3)),
    ]
    assert seen[-1].data == {
        "id": job_id,
        "status": "done",
        "attempts": 1,
        "progress": {
            "chapters_found": 3,
            "chapters_fetched": 3,
            "chapters_saved": 3,
            "chapters_locked": 0,
        },
        "error_message": None,
        "last_error": None,
    }
    assert services.wait_for(lambda: served.requests_running() == 0, timeout=5)


def test_an_ended_job_gets_one_event_and_the_stream_closes(served: ServedApp) -> None:
    job_id = make_job(status=JobStatus.QUEUED)
    with session_scope() as session:
        transition(session, job_id, JobStatus.ERROR, message="cancelled by user")
    with httpx.stream("GET", f"{served.url}/jobs/{job_id}/events", timeout=10) as response:
        seen = list(events(response))
    assert [(e.data["status"], e.data["error_message"]) for e in seen] == [
        ("error", "cancelled by user")
    ]


def test_an_unknown_job_is_404_before_any_stream(served: ServedApp) -> None:
    response = httpx.get(f"{served.url}/jobs/987654/events", timeout=10)
    assert response.status_code == 404
    assert response.json() == {"detail": "job 987654 not found"}


def test_a_client_that_leaves_ends_the_stream(served: ServedApp) -> None:
    job_id = make_job()
    with httpx.stream("GET", f"{served.url}/jobs/{job_id}/events", timeout=10) as response:
        stream = events(response)  # kept: a generator collected would close the response
        assert next(stream).data["status"] == "queued"
        assert served.requests_running() == 1
    assert services.wait_for(lambda: served.requests_running() == 0, timeout=10)


def test_streams_hold_no_database_connection_while_they_wait(served: ServedApp) -> None:
    """More streams than the pool has connections (5 + 5 overflow): every one still
    gets every event, which it could not if each held a connection."""
    job_id = make_job()
    count = 14
    opened = threading.Barrier(count + 1, timeout=30)
    last: list[str] = []

    def follow() -> None:
        with httpx.stream("GET", f"{served.url}/jobs/{job_id}/events", timeout=30) as response:
            stream = events(response)
            next(stream)
            opened.wait()
            last.append([e.data["status"] for e in stream][-1])

    threads = [threading.Thread(target=follow) for _ in range(count)]
    for thread in threads:
        thread.start()
    opened.wait()
    with session_scope() as session:
        run_id = claim(session, job_id)
    for target in (JobStatus.PARSING, JobStatus.SAVING, JobStatus.DONE):
        with session_scope() as session:
            transition(session, job_id, target, owner=run_id)
    for thread in threads:
        thread.join(30)
    assert last == ["done"] * count


def test_the_api_documents_the_stream(served: ServedApp) -> None:
    operation = httpx.get(f"{served.url}/openapi.json", timeout=10).json()["paths"][
        "/jobs/{job_id}/events"
    ]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/event-stream"]
    assert "404" in operation["responses"]
