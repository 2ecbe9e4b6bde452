from __future__ import annotations

import subprocess
import sys

import pytest
from scrapy import Request
from scrapy.exceptions import CloseSpider, StopDownload
from scrapy.utils import defer as scrapy_defer

from config import Settings
from crawler import crawl
from crawler.crawl import CALLBACK_DELAY
from crawler.egress import ALIAS_HOSTS_SETTING
from crawler.items import ChapterRef, NovelRecord
from crawler.settings import scrapy_settings
from crawler.sites import ADAPTERS
from crawler.sites.base import Politeness
from crawler.spiders.fiction import Caps, CrawlResult, FictionSpider, PageList
from errors import PermanentFailure
from tests.utils.services import ROOT


def test_scrapy_still_has_the_callback_delay_we_shorten() -> None:
    # crawl() lowers this private constant; if an upgrade renames it, this fails first.
    assert isinstance(scrapy_defer._DEFER_DELAY, float)
    assert 0 < CALLBACK_DELAY < scrapy_defer._DEFER_DELAY


def test_a_prepared_crawler_is_used_once_and_only_for_its_settings() -> None:
    settings = Settings()
    crawl.prepare(settings)
    ready = crawl._ready
    assert ready is not None
    runner, crawler = crawl._runner_and_crawler(settings)
    assert (runner, crawler) == (ready.runner, ready.crawler)
    assert crawl._runner_and_crawler(settings)[1] is not crawler  # used up: a fresh one

    crawl.prepare(settings)
    other = settings.model_copy(update={"crawler_download_delay": 7.0})
    _, fresh = crawl._runner_and_crawler(other)
    assert fresh.settings.getfloat("DOWNLOAD_DELAY") == 7.0


def test_worker_prepares_the_crawl_without_a_reactor() -> None:
    probe = (
        "import sys, worker, crawler.crawl as c; "
        "assert c._ready is not None and not c._ready.crawler.crawling; "
        "assert 'twisted.internet.reactor' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True)


# --- the caps of one crawl -------------------------------------------------------------


class _Quiet:
    def chapters_found(self, count: int) -> None:
        """Progress is not under test here."""

    def page_fetched(self, fetched: int) -> None:
        """Progress is not under test here."""


def _spider(caps: Caps) -> FictionSpider:
    adapter = ADAPTERS["royalroad"]
    ref = adapter.fiction_ref("http://fiction.example/fiction/7", base="http://fiction.example")
    return FictionSpider(
        ref=ref,
        adapter=adapter,
        result=CrawlResult(),
        listener=_Quiet(),
        politeness=Politeness(download_delay=0, concurrent_requests=1),
        sink=PageList(),
        caps=caps,
    )


def _novel(chapters: int) -> NovelRecord:
    refs = tuple(
        ChapterRef(
            site_chapter_id=str(n), url=f"http://fiction.example/c/{n}", position=n, title=""
        )
        for n in range(1, chapters + 1)
    )
    return NovelRecord(
        site="royalroad", site_id="7", url="http://fiction.example/fiction/7", title="T",
        author=None, description=None, cover_url=None, tags=(), status=None, word_count=None,
        rating=None, volumes=(), chapters=refs,
    )  # fmt: skip


def test_a_listing_over_the_chapter_cap_stops_the_crawl_naming_the_setting() -> None:
    spider = _spider(Caps(chapters=3))
    spider._check_chapter_cap(_novel(3))  # at the cap: fine
    with pytest.raises(CloseSpider):
        spider._check_chapter_cap(_novel(4))
    assert str(spider.result.failure) == (
        "http://fiction.example/fiction/7 lists 4 chapters, more than CRAWLER_MAX_CHAPTERS (3)"
    )


def test_bytes_past_the_job_cap_stop_the_download_and_the_crawl() -> None:
    spider = _spider(Caps(job_bytes=10))
    request = Request("http://fiction.example/fiction/7")
    spider.bytes_received(b"x" * 6, request, spider)
    spider.bytes_received(b"x" * 4, request, spider)  # 10: at the cap
    assert spider.result.failure is None
    with pytest.raises(StopDownload):
        spider.bytes_received(b"x", request, spider)
    assert isinstance(spider.result.failure, PermanentFailure)
    assert "downloaded more than CRAWLER_MAX_JOB_BYTES (10 bytes)" in str(spider.result.failure)


def test_the_crawl_settings_refuse_what_is_not_http() -> None:
    values = scrapy_settings(Settings(crawler_site_aliases="127.0.0.1:8765=royalroad"))
    assert values["METAREFRESH_ENABLED"] is False
    assert all(
        values["DOWNLOAD_HANDLERS"][scheme] is None for scheme in ("file", "data", "ftp", "s3")
    )
    assert values["DNS_RESOLVER"] == "crawler.egress.PublicAddressResolver"
    assert values[ALIAS_HOSTS_SETTING] == ["127.0.0.1:8765"]
    guard = values["DOWNLOADER_MIDDLEWARES"]["crawler.middlewares.OriginGuardMiddleware"]
    assert guard > max(
        v for v in values["DOWNLOADER_MIDDLEWARES"].values() if v is not None and v != guard
    )
