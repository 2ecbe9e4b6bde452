"""The service's error hierarchy. Each class says when it is raised.

Retryable and permanent failures are different types: the queue retries the first
kind with backoff and sends the second straight to ERROR.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
from collections.abc import Mapping

from redis.exceptions import AuthenticationError as RedisAuthError
from redis.exceptions import NoPermissionError as RedisNoPermission
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as SATimeoutError


class IngestError(Exception):
    """Base class of every error this service raises on purpose."""


class InvalidURLError(IngestError):
    """Raised when a submitted URL is missing, malformed or not http(s)."""


class UnsupportedSiteError(IngestError):
    """Raised when a URL belongs to no site the service has an adapter for."""


class NotFoundError(IngestError):
    """Raised when a job, novel or chapter asked for does not exist."""


class StorageUnavailableError(IngestError):
    """Raised when the database cannot be reached."""


class QueueUnavailableError(IngestError):
    """Raised when Redis cannot be reached."""


class IngestFailure(IngestError):
    """Raised inside a job; the message is what the job row's error_message shows."""

    retryable: bool = False


class PermanentFailure(IngestFailure):
    """Raised when retrying cannot help: 404, a page that cannot be parsed, a bad site."""


class PageNotFoundError(PermanentFailure):
    """Raised when the site answers 404/410 for a page the job needs."""


class ParseError(PermanentFailure):
    """Raised when a fetched page does not have the structure its adapter expects."""


class RefusedURLError(PermanentFailure):
    """A request the crawler will not make: another host than the fiction's, a scheme other
    than http(s), an address inside the operator's network. Never retried."""

    def __init__(self, url: str, reason: str) -> None:
        self.url, self.reason = url, reason
        super().__init__(f"refused {safe_message(url, limit=200)}: {reason}")


class RetryableFailure(IngestFailure):
    """Raised when a later attempt may succeed: timeouts, resets, 5xx, 429, outages."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobCancelled(IngestFailure):
    """Raised inside a job when its row was cancelled while it ran."""


CANCELLED_BY_USER = "cancelled by user"  # the error_message of a row a user cancelled


class JobFailed(IngestError):
    """Raised by the RQ job function when its row ended ERROR, so that RQ records a
    failure; the message is the row's error_message."""


class StoreError(PermanentFailure):
    """Raised when the database refuses a record (a value out of range, a broken key).

    No retry stores what the database refused once: the job ends ERROR at once.
    """


MESSAGE_LIMIT = 500  # characters of an error_message, last_error or history line
# scheme://user:password@host: everything up to the authority's last "@" is a secret.
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s@/?#]*@)+")
# A password given as a parameter: `rediss://host/0?password=...`, a libpq DSN's
# `password=...`.
_PASSWORD_PARAM = re.compile(r"(?i)\b((?:ssl_)?(?:password|passwd|pwd)=)[^\s&;#'\"]+")
# A driver line that quotes the value it refused ('invalid input syntax for type integer:
# "abc"') names the problem before the colon; the value is a query parameter.
_QUOTED_VALUE = re.compile(r':\s*".*$')
# "[Errno 111] Connection refused": the OS's number tells a user nothing.
_ERRNO = re.compile(r"\[(?:Errno|WinError) -?\d+\]\s*")
# A local path an OSError names ("No such file or directory: '/srv/x'"), quoted, or a
# bare absolute path of two or more parts (never the path of a URL: "//" or a host
# precedes that one).
_QUOTED_PATH = re.compile(r"""(?::\s*)?(['"])/[^'"]*\1""")
_BARE_PATH = re.compile(r"(?<![\w.:/~%#?=&-])/(?:[^\s/'\"]+/)+[^\s/'\"]*")


def clean_text(text: str) -> str:
    """Text any database stores: no NUL characters, no lone surrogates."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def redact(text: str) -> str:
    """`text` without credentials: URL user:password, password parameters. For logs."""
    return _PASSWORD_PARAM.sub(r"\1***", _CREDENTIALS.sub(r"\1", text))


def safe_message(text: str, *, limit: int = MESSAGE_LIMIT) -> str:
    """One line a user may read: no URL credentials, no errno, no quoted local paths (an
    OSError's), whitespace folded, at most `limit` characters. The bare paths an
    exception's text may name go too where that text is read (short_error, _describe):
    not here, where "/fiction/<id>" is the service's own hint."""
    text = _ERRNO.sub("", redact(clean_text(text)))
    text = " ".join(_QUOTED_PATH.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def classify(error: BaseException, *, doing: str) -> IngestFailure:
    """What an exception means for a job, decided in this one place.

    Outages (database, Redis, the network) are retryable. A database that refuses the data
    (DataError, IntegrityError, a missing column ...) and every other exception (a bug: a
    parser exception, a type error) fail the same way on every attempt, so they end the
    job at once. The message names what failed and never carries SQL or query
    parameters: those stay in the worker's log.
    """
    if isinstance(error, IngestFailure):
        return error
    if is_outage(error):
        return RetryableFailure(f"{doing}: {_service(error)} unavailable ({public_reason(error)})")
    if isinstance(error, DBAPIError):
        return StoreError(f"could not {doing}: the database refused it ({short_error(error)})")
    if isinstance(error, SQLAlchemyError):
        return StoreError(f"could not {doing}: {type(error).__name__}")
    return PermanentFailure(f"internal error while trying to {doing}: {_describe(error)}")


# SQLSTATE classes of a server that is away or overloaded, not of a statement it refuses:
# 08 connection, 53 insufficient resources, 57 operator intervention (shutdown), 40
# transaction rollback (serialization, deadlock), 58 system error.
_OUTAGE_SQLSTATES = ("08", "53", "57", "40", "58")
_SQLITE_OUTAGES = ("database is locked", "disk i/o error", "unable to open database")


def is_outage(error: BaseException) -> bool:
    """True when the database or Redis is away, not when it refuses a statement."""
    if isinstance(error, RedisError | DisconnectionError | SATimeoutError | InterfaceError):
        return True
    if not isinstance(error, OperationalError):
        return False
    if error.connection_invalidated:
        return True
    code = getattr(error.orig, "pgcode", None)
    if code:
        return str(code)[:2] in _OUTAGE_SQLSTATES
    if type(error.orig).__module__.startswith("sqlite3"):
        return any(sign in str(error.orig).lower() for sign in _SQLITE_OUTAGES)
    return True  # psycopg2 gives no code when it cannot reach the server at all


def _service(error: BaseException) -> str:
    return "Redis" if isinstance(error, RedisError) else "database"


# What an outage's text says, in a few words that name no host, port, path or user: the
# detail goes to the log of the process that saw it, never to a response or a job row.
_REASONS = (
    ("authentication failed", ("authentication", "password", "wrongpass", "noauth", 'role "')),
    ("timed out", ("timed out", "timeout")),
    ("connection refused", ("connection refused",)),
    ("host not found", ("name or service not known", "could not translate host", "resolution")),
    ("connection lost", ("closed the connection", "closed unexpectedly", "eof detected")),
    ("connection lost", ("reset by peer", "broken pipe", "terminat")),
    ("TLS failed", ("ssl", "certificate", "tls")),
    ("server busy", ("too many connections", "loading", "shutting down", "starting up")),
    ("database locked", ("database is locked",)),
    ("transaction conflict", ("could not serialize", "deadlock")),
    ("database not found", ("does not exist",)),
)


def public_reason(error: BaseException) -> str:
    """Why a service is unavailable, generically: "connection refused", "timed out",
    "authentication failed", "TLS failed" ... or "unreachable"."""
    if isinstance(error, RedisAuthError | RedisNoPermission):
        return "authentication failed"
    if isinstance(error, RedisTimeout | SATimeoutError | socket.timeout):
        return "timed out"
    if isinstance(error, ssl.SSLError):
        return "TLS failed"
    inner = error.orig if isinstance(error, DBAPIError) else error
    text = f"{inner} {error.__cause__ or ''} {error.__context__ or ''}".lower()
    found = (reason for reason, signs in _REASONS if any(sign in text for sign in signs))
    return next(found, "unreachable")


def short_error(error: BaseException) -> str:
    """The driver's own first line (psycopg2: "integer out of range"), never the SQL; for an
    outage, only its generic reason (public_reason): those lines name hosts and ports."""
    if is_outage(error):
        return public_reason(error)
    inner = error.orig if isinstance(error, DBAPIError) else error
    lines = str(inner).strip().splitlines()
    line = _QUOTED_VALUE.sub("", lines[0]) if lines else ""
    return safe_message(_without_paths(line or type(inner).__name__), limit=200)


def _without_paths(text: str) -> str:
    """An exception's text without the local paths it names."""
    return _BARE_PATH.sub("<local path>", text)


def _describe(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    detail = safe_message(_without_paths(lines[0]), limit=200) if lines else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


class RedactingFilter(logging.Filter):
    """Takes credentials out of every record a handler writes: the message with its
    arguments, and the traceback (a URL with its password can ride in an exception)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it itself
            return True
        if message == str(record.msg) or not isinstance(record.args, tuple | dict):
            record.msg, record.args = redact(message), None
        else:  # formatters that read the arguments themselves (uvicorn's access log)
            record.msg = redact(str(record.msg))
            record.args = _redacted_args(record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redacted_args(
    args: tuple[object, ...] | Mapping[str, object],
) -> tuple[object, ...] | dict[str, object]:
    if isinstance(args, tuple):
        return tuple(redact(a) if isinstance(a, str) else a for a in args)
    return {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}


def redact_logs(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on every handler of `logger` (the root logger): call it once
    logging is configured. Records of every child logger pass through these handlers."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
