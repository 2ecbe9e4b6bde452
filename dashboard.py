"""`cli.py dashboard`: rq-dashboard on this service's Redis, behind HTTP basic auth.

The login comes from DASHBOARD_USERNAME / DASHBOARD_PASSWORD (the environment or .env), never
from a command line, which every user of the host can read in /proc. rq-dashboard's own
`--username/--password` check is not used: it guards its blueprint only (its /static files
answer anyone) and compares with `!=`. Here one WSGI wrapper guards every path, comparing in
constant time. Without a login the dashboard listens on 127.0.0.1 only, like the API
without keys (api/binding.py).
"""

from __future__ import annotations

import hmac
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from rq_dashboard.cli import make_flask_app
from rq_dashboard.web import setup_rq_connection
from werkzeug.datastructures import Authorization
from werkzeug.serving import run_simple

from api.binding import EVERYWHERE, LOOPBACK, is_loopback
from config import Settings
from errors import IngestError

REALM = "novel-ingest dashboard"


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


def make_app(settings: Settings, login: Login | None) -> WSGIApplication:
    """rq-dashboard's Flask app on REDIS_URL, behind `login` when there is one."""
    flask_app = make_flask_app(None, None, None, "")
    flask_app.config.update(
        RQ_DASHBOARD_REDIS_URL=settings.redis_url,
        RQ_DASHBOARD_DISABLE_DELETE=False,
        DEPRECATED_OPTIONS=[],
    )
    setup_rq_connection(flask_app)
    app: WSGIApplication = flask_app
    return app if login is None else BasicAuth(app, login)


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
    app = make_app(settings, chosen.login)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per poll
    print(start_line(chosen), file=sys.stderr, flush=True)
    run_simple(chosen.host, chosen.port, app, threaded=True)
