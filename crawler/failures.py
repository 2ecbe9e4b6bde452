"""Turn a failed download into the service's error types, in words a user understands."""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest, NotSupported
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectError, DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from crawler.middlewares import retry_after
from errors import IngestFailure, PageNotFoundError, PermanentFailure, RetryableFailure

NETWORK_ERRORS = (ConnectError, DNSLookupError, ResponseFailed, ResponseNeverReceived)
TIMEOUTS = (TimeoutError, TCPTimedOutError)


def classify(failure: Failure, url: str) -> IngestFailure:
    error: BaseException = failure.value or RuntimeError(failure.getErrorMessage())
    if isinstance(error, HttpError):
        return _http_failure(error, url)
    if isinstance(error, TIMEOUTS):
        return RetryableFailure(f"timed out fetching {url}")
    if isinstance(error, NETWORK_ERRORS):
        return RetryableFailure(f"could not fetch {url}: {_describe(error)}")
    if isinstance(error, CancelledError):
        return PermanentFailure(f"download of {url} cancelled: page too large")
    if isinstance(error, IgnoreRequest) and "robots.txt" in str(error):
        return PermanentFailure(
            f"{url} is forbidden by the site's robots.txt (CRAWLER_OBEY_ROBOTS_TXT=false"
            " overrides it)"
        )
    if isinstance(error, IgnoreRequest):
        return PermanentFailure(f"not fetched {url}: {error or 'ignored'}")
    if isinstance(error, NotSupported):  # a scheme Scrapy has no handler for
        return PermanentFailure(f"not fetched {url}: {_describe(error)}")
    if isinstance(error, IngestFailure):
        return error
    return RetryableFailure(f"could not fetch {url}: {_describe(error)}")


def _http_failure(error: HttpError, url: str) -> IngestFailure:
    status = error.response.status
    if status in (404, 410):
        return PageNotFoundError(f"page not found (HTTP {status}): {url}")
    if status == 429 or status >= 500:
        return RetryableFailure(
            f"site answered HTTP {status} for {url}", retry_after=retry_after(error.response)
        )
    return PermanentFailure(f"site refused {url} with HTTP {status}")


def _describe(error: BaseException) -> str:
    if isinstance(error, ResponseFailed | ResponseNeverReceived):
        reasons = ", ".join(str(r.value) or type(r.value).__name__ for r in error.reasons)
        return f"connection failed ({reasons or type(error).__name__})"
    return str(error) or type(error).__name__
