"""The fiction spider: fetch a fiction page, then every chapter page it lists.

It only fetches (the job's CRAWLING phase). Chapter pages are kept as text for the
PARSING phase; the fiction page is read for its chapter list, which crawling needs.
The first page that cannot be had ends the crawl: a novel with a missing chapter is
not a correct novel.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import scrapy
from scrapy.exceptions import CloseSpider
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.failures import classify
from crawler.items import ChapterRef, FictionRef, NovelRecord
from crawler.sites.base import SiteAdapter
from errors import IngestFailure
from errors import classify as classify_error

log = logging.getLogger(__name__)


class CrawlListener(Protocol):
    def chapters_found(self, count: int) -> None: ...

    def page_fetched(self, fetched: int) -> None: ...


@dataclass
class CrawlResult:
    novel: NovelRecord | None = None
    chapter_pages: dict[str, str] = field(default_factory=dict)
    failure: IngestFailure | None = None


class FictionSpider(scrapy.Spider):
    name = "fiction"

    def __init__(
        self,
        *,
        ref: FictionRef,
        adapter: SiteAdapter,
        result: CrawlResult,
        listener: CrawlListener,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ref, self.adapter, self.result, self.listener = ref, adapter, result, listener

    async def start(self) -> AsyncIterator[scrapy.Request]:
        yield scrapy.Request(self.ref.url, callback=self.parse_fiction, errback=self.failed)

    def parse_fiction(self, response: Response) -> Iterator[scrapy.Request]:
        novel = self._guard(lambda: self.adapter.parse_fiction(response.text, response.url))
        self.result.novel = novel
        self.listener.chapters_found(len(novel.chapters))
        for ref in novel.chapters:
            if ref.locked:  # listed, not served: fetching it would only fetch a lock page
                continue
            yield scrapy.Request(
                ref.url, callback=self.keep_chapter, errback=self.failed, cb_kwargs={"ref": ref}
            )

    def keep_chapter(self, response: Response, ref: ChapterRef) -> None:
        self.result.chapter_pages[ref.site_chapter_id] = response.text
        self.listener.page_fetched(len(self.result.chapter_pages))

    def failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        url = request.url if request is not None else self.ref.url
        self._stop(classify(failure, url))

    def _guard(self, parse: Any) -> NovelRecord:
        try:
            novel: NovelRecord = parse()
        except IngestFailure as error:
            self._stop(error)
        except Exception as error:  # a parser bug: the same page fails the same way again
            log.exception("parser failed on the fiction page %s", self.ref.url)
            self._stop(classify_error(error, doing=f"parse the fiction page {self.ref.url}"))
        return novel

    def _stop(self, error: IngestFailure) -> None:
        if self.result.failure is None:
            self.result.failure = error
        raise CloseSpider(str(error))
