"""The service's error hierarchy. Each class says when it is raised.

Retryable and permanent failures are different types: the queue retries the first
kind with backoff and sends the second straight to ERROR.
"""

from __future__ import annotations

import re

from redis.exceptions import RedisError
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


class RetryableFailure(IngestFailure):
    """Raised when a later attempt may succeed: timeouts, resets, 5xx, 429, outages."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobCancelled(IngestFailure):
    """Raised inside a job when its row was cancelled while it ran."""


class StoreError(PermanentFailure):
    """Raised when the database refuses a record (a value out of range, a broken key).

    No retry stores what the database refused once: the job ends ERROR at once.
    """


MESSAGE_LIMIT = 500  # characters of an error_message, last_error or history line
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")


def safe_message(text: str, *, limit: int = MESSAGE_LIMIT) -> str:
    """One line a user may read: no URL credentials, whitespace folded, at most `limit`."""
    text = " ".join(_CREDENTIALS.sub(r"\1", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def classify(error: BaseException, *, doing: str) -> IngestFailure:
    """What an exception means for a job, decided in this one place.

    Outages (database, Redis, the network) are retryable. A database that refuses the data
    (DataError, IntegrityError ...) and every other exception (a bug: a parser exception,
    a type error) fail the same way on every attempt, so they end the job at once. The
    message names what failed and never carries SQL or query parameters: those stay in
    the worker's log.
    """
    if isinstance(error, IngestFailure):
        return error
    if isinstance(error, _OUTAGES):
        return RetryableFailure(f"{doing}: {_service(error)} unavailable ({_first_line(error)})")
    if isinstance(error, DBAPIError):
        return StoreError(f"could not {doing}: the database refused it ({_first_line(error)})")
    if isinstance(error, SQLAlchemyError):
        return StoreError(f"could not {doing}: {type(error).__name__}")
    return PermanentFailure(f"internal error while trying to {doing}: {_describe(error)}")


_OUTAGES = (OperationalError, InterfaceError, DisconnectionError, SATimeoutError, RedisError)


def _service(error: BaseException) -> str:
    return "Redis" if isinstance(error, RedisError) else "database"


def _first_line(error: BaseException) -> str:
    """The driver's own first line (psycopg2: "integer out of range"), never the SQL."""
    inner = error.orig if isinstance(error, DBAPIError) else error
    lines = str(inner).strip().splitlines()
    return safe_message(lines[0] if lines else type(inner).__name__, limit=200)


def _describe(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    detail = safe_message(lines[0], limit=200) if lines else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
