"""The registry: every site module found, each URL form to one canonical fiction URL."""

from __future__ import annotations

import pytest

from config import Settings
from crawler import sites
from errors import UnsupportedSiteError


def test_every_site_module_is_a_site() -> None:
    assert {"royalroad", "scribblehub", "ao3"} <= set(sites.ADAPTERS)
    hosts = [h for adapter in sites.ADAPTERS.values() for h in adapter.hosts]
    assert len(hosts) == len(set(hosts))  # a host names one site
    for adapter in sites.ADAPTERS.values():
        assert adapter.hosts and adapter.url_patterns and adapter.example_url
        # the example URL is one the site's own adapter takes
        found, ref = sites.resolve(adapter.example_url, aliases={})
        assert found is adapter and ref.url.startswith(f"https://{adapter.hosts[0]}/")


@pytest.mark.parametrize(
    ("url", "site", "canonical"),
    [
        ("http://royalroad.com/fiction/12/x/chapter/9/y?s=1", "royalroad", "https://www.royalroad.com/fiction/12"),
        ("https://scribblehub.com/read/123-some-series/chapter/456/", "scribblehub", "https://www.scribblehub.com/series/123/"),
        ("https://www.scribblehub.com/series/0123/some-series/?toc=2#x", "scribblehub", "https://www.scribblehub.com/series/123/"),
        ("http://www.archiveofourown.org/works/77/chapters/88#main", "ao3", "https://archiveofourown.org/works/77"),
        ("https://archiveofourown.org/collections/Some_Fest/works/77?view_adult=true", "ao3", "https://archiveofourown.org/works/77"),
        ("https://ao3.org/works/77", "ao3", "https://archiveofourown.org/works/77"),
        ("http://archiveofourown.net/works/77/chapters/5", "ao3", "https://archiveofourown.org/works/77"),
        (["(see", "https://archiveofourown.org/works/77)."][1], "ao3", "https://archiveofourown.org/works/77"),
        ("https://www.royalroad.com/fiction/12,", "royalroad", "https://www.royalroad.com/fiction/12"),
    ],
)  # fmt: skip
def test_every_url_form_names_one_fiction(url: str, site: str, canonical: str) -> None:
    adapter, ref = sites.resolve(url, aliases={})
    assert (adapter.name, ref.site, ref.url) == (site, site, canonical)


def test_an_alias_crawls_the_site_on_the_alias() -> None:
    adapter, ref = sites.resolve(
        "http://127.0.0.1:8766/works/5/chapters/6", aliases={"127.0.0.1:8766": "ao3"}
    )
    assert (adapter.name, ref.url) == ("ao3", "http://127.0.0.1:8766/works/5")


def test_a_site_s_own_pace_unless_the_operator_sets_one() -> None:
    ao3 = sites.ADAPTERS["ao3"]
    unset = Settings(crawler_download_delay=None, crawler_site_concurrency=None)
    assert sites.politeness(ao3, unset) == ao3.politeness
    pace = sites.politeness(ao3, Settings(crawler_download_delay=5, crawler_site_concurrency=None))
    assert (pace.download_delay, pace.concurrent_requests) == (
        5,
        ao3.politeness.concurrent_requests,
    )


def test_a_site_s_own_delay_wins_over_the_delay_for_every_site() -> None:
    """CRAWLER_SITE_DELAYS, else CRAWLER_DOWNLOAD_DELAY, else the site's own: each counted
    over every worker (crawler.pacing)."""
    settings = Settings(
        crawler_site_delays="ao3=4, scribblehub=0",
        crawler_download_delay=0.3,
        crawler_site_concurrency=2,
    )
    paces = {name: sites.politeness(adapter, settings) for name, adapter in sites.ADAPTERS.items()}
    assert paces["ao3"].download_delay == 4
    assert paces["scribblehub"].download_delay == 0  # 0 is a value, not "unset"
    assert paces["royalroad"].download_delay == 0.3
    assert {p.concurrent_requests for p in paces.values()} == {2}
    unset = Settings(crawler_site_delays="ao3=4", crawler_download_delay=None)
    royalroad = sites.ADAPTERS["royalroad"]
    assert sites.politeness(royalroad, unset).download_delay == royalroad.politeness.download_delay


def test_an_unknown_host_is_unsupported_with_the_list() -> None:
    with pytest.raises(UnsupportedSiteError, match="Scribble Hub"):
        sites.resolve("https://example.invalid/works/1", aliases={})
