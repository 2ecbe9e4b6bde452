"""dashboard.py: where the dashboard may listen, the login it reads, and the basic-auth
wrapper that guards every path."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
from werkzeug.test import Client, TestResponse

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


ACTIONS = [
    ("POST", "/job/j/delete"),
    ("POST", "/job/j/requeue"),
    ("GET", "/requeue/q"),
    ("POST", "/requeue/q"),
    ("POST", "/queue/q/queued/empty"),
    ("POST", "/queue/q/compact"),
    ("POST", "/anything"),  # a write of any kind, whether rq-dashboard routes it or not
    ("PUT", "/"),
    ("DELETE", "/0/data/queues.json"),
]
READ_PATHS = ["/", "/0/view/workers", "/0/data/queues.json", "/static/js/app.js"]
CROSS = [
    {"Origin": "http://evil.example"},
    {"Origin": "http://127.0.0.1:9999"},  # another port is another origin
    {"Origin": "null"},
    {"Origin": "http://["},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "Cross-Site", "Origin": "http://127.0.0.1:9181"},
]
SAME = [
    {},
    {"Origin": "http://127.0.0.1:9181"},
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},  # typed into the address bar
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:9181"},
]
OWN_HOST = "127.0.0.1:9181"


def _guarded(bound: str = "127.0.0.1") -> Client:
    return Client(dashboard.SameSite(_inner, bound))


def _refused(answer: TestResponse, reason: str) -> None:
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert reason.encode() in answer.data and b"inside" not in answer.data


@pytest.mark.parametrize("headers", CROSS)
@pytest.mark.parametrize(("method", "path"), ACTIONS)
def test_a_cross_site_action_is_403(method: str, path: str, headers: dict[str, str]) -> None:
    answer = _guarded().open(path, method=method, headers={"Host": OWN_HOST, **headers})
    _refused(answer, "cross-site")


@pytest.mark.parametrize("headers", SAME)
@pytest.mark.parametrize(("method", "path"), ACTIONS)
def test_a_same_origin_or_headerless_action_passes(
    method: str, path: str, headers: dict[str, str]
) -> None:
    answer = _guarded().open(path, method=method, headers={"Host": OWN_HOST, **headers})
    assert answer.status_code == 200 and answer.data == f"inside {path}".encode()


@pytest.mark.parametrize("headers", CROSS)
@pytest.mark.parametrize("path", READ_PATHS)
def test_a_cross_site_read_passes(path: str, headers: dict[str, str]) -> None:
    """An <img> or <link> elsewhere may load a page (the browser lets that site read
    nothing); only what can change state is refused."""
    for method in ("GET", "HEAD"):
        answer = _guarded().open(path, method=method, headers={"Host": OWN_HOST, **headers})
        assert answer.status_code == 200, (method, path, headers)


@pytest.mark.parametrize("bound", ["127.0.0.1", "localhost", "::1"])
@pytest.mark.parametrize(
    "host", ["localhost", "localhost:9181", "127.0.0.1", OWN_HOST, "[::1]:9181", "LOCALHOST"]
)
def test_bound_to_loopback_a_loopback_host_passes(bound: str, host: str) -> None:
    assert _guarded(bound).get("/", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("bound", ["127.0.0.1", "::1"])
@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:9181", "10.0.0.5:9181", "127.0.0.1.evil.example", ""]
)
def test_bound_to_loopback_another_host_is_403(bound: str, host: str) -> None:
    """A DNS-rebound name reaches 127.0.0.1 with the attacker's name as its Host."""
    for method, path in [("GET", "/0/data/queues.json"), ("POST", "/queue/q/queued/empty")]:
        answer = _guarded(bound).open(path, method=method, headers={"Host": host})
        _refused(answer, "not served under that name")


def test_bound_to_one_address_that_address_or_loopback_passes() -> None:
    client = _guarded("10.0.0.5")
    for host in ("10.0.0.5", "10.0.0.5:9181", "127.0.0.1:9181", "localhost"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "10.0.0.6:9181", ""):
        _refused(client.get("/", headers={"Host": host}), "not served under that name")


@pytest.mark.parametrize("bound", ["0.0.0.0", "::"])
def test_bound_to_every_address_any_host_passes_but_not_a_cross_site_action(bound: str) -> None:
    client = _guarded(bound)
    for host in ("dashboard.example", "dashboard.example:9181", "10.0.0.5", ""):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    own = {"Host": "dashboard.example:9181", "Origin": "http://dashboard.example:9181"}
    assert client.post("/queue/q/queued/empty", headers=own).status_code == 200
    evil = {**own, "Origin": "http://evil.example"}
    _refused(client.post("/queue/q/queued/empty", headers=evil), "cross-site")


def test_the_guard_is_outside_the_login_in_both_modes() -> None:
    """A cross-site action is refused even with the (cached) login; no login, still guarded."""
    login = _basic(LOGIN.username, LOGIN.password)
    evil = {"Host": OWN_HOST, "Origin": "http://evil.example"}
    settings = Settings(redis_url="redis://127.0.0.1:1/0")
    for chosen_login, bound in ((LOGIN, "0.0.0.0"), (None, "127.0.0.1")):
        app = dashboard.make_app(settings, chosen_login, bound)
        assert isinstance(app, dashboard.SameSite)
        client = Client(app)
        _refused(client.post("/queue/q/queued/empty", headers={**evil, **login}), "cross-site")
        _refused(client.get("/requeue/q", headers={**evil, **login}), "cross-site")
    guarded = dashboard.make_app(settings, LOGIN, "0.0.0.0")
    assert isinstance(guarded, dashboard.SameSite) and isinstance(guarded.app, dashboard.BasicAuth)
    assert Client(guarded).get("/", headers={"Host": OWN_HOST}).status_code == 401
