"""The fiction spider: the steps a site adapter names, for any site.

It only fetches (the job's CRAWLING phase). It asks the adapter for the first page, hands
every listing page back to it until the listing is whole (a fiction page, a table of
contents that needs more requests, a consent page to get past), then fetches the pages
that hold the text of the chapters the run needs (`choose`: an update fetches only what
changed) and hands each to the `sink` (the job's spool) for the PARSING phase; pages the
sink already has, from an earlier run of the job, are not fetched again. The first page
that cannot be had ends the crawl: a novel with a missing chapter is not a correct novel.
So does a listing of more chapters than CRAWLER_MAX_CHAPTERS, more body bytes than
CRAWLER_MAX_JOB_BYTES over all the crawl's answers (`Caps`), and a listing chain longer
than MAX_LISTING_PAGES.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, StopDownload
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.failures import classify
from crawler.items import FictionRef, NovelRecord
from crawler.sites.base import Fetch, ListingStep, Politeness, SiteAdapter
from errors import IngestFailure, ParseError, PermanentFailure
from errors import classify as classify_error

log = logging.getLogger(__name__)
T = TypeVar("T")
# A listing is a chain of pages (fiction page, a consent page, a table of contents, its
# next page ...): one that has not ended after this many is an adapter gone round in a loop.
MAX_LISTING_PAGES = 20


class CrawlListener(Protocol):
    def chapters_found(self, count: int) -> None: ...

    def page_fetched(self, fetched: int) -> None: ...


class PageSink(Protocol):
    """Where chapter pages go as they arrive (spool.Spool), and which it has already."""

    def put(self, fetch: Fetch, page: str) -> None: ...

    def has(self, fetch: Fetch) -> bool: ...


class PageList:
    """A sink that keeps pages in memory (tests, tools): `pages` in arrival order."""

    def __init__(self) -> None:
        self.pages: list[tuple[Fetch, str]] = []

    def put(self, fetch: Fetch, page: str) -> None:
        self.pages.append((fetch, page))

    def has(self, fetch: Fetch) -> bool:
        return False


def every_chapter(novel: NovelRecord) -> NovelRecord:
    return novel


@dataclass(frozen=True)
class Caps:
    """What one crawl may take (None: no cap): chapters its listing may hold
    (CRAWLER_MAX_CHAPTERS), bytes of all its answers together (CRAWLER_MAX_JOB_BYTES)."""

    chapters: int | None = None
    job_bytes: int | None = None


NO_CAPS = Caps()


@dataclass
class CrawlResult:
    novel: NovelRecord | None = None  # the whole listing
    # the requests for chapter pages this run needs, fetched now or found in the sink
    fetches: tuple[Fetch, ...] = ()
    reused: int = 0  # of those, how many pages the sink had already
    failure: IngestFailure | None = None
    # Scrapy's stats of the crawl once it ended (answers by HTTP status, retries: metrics)
    stats: dict[str, Any] = field(default_factory=dict)


class FictionSpider(scrapy.Spider):
    name = "fiction"

    def __init__(
        self,
        *,
        ref: FictionRef,
        adapter: SiteAdapter,
        result: CrawlResult,
        listener: CrawlListener,
        politeness: Politeness,
        sink: PageSink,
        choose: Callable[[NovelRecord], NovelRecord] = every_chapter,
        deadline: float | None = None,
        caps: Caps = NO_CAPS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ref, self.adapter, self.result, self.listener = ref, adapter, result, listener
        self.sink, self.choose, self.caps = sink, choose, caps
        self.received_bytes = 0  # body bytes of every answer of this crawl so far
        self.politeness = politeness
        # time.monotonic() by which the job must be done: waiting past it is not worth it
        self.deadline = deadline
        # Scrapy's download slot of this crawl: no delay of its own (SharedPaceMiddleware
        # keeps the site's interval over every worker), the site's cap at most.
        self.download_delay = 0.0
        self.max_concurrent_requests = politeness.concurrent_requests
        self._listing_pages: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
        self._fetched_chapters = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> FictionSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.bytes_received, signal=signals.bytes_received)
        return spider

    def bytes_received(self, data: bytes, request: scrapy.Request, spider: scrapy.Spider) -> None:
        """Count every body chunk as it arrives (robots.txt, retries, redirects included);
        past CRAWLER_MAX_JOB_BYTES the download stops and the crawl ends in error."""
        self.received_bytes += len(data)
        limit = self.caps.job_bytes
        if limit is None or self.received_bytes <= limit:
            return
        if self.result.failure is None:
            self.result.failure = PermanentFailure(
                f"the crawl of {self.ref.url} downloaded more than CRAWLER_MAX_JOB_BYTES"
                f" ({limit} bytes): stopped at {request.url}"
            )
        raise StopDownload(fail=True)  # its errback ends the crawl (`failed`)

    async def start(self) -> AsyncIterator[scrapy.Request]:
        first = self.adapter.first_fetch(self.ref)
        self._listing_pages.add((first.method, first.url, first.form))
        yield self._request(first, known=None)

    def _request(self, fetch: Fetch, *, known: NovelRecord | None) -> scrapy.Request:
        callback: Callable[..., Any]
        if fetch.step == "listing":
            callback, kwargs = self.read_listing, {"fetch": fetch, "known": known}
        else:
            callback, kwargs = self.keep_chapters, {"fetch": fetch}
        if fetch.method == "POST":
            return scrapy.FormRequest(
                fetch.url,
                formdata=list(fetch.form),
                callback=callback,
                errback=self.failed,
                cb_kwargs=kwargs,
            )
        return scrapy.Request(fetch.url, callback=callback, errback=self.failed, cb_kwargs=kwargs)

    def read_listing(
        self, response: Response, fetch: Fetch, known: NovelRecord | None
    ) -> Iterator[scrapy.Request]:
        text = response.text
        step: ListingStep = self._guard(
            lambda: self._read(text, response.url, fetch, known), f"read {response.url}"
        )
        if step.follow:
            yield self._request(self._next_listing_page(step.follow), known=step.novel)
            return
        novel = step.novel
        if novel is None:
            bug = RuntimeError("the listing ended without a novel")
            self._stop(classify_error(bug, doing=f"read {response.url}"))
        self._check_chapter_cap(novel)
        self.result.novel = novel
        self.listener.chapters_found(len(novel.chapters))
        wanted = self._guard(lambda: self.choose(novel), "choose the chapters to fetch")
        fetches = self._guard(lambda: self.adapter.chapter_fetches(wanted), "list chapter pages")
        self.result.fetches = fetches
        try:  # which pages an earlier run of the job fetched already
            kept = [self.sink.has(chapter_fetch) for chapter_fetch in fetches]
        except Exception as error:  # the spool's database: an outage is retried
            log.warning("could not read the job's spool: %s", error)
            self._stop(classify_error(error, doing="read the job's spool"))
        for chapter_fetch, have in zip(fetches, kept, strict=True):
            if have:
                self.result.reused += 1
                self._fetched_chapters += len(chapter_fetch.refs)
            else:
                yield self._request(chapter_fetch, known=novel)
        if self.result.reused:
            self.listener.page_fetched(self._fetched_chapters)

    def _next_listing_page(self, follow: tuple[Fetch, ...]) -> Fetch:
        """The one page the listing goes on with, if the chain is sound."""
        fetch, asked = follow[0], (follow[0].method, follow[0].url, follow[0].form)
        problem = None
        if len(follow) > 1:
            problem = f"asks for {len(follow)} listing pages at once (a listing is a chain)"
        elif asked in self._listing_pages:
            problem = f"asks for {fetch.url} again"
        elif len(self._listing_pages) >= MAX_LISTING_PAGES:
            problem = f"has not ended its listing after {MAX_LISTING_PAGES} pages"
        if problem is not None:
            self._stop(ParseError(f"the {self.adapter.name} adapter {problem}: {self.ref.url}"))
        self._listing_pages.add(asked)
        return fetch

    def _check_chapter_cap(self, novel: NovelRecord) -> None:
        limit = self.caps.chapters
        if limit is not None and len(novel.chapters) > limit:
            self._stop(
                PermanentFailure(
                    f"{self.ref.url} lists {len(novel.chapters)} chapters, more than"
                    f" CRAWLER_MAX_CHAPTERS ({limit})"
                )
            )

    def _read(self, text: str, url: str, fetch: Fetch, known: NovelRecord | None) -> ListingStep:
        self.adapter.check_page(text, url)
        return self.adapter.read_listing(text, url, fetch, known)

    def keep_chapters(self, response: Response, fetch: Fetch) -> None:
        text = response.text
        self._guard(lambda: self.adapter.check_page(text, response.url), f"read {response.url}")
        try:
            self.sink.put(fetch, text)
        except Exception as error:  # the spool's database: an outage is retried
            log.warning("could not keep %s: %s", response.url, error)
            self._stop(classify_error(error, doing=f"keep the page {response.url}"))
        self._fetched_chapters += len(fetch.refs)
        self.listener.page_fetched(self._fetched_chapters)

    def failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else self.ref.url
        self._stop(classify(failure, url))

    def _guard(self, call: Callable[[], T], doing: str) -> T:
        try:
            return call()
        except IngestFailure as error:
            return self._stop(error)
        except Exception as error:  # a parser bug: the same page fails the same way again
            log.exception("adapter %s failed to %s", self.adapter.name, doing)
            return self._stop(classify_error(error, doing=f"{doing} ({self.adapter.name} adapter)"))

    def _stop(self, error: IngestFailure) -> NoReturn:
        if self.result.failure is None:
            self.result.failure = error
        raise CloseSpider(str(error))
