from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from redis import Redis
from scrapy import Request, Spider
from scrapy.http import HtmlResponse, Response
from scrapy.settings import Settings

from crawler.middlewares import BackoffRetryMiddleware, retry_after
from crawler.pacing import KEY_PREFIX
from crawler.sites.base import Politeness
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
