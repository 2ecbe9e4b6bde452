from __future__ import annotations

from scrapy.utils import defer as scrapy_defer

from crawler.crawl import CALLBACK_DELAY


def test_scrapy_still_has_the_callback_delay_we_shorten() -> None:
    # crawl() lowers this private constant; if an upgrade renames it, this fails first.
    assert isinstance(scrapy_defer._DEFER_DELAY, float)
    assert 0 < CALLBACK_DELAY < scrapy_defer._DEFER_DELAY
