from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from urllib.parse import urljoin

import pytest
from redis import Redis
from scrapy import Request, Spider
from scrapy.http import HtmlResponse, Response
from scrapy.settings import Settings
from twisted.internet.error import (
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    NoRouteError,
)
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseNeverReceived

from crawler.egress import Egress
from crawler.failures import classify
from crawler.items import FictionRef
from crawler.middlewares import (
    REFUSED,
    BackoffRetryMiddleware,
    OriginGuardMiddleware,
    SiteRedirectMiddleware,
    retry_after,
)
from crawler.pacing import KEY_PREFIX
from crawler.sites import ADAPTERS
from crawler.sites.base import Politeness
from errors import RefusedURLError
from tests.utils.services import REDIS_URL

NOW = datetime(2024, 5, 17, 10, 30, 0, tzinfo=UTC)
HOST = "fiction.example:8080"


def _response(header: str | None) -> HtmlResponse:
    headers = {"Retry-After": header} if header is not None else {}
    return HtmlResponse("http://x/", status=429, headers=headers, body=b"")


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), (None, None), ("soon", None)])
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after(_response(header)) == expected


def test_retry_after_http_date() -> None:
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert retry_after(_response(when), now=NOW) == 30.0


def test_retry_after_http_date_in_the_past_is_no_wait() -> None:
    when = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert retry_after(_response(when), now=NOW) == 0.0


# --- a 429 or 503 with Retry-After pauses the site for every worker -------------------


class _Stats:
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        """Retry counts are not under test here."""


def _retry_middleware(cap: float = 30.0) -> BackoffRetryMiddleware:
    return BackoffRetryMiddleware(
        Settings(
            {
                "RETRY_TIMES": 1,
                "RETRY_HTTP_CODES": [429, 503],
                "RETRY_BACKOFF_BASE": 0.1,
                "RETRY_BACKOFF_MAX": cap,
                "PACE_REDIS_URL": REDIS_URL,
            }
        )
    )


def _spider(*, paced: bool) -> Spider:
    spider = Spider(name="fiction")
    spider.crawler = SimpleNamespace(settings=Settings(), stats=_Stats())  # type: ignore[assignment]
    if paced:
        spider.politeness = Politeness(download_delay=0.5, concurrent_requests=4)
    return spider


def _answered(status: int, retry_after: str) -> tuple[Request, HtmlResponse]:
    request = Request(f"http://{HOST}/fiction/1/c/chapter/2")
    headers = {"Retry-After": retry_after}
    return request, HtmlResponse(request.url, status=status, headers=headers, request=request)


def _respond(
    middleware: BackoffRetryMiddleware, status: int, retry_after: str, *, paced: bool
) -> tuple[Request | Response, float]:
    async def run() -> tuple[Request | Response, float]:
        request, response = _answered(status, retry_after)
        started = time.monotonic()
        answer = await middleware.process_response(request, response, _spider(paced=paced))
        took = time.monotonic() - started
        await middleware.spider_closed()
        return answer, took

    return asyncio.run(run())


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_pauses_the_site_for_every_worker_and_the_retry_does_not_sleep(
    redis_conn: Redis, status: int
) -> None:
    answer, took = _respond(_retry_middleware(), status, "5", paced=True)
    assert isinstance(answer, Request)  # retried ...
    assert took < 0.5  # ... at once: it waits for the pause in SharedPaceMiddleware
    assert 4800 < redis_conn.pttl(f"{KEY_PREFIX}{HOST}:paused") <= 5000


def test_a_retry_after_beyond_the_cap_is_not_retried_and_pauses_for_the_cap(
    redis_conn: Redis,
) -> None:
    answer, _ = _respond(_retry_middleware(cap=3.0), 429, "3600", paced=True)
    assert isinstance(answer, Response) and answer.status == 429  # the job decides
    assert 2800 < redis_conn.pttl(f"{KEY_PREFIX}{HOST}:paused") <= 3000


def test_a_crawl_without_the_shared_pace_sleeps_out_retry_after_itself(
    redis_conn: Redis,
) -> None:
    answer, took = _respond(_retry_middleware(), 429, "1", paced=False)
    assert isinstance(answer, Request)
    assert took >= 1.0
    assert not redis_conn.exists(f"{KEY_PREFIX}{HOST}:paused")


# --- every request of a fiction crawl stays on the fiction's origin --------------------

ORIGIN = "http://fiction.example:8080"


def _fiction_spider() -> Spider:
    spider = Spider(name="fiction")
    spider.ref = FictionRef(site="royalroad", site_id="1", url=f"{ORIGIN}/fiction/1")
    spider.adapter = ADAPTERS["royalroad"]
    return spider


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "http://127.0.0.1:8080/fiction/1",
            "not on the fiction's site (http://fiction.example:8080)",
        ),
        ("http://fiction.example:6379/", "not on the fiction's site (http://fiction.example:8080)"),
        (
            "http://internal.example:8080/",
            "not on the fiction's site (http://fiction.example:8080)",
        ),
        ("file:///etc/passwd", "the scheme 'file' is not http(s)"),
        ("data:text/plain,hello", "the scheme 'data' is not http(s)"),
        ("ftp://fiction.example:8080/x", "the scheme 'ftp' is not http(s)"),
    ],
)
def test_the_guard_refuses_a_request_off_the_fiction_origin(url: str, reason: str) -> None:
    with pytest.raises(RefusedURLError) as refused:
        OriginGuardMiddleware(Egress()).process_request(Request(url), _fiction_spider())
    assert str(refused.value) == f"refused {url}: {reason}"


def test_the_guard_refuses_an_origin_inside_the_network_unless_it_is_an_alias() -> None:
    spider = _fiction_spider()
    spider.ref = FictionRef(site="royalroad", site_id="1", url="http://127.0.0.1:8765/fiction/1")
    request = Request("http://127.0.0.1:8765/robots.txt")
    with pytest.raises(RefusedURLError, match=r"127\.0\.0\.1 is a loopback address"):
        OriginGuardMiddleware(Egress()).process_request(request, spider)
    aliased = OriginGuardMiddleware(Egress.from_aliases(["127.0.0.1:8765"]))
    assert aliased.process_request(request, spider) is None
    with pytest.raises(RefusedURLError, match="loopback"):  # the alias is for 8765 only
        spider.ref = FictionRef(site="royalroad", site_id="1", url="http://127.0.0.1:8766/x")
        aliased.process_request(Request("http://127.0.0.1:8766/x"), spider)


def test_the_guard_passes_the_fiction_origin_and_other_spiders() -> None:
    guard = OriginGuardMiddleware(Egress())
    assert (
        guard.process_request(Request(f"{ORIGIN}/fiction/1/x/chapter/2/y"), _fiction_spider())
        is None
    )
    assert guard.process_request(Request("http://127.0.0.1:1/"), Spider(name="other")) is None


def test_the_guard_leaves_a_lookup_failure_alone_when_no_resolver_refused_it() -> None:
    request = Request(f"{ORIGIN}/fiction/1")
    guard = OriginGuardMiddleware(Egress())
    assert guard.process_exception(request, DNSLookupError("no results"), _fiction_spider()) is None
    assert REFUSED not in request.meta and "dont_retry" not in request.meta


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433:8080/",
        "http://[::ffff:127.0.0.1]:8080/",
        "file:///etc/passwd",
        "//internal.example/admin",
    ],
)
def test_a_redirect_off_the_site_is_refused_naming_its_target(location: str) -> None:
    request = Request(f"{ORIGIN}/fiction/1")
    response = HtmlResponse(
        request.url, status=302, headers={"Location": location}, request=request
    )
    with pytest.raises(RefusedURLError) as refused:
        SiteRedirectMiddleware().process_response(request, response, _fiction_spider())
    target = urljoin(request.url, location)
    assert (
        str(refused.value)
        == f"refused {target}: {request.url} redirects there, off the fiction's site"
    )


def test_a_redirect_to_the_real_host_is_rebased_on_the_origin() -> None:
    request = Request(f"{ORIGIN}/fiction/1")
    location = "https://www.royalroad.com/fiction/1/slug"
    response = HtmlResponse(
        request.url, status=301, headers={"Location": location}, request=request
    )
    answer = SiteRedirectMiddleware().process_response(request, response, _fiction_spider())
    assert answer.headers[b"Location"] == f"{ORIGIN}/fiction/1/slug".encode()


# --- failures in words: no errno, and a refused lookup is a refusal ---------------------


def _failure(error: Exception, request: Request) -> Failure:
    failure = Failure(error)
    failure.request = request  # type: ignore[attr-defined]  # as Scrapy sets it
    return failure


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectionRefusedError("111: Connection refused"), "connection refused"),
        (DNSLookupError("[Errno -2] Name or service not known"), "host not found"),
        (NoRouteError("113: No route to host"), "no route to host"),
        (
            ResponseNeverReceived([Failure(ConnectionLost("reset"))]),
            "connection failed (connection lost)",
        ),
        (OSError(2, "No such file or directory", "/srv/secret/file"), "No such file or directory"),
    ],
)
def test_a_network_failure_says_what_happened_without_errno(error: Exception, words: str) -> None:
    url = f"{ORIGIN}/fiction/1"
    classified = classify(_failure(error, Request(url)), url)
    assert str(classified) == f"could not fetch {url}: {words}"
    assert classified.retryable


def test_a_lookup_the_resolver_refused_is_a_refusal_not_retried() -> None:
    url = f"{ORIGIN}/fiction/1"
    request = Request(
        url, meta={REFUSED: "fiction.example resolves only to 10.0.0.1, a private address"}
    )
    classified = classify(_failure(DNSLookupError("no results"), request), url)
    assert isinstance(classified, RefusedURLError) and not classified.retryable
    assert str(classified) == (
        f"refused {url}: fiction.example resolves only to 10.0.0.1, a private address"
    )
