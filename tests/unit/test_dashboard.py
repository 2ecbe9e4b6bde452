"""dashboard.py: where the dashboard may listen, the login it reads, and the basic-auth
wrapper that guards every path."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from werkzeug.test import Client

import dashboard
from config import Settings

LOGIN = dashboard.Login("operator", "pässword-1")


def _basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _inner(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"inside " + environ["PATH_INFO"].encode()]


@pytest.mark.parametrize(
    ("host", "has_login", "chosen"),
    [
        (None, False, "127.0.0.1"),
        (None, True, "0.0.0.0"),
        ("::1", False, "::1"),
        ("localhost", False, "localhost"),
        ("10.0.0.5", True, "10.0.0.5"),
    ],
)
def test_the_host_is_loopback_unless_there_is_a_login(
    host: str | None, has_login: bool, chosen: str
) -> None:
    assert dashboard.choose_host(host=host, has_login=has_login) == chosen


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "dashboard.example"])
def test_a_host_beyond_loopback_without_a_login_is_refused(host: str) -> None:
    with pytest.raises(dashboard.DashboardSetupError, match=f"on {host} without a login"):
        dashboard.choose_host(host=host, has_login=False)


def test_half_a_login_is_refused_and_a_whole_one_is_read() -> None:
    with pytest.raises(dashboard.DashboardSetupError, match="DASHBOARD_PASSWORD is not set"):
        dashboard.read_login(Settings(dashboard_username="operator", dashboard_password=""))
    with pytest.raises(dashboard.DashboardSetupError, match="DASHBOARD_USERNAME is not set"):
        dashboard.read_login(Settings(dashboard_username="", dashboard_password="word"))
    assert dashboard.read_login(Settings(dashboard_username="", dashboard_password="")) is None
    both = Settings(dashboard_username="operator", dashboard_password="s3cr3t")
    assert dashboard.read_login(both) == dashboard.Login("operator", "s3cr3t")
    assert "s3cr3t" not in repr(dashboard.read_login(both))


def test_the_plan_says_where_and_whether_a_login_is_asked() -> None:
    open_plan = dashboard.plan(Settings(dashboard_username="", dashboard_password=""))
    assert (open_plan.host, open_plan.login) == ("127.0.0.1", None)
    assert "WITHOUT a login" in dashboard.start_line(open_plan)
    guarded = dashboard.plan(Settings(dashboard_username="op", dashboard_password="s3cr3t"))
    assert guarded.host == "0.0.0.0" and "login required" in dashboard.start_line(guarded)
    assert "s3cr3t" not in dashboard.start_line(guarded)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("operator", "wrong"),
        _basic("someone", LOGIN.password),
        _basic("operator", LOGIN.password + "x"),
        _basic("operato", LOGIN.password),
        {"Authorization": f"Bearer {LOGIN.password}"},
        {"Authorization": "Basic not-base64!"},
    ],
)
def test_every_path_without_the_login_is_401(headers: dict[str, str]) -> None:
    client = Client(dashboard.BasicAuth(_inner, LOGIN))
    asks = [("GET", "/"), ("GET", "/static/js/app.js"), ("GET", "/0/data/queues.json")]
    asks += [("POST", "/queue/q/queued/empty"), ("POST", "/job/j/delete")]
    for method, path in asks:
        answer = client.open(path, method=method, headers=headers)
        assert answer.status_code == 401, (path, headers)
        assert answer.headers["WWW-Authenticate"].startswith('Basic realm="')
        assert answer.headers["Cache-Control"] == "no-store"
        assert b"inside" not in answer.data


def test_the_login_lets_every_path_through() -> None:
    client = Client(dashboard.BasicAuth(_inner, LOGIN))
    for path in ("/", "/static/js/app.js", "/queue/q/failed/empty"):
        answer = client.get(path, headers=_basic(LOGIN.username, LOGIN.password))
        assert answer.status_code == 200 and answer.data == f"inside {path}".encode()
