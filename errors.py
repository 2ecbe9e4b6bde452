"""The service's error hierarchy. Each class says when it is raised.

Retryable and permanent failures are different types: the queue retries the first
kind with backoff and sends the second straight to ERROR.
"""

from __future__ import annotations


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
