"""`cli.py dashboard`: rq-dashboard on this service's Redis, behind HTTP basic auth.

The login comes from DASHBOARD_USERNAME / DASHBOARD_PASSWORD (the environment or .env), never
from a command line, which every user of the host can read in /proc. rq-dashboard's own
`--username/--password` check is not used: it guards its blueprint only (its /static files
answer anyone) and compares with `!=`. Here one WSGI wrapper guards every path, comparing in
constant time. Without a login the dashboard listens on 127.0.0.1 only, like the API
without keys (api/binding.py).

In both modes a second wrapper, `SameSite`, guards against other sites' pages: browsers
resend cached basic-auth credentials, and without a login anyone's browser on this host can
reach 127.0.0.1. It refuses (403) a Host header that is not this dashboard's (on loopback:
loopback names only, against DNS rebinding), and a cross-site request that could change
anything: every method but GET/HEAD, and every path naming an action (rq-dashboard's
/requeue/<queue> answers GET too).
"""

from __future__ import annotations

import hmac
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from fastapi import Request
from rq_dashboard.cli import make_flask_app
from rq_dashboard.web import setup_rq_connection
from werkzeug.datastructures import Authorization
from werkzeug.serving import run_simple

from api.auth import is_cross_site
from api.binding import EVERYWHERE, LOOPBACK, is_loopback
from config import Settings
from errors import IngestError

REALM = "novel-ingest dashboard"
SAFE_METHODS = frozenset({"GET", "HEAD"})
# the path segments of rq-dashboard 0.9.0's routes that change state (rq_dashboard/web.py):
# /job/<id>/delete, /job/<id>/requeue, /requeue/<queue> (GET too), /queue/<q>/<reg>/empty,
# /queue/<q>/compact
ACTIONS = frozenset({"delete", "requeue", "empty", "compact"})
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


class DashboardSetupError(IngestError):
    """Raised when the dashboard's settings would serve it without a login beyond this
    host, or name only half of a login."""


@dataclass(frozen=True)
class Login:
    username: str
    password: str

    def __repr__(self) -> str:  # never the password, should it reach a log or a traceback
        return f"Login(username={self.username!r}, password='***')"


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    login: Login | None


def read_login(settings: Settings) -> Login | None:
    """Both DASHBOARD_USERNAME and DASHBOARD_PASSWORD, or neither (None: no login)."""
    username, password = settings.dashboard_username, settings.dashboard_password
    if bool(username) != bool(password):
        missing = "DASHBOARD_PASSWORD" if username else "DASHBOARD_USERNAME"
        raise DashboardSetupError(
            f"{missing} is not set: set both DASHBOARD_USERNAME and DASHBOARD_PASSWORD"
            " for a login, or neither for a dashboard on 127.0.0.1 only"
        )
    return Login(username, password) if username else None


def choose_host(*, host: str | None, has_login: bool) -> str:
    """DASHBOARD_HOST if set, else 0.0.0.0 with a login and 127.0.0.1 without; a host
    beyond loopback without a login is refused."""
    chosen = host or (EVERYWHERE if has_login else LOOPBACK)
    if not has_login and not is_loopback(chosen):
        raise DashboardSetupError(
            f"refusing to serve the dashboard on {chosen} without a login: set"
            " DASHBOARD_USERNAME and DASHBOARD_PASSWORD, or leave DASHBOARD_HOST unset"
        )
    return chosen


def plan(settings: Settings) -> Plan:
    login = read_login(settings)
    host = choose_host(host=settings.dashboard_host, has_login=login is not None)
    return Plan(host=host, port=settings.dashboard_port, login=login)


class BasicAuth:
    """WSGI middleware: every request needs the login (HTTP basic auth), else 401."""

    def __init__(self, app: WSGIApplication, login: Login) -> None:
        self.app = app
        self._username = login.username.encode()
        self._password = login.password.encode()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.allows(environ.get("HTTP_AUTHORIZATION")):
            return self.app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Cache-Control", "no-store"),
            ],
        )
        return [b"login required\n"]

    def allows(self, header: str | None) -> bool:
        given = Authorization.from_header(header)
        if given is None or given.type != "basic":
            return False
        # both compared, each in constant time: the answer's timing tells neither apart
        user = hmac.compare_digest((given.username or "").encode(), self._username)
        word = hmac.compare_digest((given.password or "").encode(), self._password)
        return user & word


def host_name(host: str) -> str:
    """The name in a Host header, without its port: "[::1]:9181" -> "::1"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _forbidden(start_response: StartResponse, reason: str) -> Iterable[bytes]:
    start_response(
        "403 Forbidden",
        [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")],
    )
    return [reason.encode() + b"\n"]


class SameSite:
    """WSGI middleware: only this dashboard's Host, and no changes from another site.

    Bound to loopback, a Host that is not a loopback name is 403 (a DNS-rebound name);
    bound to one address, that address or loopback; bound to every address (with a login),
    any name. A request that could change state (not GET/HEAD, or a path with an action
    segment) is 403 when a browser says another site's page made it (api.auth's rule:
    `Sec-Fetch-Site: cross-site|same-site`, or an Origin that is not the Host). A client
    sending neither header (curl, scripts) is let through.
    """

    def __init__(self, app: WSGIApplication, bound_host: str) -> None:
        self.app = app
        self._bound = host_name(bound_host)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not self.host_allowed(environ.get("HTTP_HOST", "")):
            return _forbidden(start_response, "this dashboard is not served under that name")
        if changes_state(environ) and is_cross_site(_headers_only(environ)):
            return _forbidden(start_response, "cross-site requests cannot change anything here")
        return self.app(environ, start_response)

    def host_allowed(self, host: str) -> bool:
        if self._bound in ANY_ADDRESS:
            return True
        name = host_name(host)
        if not name:
            return False
        return is_loopback(name) or (not is_loopback(self._bound) and name == self._bound)


def changes_state(environ: WSGIEnvironment) -> bool:
    """Not GET/HEAD, or a path with a segment naming one of rq-dashboard's actions."""
    if str(environ.get("REQUEST_METHOD", "GET")).upper() not in SAFE_METHODS:
        return True
    segments = str(environ.get("PATH_INFO", "")).lower().split("/")
    return not ACTIONS.isdisjoint(segments)


def _headers_only(environ: WSGIEnvironment) -> Request:
    """The headers api.auth.is_cross_site reads, as the (ASGI) Request it takes."""
    keys = {"host": "HTTP_HOST", "origin": "HTTP_ORIGIN", "sec-fetch-site": "HTTP_SEC_FETCH_SITE"}
    # PEP 3333: header values are latin-1 decoded strings
    headers = [
        (name.encode("latin-1"), str(environ[key]).encode("latin-1"))
        for name, key in keys.items()
        if key in environ
    ]
    return Request({"type": "http", "headers": headers})


def make_app(settings: Settings, login: Login | None, bound_host: str) -> WSGIApplication:
    """rq-dashboard's Flask app on REDIS_URL, behind `login` when there is one, and always
    behind `SameSite` for `bound_host`."""
    flask_app = make_flask_app(None, None, None, "")
    flask_app.config.update(
        RQ_DASHBOARD_REDIS_URL=settings.redis_url,
        RQ_DASHBOARD_DISABLE_DELETE=False,
        DEPRECATED_OPTIONS=[],
    )
    setup_rq_connection(flask_app)
    app: WSGIApplication = flask_app
    if login is not None:
        app = BasicAuth(app, login)
    return SameSite(app, bound_host)


def start_line(chosen: Plan) -> str:
    where = f"http://{chosen.host}:{chosen.port}/"
    if chosen.login is None:
        return (
            f"rq-dashboard on {where} WITHOUT a login (DASHBOARD_USERNAME/DASHBOARD_PASSWORD"
            " unset): listening on this host only"
        )
    return f"rq-dashboard on {where}, login required (user {chosen.login.username!r})"


def serve(settings: Settings) -> None:
    """Serve until stopped; raises DashboardSetupError before listening if unsafe."""
    chosen = plan(settings)
    app = make_app(settings, chosen.login, chosen.host)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per poll
    print(start_line(chosen), file=sys.stderr, flush=True)
    run_simple(chosen.host, chosen.port, app, threaded=True)
