from __future__ import annotations

import subprocess
import sys

from scrapy.utils import defer as scrapy_defer

from config import Settings
from crawler import crawl
from crawler.crawl import CALLBACK_DELAY
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
