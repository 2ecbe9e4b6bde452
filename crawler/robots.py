"""robots.txt shared by every crawl: Scrapy's RobotsTxtMiddleware, its bodies kept in Redis.

Each job is a crawl of its own, so without a shared copy every job fetches the site's
robots.txt again before its first page. A 2xx body is kept for `ROBOTSTXT_CACHE_TTL`
seconds under the host it was asked of; rules are still parsed and obeyed by Scrapy's own
parser. When Redis cannot be reached the crawl fetches robots.txt itself, as Scrapy does.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from scrapy import Request, Spider
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)
KEY_PREFIX = "novel-ingest:robots.txt:"


@lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    # No retries (redis-py's default is three, with backoff): Redis away costs a crawl one
    # timeout of a second, then it fetches robots.txt itself.
    return Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 0)
    )


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self.ttl = crawler.settings.getint("ROBOTSTXT_CACHE_TTL", 0)
        url = crawler.settings.get("ROBOTSTXT_CACHE_REDIS_URL")
        self.cache = _redis(url) if url and self.ttl > 0 else None

    def robot_parser(self, request: Request, spider: Spider):  # type: ignore[no-untyped-def]
        netloc = urlparse_cached(request).netloc
        if self.cache is not None and netloc not in self._parsers:
            body = self._cached(netloc)
            if body is not None:
                self._parsers[netloc] = self._parserimpl.from_crawler(self.crawler, body)
                assert self.crawler.stats
                self.crawler.stats.inc_value("robotstxt/shared_cache_hit")
        return super().robot_parser(request, spider)

    def _parse_robots(self, response: Response, netloc: str, spider: Spider) -> None:
        super()._parse_robots(response, netloc, spider)
        if self.cache is not None and 200 <= response.status < 300:
            try:
                self.cache.set(KEY_PREFIX + netloc, response.body, ex=self.ttl)
            except RedisError as error:
                log.debug("robots.txt of %s not shared: %s", netloc, error)

    def _cached(self, netloc: str) -> bytes | None:
        assert self.cache is not None
        try:
            body = self.cache.get(KEY_PREFIX + netloc)
        except RedisError as error:
            log.debug("shared robots.txt unavailable: %s", error)
            return None
        return body if isinstance(body, bytes) else None
