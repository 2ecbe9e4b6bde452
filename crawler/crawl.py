"""Run one fiction crawl with a Scrapy CrawlerRunner, on a reactor started here.

Twisted's reactor cannot be restarted inside a process, so this runs once per process:
in RQ's forked work-horse. The worker parent imports Scrapy (cheap forks) but never
installs a reactor; the horse installs the asyncio reactor, crawls, and exits.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scrapy.crawler import Crawler, CrawlerRunner
from scrapy.utils import defer as scrapy_defer
from scrapy.utils.misc import build_from_crawler, load_object
from scrapy.utils.reactor import install_reactor
from twisted.python.failure import Failure

from config import Settings
from crawler import sites
from crawler.items import FictionRef, NovelRecord
from crawler.settings import REACTOR, scrapy_settings
from crawler.sites.base import SiteAdapter
from crawler.spiders.fiction import (
    Caps,
    CrawlListener,
    CrawlResult,
    FictionSpider,
    PageSink,
    every_chapter,
)
from errors import IngestError, PermanentFailure, classify

# Scrapy 2.13 waits 100 ms (`scrapy.utils.defer._DEFER_DELAY`) before every spider
# callback so that the reactor serves I/O first. Our crawl is two callback hops deep
# (fiction page, then chapters), so that alone costs ~200 ms of sleep per job: a 1 ms
# wait keeps the intent (the reactor still goes through readers and writers first)
# without the latency. The version is pinned; tests/unit/test_crawl.py checks the name.
CALLBACK_DELAY = 0.001


@dataclass
class _Ready:
    """A runner and crawler built ahead, for the settings they were built from."""

    settings: dict[str, Any]
    runner: CrawlerRunner
    crawler: Crawler


_ready: _Ready | None = None


def prepare(settings: Settings) -> None:
    """Build the next crawl's CrawlerRunner and Crawler now, before the worker forks.

    Building them copies Scrapy's settings three times (~10 ms of every job); a forked
    horse inherits them ready and uses its own copy once. Neither needs a reactor.
    """
    global _ready
    values = scrapy_settings(settings)
    runner = CrawlerRunner(values)
    _ready = _Ready(values, runner, runner.create_crawler(FictionSpider))


def _runner_and_crawler(settings: Settings) -> tuple[CrawlerRunner, Crawler]:
    global _ready
    ready, _ready = _ready, None  # a crawler runs once
    values = scrapy_settings(settings)
    if ready is not None and ready.settings == values:
        return ready.runner, ready.crawler
    runner = CrawlerRunner(values)
    return runner, runner.create_crawler(FictionSpider)


class ReactorUsedError(IngestError):
    """Raised when a crawl is asked of a process whose reactor has already run."""


def crawl(
    ref: FictionRef,
    adapter: SiteAdapter,
    *,
    settings: Settings,
    listener: CrawlListener,
    sink: PageSink,
    timeout: float,
    choose: Callable[[NovelRecord], NovelRecord] = every_chapter,
) -> CrawlResult:
    """Fetch the listing, then the pages of the chapters `choose` keeps, into `sink`;
    failures are in `result.failure`.

    Past `timeout` seconds the crawl is stopped and the result says it timed out.
    """
    reactor = _fresh_reactor()
    scrapy_defer._DEFER_DELAY = CALLBACK_DELAY
    logging.getLogger("scrapy").setLevel(
        settings.log_level if settings.log_level == "DEBUG" else "WARNING"
    )
    result = CrawlResult()
    runner, crawler = _runner_and_crawler(settings)
    _install_resolver(crawler, reactor)
    done = runner.crawl(
        crawler,
        ref=ref,
        adapter=adapter,
        result=result,
        listener=listener,
        sink=sink,
        choose=choose,
        caps=Caps(chapters=settings.crawler_max_chapters, job_bytes=settings.crawler_max_job_bytes),
        politeness=sites.politeness(adapter, settings),
        deadline=time.monotonic() + max(timeout, 0.0),
    )
    done.addErrback(lambda failure: _record_crash(result, failure))
    done.addBoth(lambda _: reactor.stop())
    alarm = reactor.callLater(max(timeout, 0.0), _time_out, runner, result, settings.job_timeout)
    reactor.run(installSignalHandlers=False)
    if alarm.active():
        alarm.cancel()
    if crawler.stats is not None:
        result.stats = crawler.stats.get_stats()
    return result


def _install_resolver(crawler: Crawler, reactor: Any) -> None:
    """Put the crawl's DNS_RESOLVER on the reactor (crawler.egress.PublicAddressResolver:
    every connection's addresses are checked). CrawlerProcess does this when it starts the
    reactor; CrawlerRunner, which this module runs on a reactor of its own, does not."""
    resolver = build_from_crawler(
        load_object(crawler.settings["DNS_RESOLVER"]), crawler, reactor=reactor
    )
    resolver.install_on_reactor()


def _time_out(runner: CrawlerRunner, result: CrawlResult, limit: int) -> None:
    if result.failure is None:
        result.failure = PermanentFailure(f"timed out after {limit} s")
    runner.stop()


def _fresh_reactor():  # type: ignore[no-untyped-def]
    if "twisted.internet.reactor" not in sys.modules:
        install_reactor(REACTOR)
    from twisted.internet import reactor

    if getattr(reactor, "_startedBefore", False):
        raise ReactorUsedError(
            "this process has already run a crawl; run jobs in a forking worker "
            "(python worker.py, or rq worker without --worker-class SimpleWorker)"
        )
    return reactor


def _record_crash(result: CrawlResult, failure: Failure) -> None:
    if result.failure is None:
        error = failure.value or RuntimeError(failure.getErrorMessage())
        result.failure = classify(error, doing="crawl")
