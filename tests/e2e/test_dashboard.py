"""`cli.py dashboard`: rq-dashboard behind HTTP basic auth on every path (pages, JSON, the
delete and empty actions, its static files), the login passed through the environment only;
without a login it listens on 127.0.0.1 only, and it refuses settings that would expose it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq import Queue

from tests.utils.dashboard import DashboardProcess, all_command_lines, listening_addresses
from tests.utils.services import QUEUE_NAME, ROOT

USER = "operator"
READS = (
    "/",
    "/0/view/workers",
    "/0/data/queues.json",
    "/0/data/workers.json",
    f"/0/data/jobs/{QUEUE_NAME}/queued/8/asc/1.json",
    "/favicon.ico",
    "/static/js/jquery-3.5.1.min.js",  # rq-dashboard's own check lets this one through
)


@pytest.fixture
def start_dashboard(tmp_path: Path) -> Iterator[Callable[..., DashboardProcess]]:
    started: list[DashboardProcess] = []

    def start(**env: str) -> DashboardProcess:
        started.append(DashboardProcess(tmp_path, env=env).wait_ready())
        return started[-1]

    yield start
    for dashboard in started:
        dashboard.stop()


def _queued_job(redis_conn: Redis) -> str:
    """A job on the test's queue (no worker runs it): something for the actions to hit."""
    return str(Queue(QUEUE_NAME, connection=redis_conn).enqueue("builtins.len", "x").id)


def _actions(job_id: str) -> list[str]:
    return [f"/job/{job_id}/delete", f"/queue/{QUEUE_NAME}/queued/empty", f"/requeue/{QUEUE_NAME}"]


def test_every_path_needs_the_login(
    redis_conn: Redis, start_dashboard: Callable[..., DashboardProcess]
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    dashboard = start_dashboard(DASHBOARD_USERNAME=USER, DASHBOARD_PASSWORD=password)
    job_id = _queued_job(redis_conn)
    wrong = [None, (USER, "wrong"), ("someone", password), (USER, password + "x")]
    with httpx.Client(base_url=dashboard.url, timeout=10) as client:
        for auth in wrong:
            for path in READS:
                answer = client.get(path, auth=auth)
                assert answer.status_code == 401, (path, auth, answer.text)
                assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")
            for path in _actions(job_id):
                assert client.post(path, auth=auth).status_code == 401, (path, auth)
        bearer = client.get("/", headers={"Authorization": f"Bearer {password}"})
        assert bearer.status_code == 401
        # the refused actions did nothing: the job is still on its queue
        assert Queue(QUEUE_NAME, connection=redis_conn).job_ids == [job_id]

        login = (USER, password)
        for path in READS:
            assert client.get(path, auth=login).status_code == 200, path
        queues = client.get("/0/data/queues.json", auth=login).json()["queues"]
        assert QUEUE_NAME in [queue["name"] for queue in queues]
        empty = client.post(f"/queue/{QUEUE_NAME}/queued/empty", auth=login)
        assert empty.status_code == 200, empty.text
    assert Queue(QUEUE_NAME, connection=redis_conn).job_ids == []  # with the login, it works
    assert "login required" in dashboard.log()
    assert password not in dashboard.log()


def test_the_password_is_in_no_command_line(
    redis_conn: Redis, start_dashboard: Callable[..., DashboardProcess]
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    dashboard = start_dashboard(DASHBOARD_USERNAME=USER, DASHBOARD_PASSWORD=password)
    lines = all_command_lines()
    assert any("cli.py dashboard" in line for line in lines)
    assert not [line for line in lines if password in line]
    assert listening_addresses(dashboard.port) == {"0.0.0.0"}  # with a login: every address


def test_without_a_login_it_listens_on_loopback_only_and_says_so(
    redis_conn: Redis, start_dashboard: Callable[..., DashboardProcess]
) -> None:
    dashboard = start_dashboard(DASHBOARD_USERNAME="", DASHBOARD_PASSWORD="")
    assert listening_addresses(dashboard.port) == {"127.0.0.1"}
    assert "WITHOUT a login" in dashboard.log() and "this host only" in dashboard.log()
    assert httpx.get(dashboard.url + "/0/data/queues.json", timeout=10).status_code == 200


def _refused(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "cli.py", "dashboard"],
        cwd=ROOT,
        env={**os.environ, "DASHBOARD_PORT": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"DASHBOARD_HOST": "0.0.0.0"}, "without a login"),
        ({"DASHBOARD_HOST": "10.1.2.3"}, "without a login"),
        ({"DASHBOARD_USERNAME": USER}, "DASHBOARD_PASSWORD is not set"),
        ({"DASHBOARD_PASSWORD": "secret-word"}, "DASHBOARD_USERNAME is not set"),
    ],
)
def test_settings_that_would_expose_it_are_refused(env: dict[str, str], reason: str) -> None:
    blank = {"DASHBOARD_USERNAME": "", "DASHBOARD_PASSWORD": "", "DASHBOARD_HOST": ""}
    result = _refused(**{**blank, **env})
    output = " ".join((result.stdout + result.stderr).split())  # rich wraps long lines
    assert result.returncode == 2, output
    assert reason in output
    assert "secret-word" not in output


def test_another_sites_page_cannot_act_even_with_the_login(
    redis_conn: Redis, start_dashboard: Callable[..., DashboardProcess]
) -> None:
    """Browsers resend a cached basic-auth login to whatever page makes the request: an
    auto-submitting form elsewhere must not empty a queue, nor an <img> requeue one."""
    password = f"pw-{uuid.uuid4().hex}"
    dashboard = start_dashboard(DASHBOARD_USERNAME=USER, DASHBOARD_PASSWORD=password)
    job_id = _queued_job(redis_conn)
    queue = Queue(QUEUE_NAME, connection=redis_conn)
    login = (USER, password)
    empty = f"/queue/{QUEUE_NAME}/queued/empty"
    with httpx.Client(base_url=dashboard.url, timeout=10) as client:
        evil = client.post(empty, auth=login, headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403, evil.text
        assert "cross-site" in evil.text
        fetch = client.get(
            f"/requeue/{QUEUE_NAME}", auth=login, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert fetch.status_code == 403, fetch.text
        assert queue.job_ids == [job_id]  # nothing happened

        own = client.post(empty, auth=login, headers={"Origin": dashboard.url})
        assert own.status_code == 200, own.text
        assert queue.job_ids == []
        _queued_job(redis_conn)
        plain = client.post(empty, auth=login)  # no Origin: curl, a script
        assert plain.status_code == 200, plain.text
    assert queue.job_ids == []


def test_without_a_login_other_names_and_other_sites_are_refused(
    redis_conn: Redis, start_dashboard: Callable[..., DashboardProcess]
) -> None:
    """On 127.0.0.1 any page could reach it: a DNS-rebound name is refused, and so is a
    cross-site action."""
    dashboard = start_dashboard(DASHBOARD_USERNAME="", DASHBOARD_PASSWORD="")
    job_id = _queued_job(redis_conn)
    queue = Queue(QUEUE_NAME, connection=redis_conn)
    with httpx.Client(base_url=dashboard.url, timeout=10) as client:
        rebound = client.get("/0/data/queues.json", headers={"Host": "evil.example"})
        assert rebound.status_code == 403, rebound.text
        assert QUEUE_NAME not in rebound.text
        local = client.get("/0/data/queues.json", headers={"Host": f"localhost:{dashboard.port}"})
        assert local.status_code == 200
        empty = f"/queue/{QUEUE_NAME}/queued/empty"
        evil = client.post(empty, headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403, evil.text
        assert queue.job_ids == [job_id]
        assert client.post(empty).status_code == 200
    assert queue.job_ids == []
