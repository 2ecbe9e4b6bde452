"""Turn a failed download into the service's error types, in words a user understands."""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest, NotSupported
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError
from twisted.internet.error import (
    ConnectError,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    NoRouteError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived, _DataLoss
from twisted.web.http import PotentialDataLoss

from crawler.middlewares import REFUSED, retry_after
from errors import (
    IngestFailure,
    PageNotFoundError,
    PermanentFailure,
    RefusedURLError,
    RetryableFailure,
    safe_message,
)

NETWORK_ERRORS = (ConnectError, DNSLookupError, ResponseFailed, ResponseNeverReceived)
TIMEOUTS = (TimeoutError, TCPTimedOutError)
# What a network error says to a user: a few words, never the OS's text ("111: Connection
# refused", "[Errno 113] ..."), which names errno numbers and tells nothing more.
WORDS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (DNSLookupError, "host not found"),
    (NoRouteError, "no route to host"),
    (ConnectionLost, "connection lost"),
    (ConnectionDone, "connection closed"),
    (ConnectError, "could not connect"),
    (_DataLoss, "answer cut short"),
    (PotentialDataLoss, "answer cut short"),
)


def classify(failure: Failure, url: str) -> IngestFailure:
    error: BaseException = failure.value or RuntimeError(failure.getErrorMessage())
    request = getattr(failure, "request", None)
    refused = request.meta.get(REFUSED) if request is not None else None
    if refused:  # the resolver dropped every address of the host (OriginGuardMiddleware)
        return RefusedURLError(url, refused)
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
        reasons = dict.fromkeys(_word(r.value) for r in error.reasons if r.value is not None)
        return f"connection failed ({', '.join(reasons) or 'no answer'})"
    return _word(error)


def _word(error: BaseException) -> str:
    for kind, word in WORDS:
        if isinstance(error, kind):
            return word
    if type(error).__module__.startswith("OpenSSL"):
        return "TLS failed"
    text = str(error).strip().splitlines()
    return safe_message(text[0], limit=200) if text else type(error).__name__
