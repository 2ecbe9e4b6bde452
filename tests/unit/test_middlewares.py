from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from scrapy.http import HtmlResponse

from crawler.middlewares import retry_after

NOW = datetime(2024, 5, 17, 10, 30, 0, tzinfo=UTC)


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
