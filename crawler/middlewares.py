"""Downloader middlewares: retries with exponential backoff that honour Retry-After,
redirects kept on the fiction's site, and the guard that lets no request of a fiction crawl
leave for anywhere else (crawler.egress)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Self
from urllib.parse import urljoin, urlsplit

from redis.exceptions import RedisError
from scrapy import Request, Spider, signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.response import response_status_message
from twisted.internet.error import DNSLookupError

from crawler.egress import ALIAS_HOSTS_SETTING, Egress, installed_refusal
from crawler.pacing import SitePace, paced, site_key
from crawler.sites.fields import site_link
from errors import RefusedURLError
from models.base import utcnow

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)
# answers whose Retry-After pauses the site for every worker
PAUSING = frozenset({429, 503})


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry, but waiting base * 2**n seconds (or Retry-After) before each retry.

    A 429 or 503 with Retry-After pauses the site for every worker (crawler.pacing), for
    at most RETRY_BACKOFF_MAX: the retry then waits for the pause in SharedPaceMiddleware,
    not here. A longer Retry-After is not retried here: the job decides.
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.base = settings.getfloat("RETRY_BACKOFF_BASE", 0.5)
        self.cap = settings.getfloat("RETRY_BACKOFF_MAX", 30.0)
        url = settings.get("PACE_REDIS_URL")
        self.pace = SitePace.from_url(url) if url else None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = super().from_crawler(crawler)
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    async def spider_closed(self) -> None:
        if self.pace is not None:
            await self.pace.close()

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Spider
    ) -> Request | Response:
        if response.status not in self.retry_http_codes:
            return response
        hinted = retry_after(response)
        paused = await self._pause_site(request, response, spider, hinted)
        if request.meta.get("dont_retry") or (hinted is not None and hinted > self.cap):
            return response  # a longer wait than we give: the job decides (it ends ERROR)
        retry = self._retry(request, response_status_message(response.status), spider)
        if retry is None:
            return response
        if not paused:  # else the retry waits for the site's pause with every other request
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

    async def _pause_site(
        self, request: Request, response: Response, spider: Spider, hinted: float | None
    ) -> bool:
        """Pause the request's site for every worker as the site asked; False when the
        shared pace does not apply or Redis is away (the retry then sleeps here)."""
        if hinted is None or response.status not in PAUSING or self.pace is None:
            return False
        if not paced(spider):  # not a fiction crawl: nothing waits for a shared pause
            return False
        try:
            await self.pace.pause(site_key(request.url), min(hinted, self.cap))
        except (RedisError, OSError) as error:
            log.warning("could not pause %s for every worker: %s", request.url, error)
            return False
        return True


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


REDIRECTS = frozenset({301, 302, 303, 307, 308})


class SiteRedirectMiddleware:
    """Keep every redirect of a crawl on the fiction's own site.

    Sites redirect with absolute URLs on their real host (WordPress, Rails do): such a
    target is rebased onto the host the fiction was reached at (an alias, a mirror), as
    links are. A redirect to any other host or scheme ends the crawl with a RefusedURLError
    naming the target: it is never followed. Runs before Scrapy's RedirectMiddleware sees
    the answer (a higher order number).
    """

    def process_response(self, request: Request, response: Response, spider: Spider) -> Response:
        location = response.headers.get(b"Location")
        if response.status not in REDIRECTS or not location:
            return response
        target = urljoin(request.url, location.decode("latin-1").strip())
        rebased = _on_site(spider, target)
        if rebased is None:
            raise RefusedURLError(target, f"{request.url} redirects there, off the fiction's site")
        return response.replace(headers={**response.headers.to_unicode_dict(), "Location": rebased})


def _on_site(spider: Spider, url: str) -> str | None:
    ref, adapter = getattr(spider, "ref", None), getattr(spider, "adapter", None)
    if ref is None or adapter is None:  # not a fiction crawl: Scrapy's own rules apply
        return url
    return site_link(ref.url, url, hosts=adapter.hosts)


# request.meta key: why the connection-time address check refused the request's host
REFUSED = "egress_refused"


class OriginGuardMiddleware:
    """The last check before the downloader, for every request of a fiction crawl (retries,
    redirect hops and robots.txt included): http(s) only, on the fiction's own origin, and
    never to an address inside the operator's network (crawler.egress). A request that
    fails it raises RefusedURLError (the job ends ERROR, not retried).

    A host name whose every address the resolver dropped fails with Twisted's
    DNSLookupError; this marks the request (`REFUSED` in its meta, and no retry) so that
    crawler.failures reports the refusal. Crawls of other spiders (no `ref`) pass untouched.
    """

    def __init__(self, egress: Egress) -> None:
        self.egress = egress

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(Egress.from_aliases(crawler.settings.getlist(ALIAS_HOSTS_SETTING)))

    def process_request(self, request: Request, spider: Spider) -> None:
        ref = getattr(spider, "ref", None)
        if ref is None:
            return
        reason = self.egress.url_refusal(request.url, origin=ref.url)
        if reason is not None:
            raise RefusedURLError(request.url, reason)

    def process_exception(self, request: Request, exception: Exception, spider: Spider) -> None:
        if getattr(spider, "ref", None) is None or not isinstance(exception, DNSLookupError):
            return
        reason = installed_refusal(urlsplit(request.url).hostname or "")
        if reason is not None:
            request.meta[REFUSED] = reason
            request.meta["dont_retry"] = True  # the same lookup is refused again
