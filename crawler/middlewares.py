"""Downloader middlewares: retries with exponential backoff that honour Retry-After."""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.utils import parsedate_to_datetime

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.response import response_status_message

from models.base import utcnow


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry, but waiting base * 2**n seconds (or Retry-After) before each retry."""

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.base = settings.getfloat("RETRY_BACKOFF_BASE", 0.5)
        self.cap = settings.getfloat("RETRY_BACKOFF_MAX", 30.0)

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Spider
    ) -> Request | Response:
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        hinted = retry_after(response)
        if hinted is not None and hinted > self.cap:
            return response  # a longer wait than we give: the job decides (it ends ERROR)
        retry = self._retry(request, response_status_message(response.status), spider)
        if retry is None:
            return response
        await asyncio.sleep(self._delay(request, hinted))
        return retry

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: Spider
    ) -> Request | Response | None:
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions_to_retry):
            return None
        retry = self._retry(request, exception, spider)
        if retry is not None:
            await asyncio.sleep(self._delay(request, None))
        return retry

    def _delay(self, request: Request, hinted: float | None) -> float:
        if hinted is not None:
            return min(hinted, self.cap)
        return min(self.base * 2 ** request.meta.get("retry_times", 0), self.cap)


def retry_after(response: Response, *, now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait (delta-seconds or HTTP-date), if it said.

    An HTTP-date counts from `now` (an aware datetime; the current UTC time by default).
    """
    raw = response.headers.get(b"Retry-After")
    if not raw:
        return None
    value = raw.decode("latin-1").strip()
    if value.isdigit():
        return float(value)
    now = utcnow() if now is None else now
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
