"""Scrapy settings built from the service's Settings (CRAWLER_* knobs)."""

from __future__ import annotations

from typing import Any

from config import Settings
from crawler.egress import ALIAS_HOSTS_SETTING

REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# Only http(s) is crawled: no file:, data:, ftp: or s3: handler (the FTP one would also
# install a reactor when imported). OriginGuardMiddleware refuses those schemes first.
DISABLED_HANDLERS = ("file", "data", "ftp", "s3")
UNUSED_EXTENSIONS = (
    "scrapy.extensions.telnet.TelnetConsole",
    "scrapy.extensions.feedexport.FeedExporter",
    "scrapy.extensions.memusage.MemoryUsage",
    "scrapy.extensions.spiderstate.SpiderState",
    "scrapy.extensions.logstats.LogStats",
)
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]


def scrapy_settings(settings: Settings) -> dict[str, Any]:
    return {
        "BOT_NAME": "novel-ingest",
        "TWISTED_REACTOR": REACTOR,
        "USER_AGENT": settings.crawler_user_agent,
        "ROBOTSTXT_OBEY": settings.crawler_obey_robots_txt,
        "CONCURRENT_REQUESTS": settings.crawler_concurrent_requests,
        # A fiction crawl keeps its site's pace over every worker (crawler.pacing, through
        # PACE_REDIS_URL); these two are Scrapy's own, per crawl, for any other spider.
        "CONCURRENT_REQUESTS_PER_DOMAIN": settings.crawler_site_concurrency or 4,
        "DOWNLOAD_DELAY": settings.crawler_download_delay or 0.0,
        "DOWNLOAD_TIMEOUT": settings.crawler_download_timeout,
        "DOWNLOAD_MAXSIZE": settings.crawler_max_page_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "AUTOTHROTTLE_ENABLED": settings.crawler_autothrottle,
        "RETRY_TIMES": settings.crawler_retry_times,
        "RETRY_HTTP_CODES": RETRY_HTTP_CODES,
        "RETRY_BACKOFF_BASE": settings.crawler_retry_backoff,
        "RETRY_BACKOFF_MAX": settings.job_retry_backoff_max,
        "REDIRECT_MAX_TIMES": 10,
        # A <meta http-equiv=refresh> is a redirect no SiteRedirectMiddleware sees: off.
        "METAREFRESH_ENABLED": False,
        # Resolved addresses that are not public are dropped at connect time (installed by
        # crawler.crawl: Scrapy's CrawlerRunner does not); alias hosts are exempt.
        "DNS_RESOLVER": "crawler.egress.PublicAddressResolver",
        ALIAS_HOSTS_SETTING: sorted(settings.site_aliases),
        # The spider never asks for a page twice; a dupe filter would only hide redirect
        # loops (a -> b -> a is dropped silently instead of failing the request).
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.middlewares.BackoffRetryMiddleware": 550,
            # after RedirectMiddleware (600) in request order: it sees each 3xx first
            "crawler.middlewares.SiteRedirectMiddleware": 650,
            # closest to the downloader: every retry, redirect hop and robots.txt is paced
            "crawler.pacing.SharedPaceMiddleware": 950,
            # last before the downloader: what leaves is on the fiction's origin, http(s),
            # never an address inside the operator's network (crawler.egress)
            "crawler.middlewares.OriginGuardMiddleware": 990,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.robots.SharedRobotsTxtMiddleware": 100,
        },
        "ROBOTSTXT_CACHE_TTL": settings.crawler_robots_txt_ttl,
        "ROBOTSTXT_CACHE_REDIS_URL": settings.redis_url,
        "PACE_REDIS_URL": settings.redis_url,
        "DOWNLOAD_HANDLERS": dict.fromkeys(DISABLED_HANDLERS),
        # Extensions a one-fiction crawl has no use for; each costs start-up time per job.
        "EXTENSIONS": dict.fromkeys(UNUSED_EXTENSIONS),
        "TELNETCONSOLE_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
        "LOG_LEVEL": "WARNING",
        "COOKIES_ENABLED": False,
        # A proxy (http_proxy in the environment) would make the connect-time address
        # check apply to the proxy, not to the site: the crawler connects directly.
        "HTTPPROXY_ENABLED": False,
        # Scrapy reads each generator callback's source (inspect + tokenize + ast) per
        # crawl to warn about `return value` in generators: ~5 ms per job for a check
        # that ruff and the tests already make of our one spider.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        # Scrapy starts CONCURRENT_ITEMS cooperative tasks to drain every response's
        # output (100 by default). Our spider yields requests, never items: one task per
        # response does the same work without 99 idle ones (~1 ms a page).
        "CONCURRENT_ITEMS": 1,
    }
