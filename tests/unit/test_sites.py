"""The registry: every site module found, each URL form to one canonical fiction URL."""

from __future__ import annotations

import pytest

from config import Settings
from crawler import sites
from errors import (
    InvalidURLError,
    ParseError,
    PermanentFailure,
    RetryableFailure,
    UnsupportedSiteError,
)


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


# --- credentials: refused, never echoed ---------------------------------------------------

SECRET = "hunter2secret"


@pytest.mark.parametrize(
    "url",
    [
        f"https://reader:{SECRET}@www.royalroad.com/fiction/12",
        f"https://{SECRET}@www.scribblehub.com/series/12/x/",
        f"https://:{SECRET}@archiveofourown.org/works/12",
        f"http://reader:{SECRET}@127.0.0.1:9/fiction/12",
        f"ftp://reader:{SECRET}@www.royalroad.com/fiction/12",
        f"https:reader:{SECRET}@www.royalroad.com/fiction/12",
        f"https://reader:{SECRET}@[::1/fiction/12",
        f"https://reader:{SECRET}/x@www.royalroad.com/fiction/12",
        f"https://www.royalroad.com/nofiction?next=reader:{SECRET}@x",
        f"https://{SECRET}:pw@example.invalid/works/1",
    ],
)
def test_a_url_with_credentials_is_refused_without_echoing_them(url: str) -> None:
    with pytest.raises((InvalidURLError, UnsupportedSiteError)) as refused:
        sites.resolve(url, aliases={"127.0.0.1:9": "royalroad"})
    assert SECRET not in str(refused.value) and "reader" not in str(refused.value)


def test_userinfo_is_refused_with_a_message_that_says_so() -> None:
    with pytest.raises(InvalidURLError, match=r"user name or password .* refused"):
        sites.resolve(f"https://reader:{SECRET}@www.royalroad.com/fiction/12", aliases={})


# --- ids: ASCII digits, canonical -----------------------------------------------------------

CANONICAL = [
    ("https://www.royalroad.com/fiction/024", "https://www.royalroad.com/fiction/24"),
    ("https://www.royalroad.com/fiction/0024/slug", "https://www.royalroad.com/fiction/24"),
    ("https://www.royalroad.com/fiction/%32%34", "https://www.royalroad.com/fiction/24"),
    (
        "https://www.royalroad.com/fiction/0024/s/chapter/0099/c",
        "https://www.royalroad.com/fiction/24",
    ),
    ("https://www.scribblehub.com/series/024/x/", "https://www.scribblehub.com/series/24/"),
    (
        "https://www.scribblehub.com/read/0024-x/chapter/07/",
        "https://www.scribblehub.com/series/24/",
    ),
    ("https://archiveofourown.org/works/0024", "https://archiveofourown.org/works/24"),
    ("https://archiveofourown.org/works/024/chapters/007", "https://archiveofourown.org/works/24"),
]


@pytest.mark.parametrize(("url", "canonical"), CANONICAL)
def test_leading_zeros_and_escapes_name_the_same_fiction(url: str, canonical: str) -> None:
    assert sites.resolve(url, aliases={})[1].url == canonical


FOREIGN = [
    "https://www.royalroad.com/fiction/\u0661\u0662",  # Arabic-Indic 12
    "https://www.royalroad.com/fiction/\uff11\uff12/slug",  # full-width 12
    "https://www.royalroad.com/fiction/%D9%A1%D9%A2",  # Arabic-Indic, percent-escaped
    "https://www.scribblehub.com/series/\u0661\u0662/x/",
    "https://www.scribblehub.com/read/\uff11\uff12-x/chapter/3/",
    "https://archiveofourown.org/works/\u0661\u0662",
    "https://archiveofourown.org/works/12/chapters/\uff13",
    "https://archiveofourown.org/works/\u0967\u0968",  # Devanagari 12
]


@pytest.mark.parametrize("url", FOREIGN)
def test_ids_in_other_digits_are_refused_saying_so(url: str) -> None:
    with pytest.raises(InvalidURLError, match=r"ids are written in ASCII digits \(0-9\)"):
        sites.resolve(url, aliases={})


def test_an_alias_without_a_port_covers_the_default_ports_only() -> None:
    aliases = {"mirror.example": "royalroad"}
    adapter, ref = sites.resolve("http://mirror.example/fiction/7", aliases=aliases)
    assert (adapter.name, ref.url) == ("royalroad", "http://mirror.example/fiction/7")
    with pytest.raises(UnsupportedSiteError):
        sites.resolve("http://mirror.example:6379/fiction/7", aliases=aliases)


@pytest.mark.parametrize("body", ["[]", '{"a": 1}', "1", "null", '"x"'])
@pytest.mark.parametrize("name", ["royalroad", "scribblehub", "ao3"])
def test_a_body_that_is_json_is_read_as_a_page_not_a_crash(name: str, body: str) -> None:
    """parsel takes text that parses as JSON for a JSON document; every adapter reads HTML."""
    adapter = sites.ADAPTERS[name]
    _, ref = sites.resolve(adapter.example_url, aliases={})
    fetch = adapter.first_fetch(ref)
    try:
        adapter.check_page(body, fetch.url)
        adapter.read_listing(body, fetch.url, fetch, None)
    except (ParseError, PermanentFailure, RetryableFailure):
        pass
