"""The AO3 adapter against the AO3 look-alike (tests/fixture_site/ao3.py): every field.

`crawl()` plays the generic spider without Scrapy: it asks the fixture's `route()` for
each Fetch, follows its redirects, calls check_page and read_listing until the listing is
whole, then parses the chapter pages. The look-alike's links are relative; the tests
reach it as BASE, so every URL the adapter builds must be on BASE.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crawler.items import ChapterRecord, ChapterRef, NovelRecord
from crawler.sites import ao3 as adapter_module
from crawler.sites.ao3 import ADAPTER
from crawler.sites.base import Fetch, ListingStep, Politeness
from crawler.sites.fields import WORD
from errors import InvalidURLError, ParseError, PermanentFailure, RefusedURLError, RetryableFailure
from tests.fixture_site import ao3 as site
from tests.fixture_site.answer import Asked

BASE = "http://fixture.test:8123"


@pytest.fixture(autouse=True)
def _fresh_site() -> Iterator[None]:
    site.reset()
    yield
    site.reset()


def fetch_page(url: str) -> tuple[str, str]:
    """(final URL, body) as Scrapy would give them: redirects followed."""
    for _ in range(10):
        parts = urlsplit(url)
        answer = site.route(Asked("GET", parts.path, parse_qs(parts.query), {}))
        assert answer is not None, f"404 for {url}"
        if answer.status in (301, 302):
            url = urljoin(url, answer.headers["Location"])
            continue
        assert answer.status == 200
        return url, answer.body
    raise AssertionError(f"redirect loop from {url}")


def crawl(work_id: int) -> tuple[NovelRecord, list[ChapterRecord], list[str]]:
    """The novel, its chapter records and every URL fetched, in order."""
    fetches = [ADAPTER.first_fetch(ADAPTER.fiction_ref(f"{BASE}/works/{work_id}", base=BASE))]
    known: NovelRecord | None = None
    fetched: list[str] = []
    while fetches:
        fetch = fetches.pop(0)
        url, html = fetch_page(fetch.url)
        fetched.append(url)
        ADAPTER.check_page(html, url)
        step = ADAPTER.read_listing(html, url, fetch, known)
        known, fetches = step.novel, list(step.follow)
    assert known is not None
    records: list[ChapterRecord] = []
    for fetch in ADAPTER.chapter_fetches(known):
        url, html = fetch_page(fetch.url)
        fetched.append(url)
        ADAPTER.check_page(html, url)
        records += ADAPTER.parse_chapters(html, fetch)
    return known, records, fetched


def fixture_work(work_id: int) -> site.Ao3Work:
    found = site.work(work_id)
    assert found is not None
    return found


def words_of(body_html: str) -> int:
    """A chapter's word count by another route than the adapter's: tags stripped by regex."""
    return len(WORD.findall(unescape(re.sub(r"<[^>]+>", " ", body_html))))


def work_fetch(url: str) -> Fetch:
    return Fetch(url, "listing", label="work")


# --- what the adapter declares ----------------------------------------------------------


def test_the_adapter_names_its_site_hosts_and_pace() -> None:
    assert (ADAPTER.name, ADAPTER.display_name) == ("ao3", "Archive of Our Own")
    assert ADAPTER.hosts[:2] == ("archiveofourown.org", "www.archiveofourown.org")
    assert {"ao3.org", "archiveofourown.com", "archiveofourown.net"} <= set(ADAPTER.hosts)
    assert ADAPTER.politeness == Politeness(download_delay=2.0, concurrent_requests=1)
    assert ADAPTER.url_patterns == (
        "/works/<id>",
        "/works/<id>/chapters/<chapter id>",
        "/collections/<collection>/works/<id>",
    )
    ref = ADAPTER.fiction_ref(ADAPTER.example_url, base="https://archiveofourown.org")
    assert ref.url == "https://archiveofourown.org/works/123456"


@pytest.mark.parametrize(
    "url",
    [
        "https://archiveofourown.org/works/7001",
        "https://archiveofourown.org/works/7001/",
        "http://archiveofourown.org/works/7001",
        "https://www.archiveofourown.org/works/7001",
        "https://archiveofourown.org/works/7001?view_adult=true",
        "https://archiveofourown.org/works/7001?view_full_work=true#chapter-2",
        "https://archiveofourown.org/works/7001#workskin",
        "https://archiveofourown.org/works/007001",
        "https://archiveofourown.org/works/7001/chapters/87001014",
        "https://archiveofourown.org/works/7001/chapters/87001014/",
        "https://archiveofourown.org/works/7001/chapters/87001014#workskin",
        "https://archiveofourown.org/collections/Lantern_Fest2024/works/7001",
        "https://archiveofourown.org/collections/yuletide/works/7001/chapters/87001014?x=1",
        "  https://archiveofourown.org/works/7001  ",
    ],
)
def test_every_work_url_form_names_one_canonical_work(url: str) -> None:
    ref = ADAPTER.fiction_ref(url, base=BASE)
    assert (ref.site, ref.site_id, ref.url) == ("ao3", "7001", f"{BASE}/works/7001")


@pytest.mark.parametrize(
    "url",
    [
        "https://archiveofourown.org/",
        "https://archiveofourown.org/works",
        "https://archiveofourown.org/works/",
        "https://archiveofourown.org/works/abc",
        "https://archiveofourown.org/works/١٢٣",  # Arabic-Indic digits are no id
        "https://archiveofourown.org/works/12x",
        "https://archiveofourown.org/works/1234567890123456789",
        "https://archiveofourown.org/chapters/87001014",  # names no work
        "https://archiveofourown.org/series/4401",
        "https://archiveofourown.org/users/river_writer/works",
        "https://archiveofourown.org/works/7001/bookmarks",
        "https://archiveofourown.org/collections/bad-name!/works/7001",
        "https://archiveofourown.org/Works/7001",
        "http://[abc/works/1",
    ],
)
def test_a_url_that_names_no_work_is_refused(url: str) -> None:
    with pytest.raises(InvalidURLError):
        ADAPTER.fiction_ref(url, base=BASE)


# --- a work in chapters -------------------------------------------------------------------


def test_a_work_in_chapters_is_read_whole() -> None:
    w = fixture_work(site.NORMAL)
    novel, _, fetched = crawl(site.NORMAL)
    last = w.chapters[-1].chapter_id
    assert fetched == [
        f"{BASE}/works/7001/chapters/{w.chapters[0].chapter_id}",  # /works/7001 redirected
        f"{BASE}/works/7001/chapters/{last}?view_adult=true",  # the work's end notes
        f"{BASE}/works/7001/navigate",
        f"{BASE}/works/7001?view_full_work=true&view_adult=true",  # every chapter, once
    ]
    assert novel.site == "ao3" and novel.site_id == "7001"
    assert novel.url == f"{BASE}/works/7001"
    assert novel.title == "Ember & Tide — Ünïcode Work 7001"
    assert novel.author == "Rivière (river_writer), ashfall"
    assert novel.description == w.summary_html
    assert novel.cover_url is None and novel.rating is None and novel.volumes == ()
    assert novel.content_rating == "Teen And Up Audiences"
    assert novel.content_warnings == ("No Archive Warnings Apply",)
    assert novel.tags == (
        "Lantern Saga (Web Serial)",
        "星 Chronicles",
        "Zoë Hollow/The Iron Crown",
        "Zoë Hollow & Ember",
        "Zoë Hollow",
        "The Iron Crown",
        "Found Family",
        "Slow Burn",
    )
    assert novel.tag_groups == (
        ("rating", ("Teen And Up Audiences",)),
        ("warning", ("No Archive Warnings Apply",)),
        ("category", ("F/F", "Gen")),
        ("fandom", ("Lantern Saga (Web Serial)", "星 Chronicles")),
        ("relationship", ("Zoë Hollow/The Iron Crown", "Zoë Hollow & Ember")),
        ("character", ("Zoë Hollow", "The Iron Crown")),
        ("freeform", ("Found Family", "Slow Burn")),
        ("series", ("Part 2 of The Lantern Cycle",)),
    )
    assert novel.tag_groups == w.tag_groups and novel.tags == w.tags
    assert novel.language == "English"
    assert (novel.status, novel.chapters_planned) == ("completed", 4)
    assert novel.word_count == w.word_count
    assert novel.published_at == datetime(2024, 3, 18, tzinfo=UTC) == w.published_at
    assert novel.site_updated_at == datetime(2024, 4, 14, tzinfo=UTC) == w.updated_at
    # head notes and end notes; not the gift line, not "(See the end of the work ...)"
    assert novel.notes_html == f"{w.notes_html}\n<hr/>\n{w.end_notes_html}"
    assert "lanternfan" not in (novel.notes_html or "") and "See the end" not in novel.notes_html
    assert novel.parse_warnings == ()


def test_the_chapter_index_gives_ids_urls_titles_and_dates() -> None:
    w = fixture_work(site.NORMAL)
    novel, _, _ = crawl(site.NORMAL)
    assert novel.chapters == tuple(
        ChapterRef(
            site_chapter_id=str(c.chapter_id),
            url=f"{BASE}/works/7001/chapters/{c.chapter_id}",
            position=c.position,
            title=c.display_title,
            volume=None,
            published_at=c.published_at,
            locked=False,
        )
        for c in w.chapters
    )
    # AO3's "N. " numbering is dropped once; an untitled chapter is AO3's "Chapter 2"; a
    # title that itself starts with digits keeps them.
    assert [c.title for c in novel.chapters] == [
        "夜 and the Lantern",
        "Chapter 2",
        "1984",
        "Ash & “Embers”",
    ]


def test_the_whole_work_page_gives_every_chapter_with_its_notes_apart() -> None:
    w = fixture_work(site.NORMAL)
    novel, records, _ = crawl(site.NORMAL)
    assert [r.site_chapter_id for r in records] == [c.site_chapter_id for c in novel.chapters]
    for record, ref, chapter in zip(records, novel.chapters, w.chapters, strict=True):
        assert record.content_html == chapter.body_html
        assert record.content_hash == hashlib.sha256(chapter.body_html.encode()).hexdigest()
        assert record.word_count == words_of(chapter.body_html) > 30
        assert record.author_notes_html == chapter.author_notes_html
        assert (record.url, record.position, record.title) == (ref.url, ref.position, ref.title)
        assert record.published_at == chapter.published_at and not record.locked
        assert "Chapter Text" not in record.content_html and "<!--" not in record.content_html
    assert [r.author_notes_html is not None for r in records] == [True, True, True, False]
    # chapter 2: summary, notes, end notes, in that order; no "See the end" link text
    summary, head, end = (records[1].author_notes_html or "").split("\n<hr/>\n")
    assert (summary, head, end) == (
        w.chapters[1].summary_html,
        w.chapters[1].notes_html,
        w.chapters[1].end_notes_html,
    )
    assert records[2].author_notes_html == w.chapters[2].end_notes_html
    assert '<img src="https://example.org/art/lantern.png" alt="a lantern">' in (
        records[0].content_html or ""
    )
    assert "<em>" in (records[0].content_html or "") and "<hr>" in records[0].content_html


def test_a_work_planned_without_a_chapter_count_is_ongoing() -> None:
    w = fixture_work(site.UNFINISHED)
    novel, records, fetched = crawl(site.UNFINISHED)
    assert (novel.status, novel.chapters_planned) == ("ongoing", None)
    assert novel.site_updated_at == w.chapters[1].published_at
    assert [c.title for c in novel.chapters] == ["Begun", "Continued"]
    assert len(records) == 2 and novel.parse_warnings == ()
    assert f"{BASE}/works/7007/navigate" in fetched


# --- one chapter --------------------------------------------------------------------------


def test_a_one_chapter_work_is_read_from_its_page_and_index() -> None:
    w = fixture_work(site.ONE_SHOT)
    novel, records, fetched = crawl(site.ONE_SHOT)
    # its page names no chapter id: the index gives it (and its date)
    assert fetched == [
        f"{BASE}/works/7002",
        f"{BASE}/works/7002/navigate",
        f"{BASE}/works/7002?view_full_work=true&view_adult=true",
    ]
    chapter = w.chapters[0]
    assert novel.author == "Anonymous"
    assert (novel.status, novel.chapters_planned) == ("completed", 1)
    assert novel.site_updated_at is None  # AO3 states no update date for a one-shot
    assert novel.word_count == w.word_count > 1000
    assert novel.content_rating == "General Audiences"
    assert novel.notes_html == f"{w.notes_html}\n<hr/>\n{w.end_notes_html}"
    assert novel.chapters == (
        ChapterRef(
            site_chapter_id=str(chapter.chapter_id),
            url=f"{BASE}/works/7002/chapters/{chapter.chapter_id}",
            position=1,
            title="Chapter 1",
            published_at=chapter.published_at,
        ),
    )
    assert novel.parse_warnings == ()
    (record,) = records
    assert record.content_html == chapter.body_html
    assert record.author_notes_html is None  # the work's notes are the novel's
    assert record.word_count == words_of(chapter.body_html)


def test_a_one_chapter_page_holds_no_text_for_a_second_chapter() -> None:
    w = fixture_work(site.ONE_SHOT)
    html = site.one_shot_page(w)
    refs = tuple(ChapterRef(str(n), f"{BASE}/works/7002/chapters/{n}", n, "x") for n in (1, 2))
    with pytest.raises(ParseError, match="has no text for chapter 1"):
        ADAPTER.parse_chapters(html, Fetch(f"{BASE}/works/7002", "chapters", refs=refs))


# --- gates --------------------------------------------------------------------------------


def test_an_explicit_work_is_read_past_the_adult_warning() -> None:
    w = fixture_work(site.EXPLICIT)
    first = w.chapters[0].chapter_id
    novel, records, fetched = crawl(site.EXPLICIT)
    assert fetched == [
        f"{BASE}/works/7003",  # the warning page
        f"{BASE}/works/7003/chapters/{first}",  # view_adult=true: redirected, warned again
        f"{BASE}/works/7003/chapters/{first}?view_adult=true",
        f"{BASE}/works/7003/navigate",
        f"{BASE}/works/7003?view_full_work=true&view_adult=true",
    ]
    assert novel.content_rating == "Explicit"
    assert novel.content_warnings == ("Graphic Depictions Of Violence", "Major Character Death")
    assert novel.author == "orphan_account"
    assert novel.description == w.summary_html
    assert [r.content_html for r in records] == [c.body_html for c in w.chapters]


def test_the_adult_warning_page_is_followed_with_view_adult() -> None:
    html = site.adult_page(fixture_work(site.EXPLICIT), "/works/7003")
    ADAPTER.check_page(html, f"{BASE}/works/7003")  # a gate, not an error page
    step = ADAPTER.read_listing(html, f"{BASE}/works/7003", work_fetch(f"{BASE}/works/7003"), None)
    assert step == ListingStep(
        None, follow=(Fetch(f"{BASE}/works/7003?view_adult=true", "listing", label="work"),)
    )


def test_an_adult_warning_that_comes_back_despite_view_adult_is_a_parse_error() -> None:
    html = site.adult_page(fixture_work(site.EXPLICIT), "/works/7003")
    url = f"{BASE}/works/7003?view_adult=true"
    with pytest.raises(ParseError, match="kept showing its adult content warning"):
        ADAPTER.read_listing(html, url, work_fetch(url), None)
    refs = (ChapterRef("87003007", f"{BASE}/works/7003/chapters/87003007", 1, "Dusk"),)
    with pytest.raises(ParseError, match="adult content warning"):
        ADAPTER.parse_chapters(html, Fetch(url, "chapters", refs=refs))


def test_a_restricted_work_fails_at_once_saying_it_needs_an_account() -> None:
    with pytest.raises(PermanentFailure) as failed:
        crawl(site.RESTRICTED)
    assert not isinstance(failed.value, RetryableFailure)
    assert str(failed.value) == (
        f"{BASE}/works/7004 is restricted to logged-in AO3 users (AO3 answered with its "
        "login page); it cannot be ingested without an account"
    )
    url, _ = fetch_page(f"{BASE}/works/7004/navigate")
    assert urlsplit(url).path == "/users/login" and "restricted=true" in url


def test_the_login_page_is_known_by_its_form_wherever_it_is_served() -> None:
    html = site.login_page(restricted=False, return_to="/works/7004")
    url = f"{BASE}/works/7004"  # e.g. a proxy that served it without redirecting
    with pytest.raises(PermanentFailure, match="restricted to logged-in AO3 users"):
        ADAPTER.read_listing(html, url, work_fetch(url), None)
    with pytest.raises(PermanentFailure, match="without an account"):
        refs = (ChapterRef("87004007", f"{url}/chapters/87004007", 1, "Locked"),)
        ADAPTER.parse_chapters(html, Fetch(url, "chapters", refs=refs))


def test_the_header_login_form_of_every_page_is_no_login_page() -> None:
    html = site.chapter_page(fixture_work(site.NORMAL), fixture_work(site.NORMAL).chapters[0])
    assert 'id="new_user_session_small"' in html
    step = ADAPTER.read_listing(
        html, f"{BASE}/works/7001/chapters/87001007", work_fetch(f"{BASE}/works/7001"), None
    )
    assert step.novel is not None


# --- error pages served with HTTP 200 -----------------------------------------------------


def test_an_error_page_is_retried_until_the_work_page_comes() -> None:
    for _ in range(2):  # FLAKY answers the error page twice
        with pytest.raises(RetryableFailure) as failed:
            crawl(site.FLAKY)
        assert str(failed.value) == (
            "AO3 answered with an error page (Error 503 - Service unavailable) for "
            f"{BASE}/works/7005"
        )
    novel, records, _ = crawl(site.FLAKY)
    assert novel.title == fixture_work(site.FLAKY).title and len(records) == 2


def test_how_many_error_pages_come_is_the_tests_to_set() -> None:
    site.serve_error_pages(site.ONE_SHOT, 1, page="navigate")
    with pytest.raises(RetryableFailure, match=f"for {BASE}/works/7002/navigate"):
        crawl(site.ONE_SHOT)
    assert crawl(site.ONE_SHOT)[0].chapters
    site.serve_error_pages(site.FLAKY, 0)
    assert crawl(site.FLAKY)[0].site_id == "7005"


def test_a_work_always_down_never_gives_a_novel() -> None:
    for _ in range(3):
        with pytest.raises(RetryableFailure, match="Error 503"):
            crawl(site.DOWN)


def test_an_error_instead_of_the_whole_work_page_is_retried() -> None:
    with pytest.raises(RetryableFailure, match=r"view_full_work=true&view_adult=true$"):
        crawl(site.FULL_PAGE_FLAKY)
    assert len(crawl(site.FULL_PAGE_FLAKY)[1]) == 3


NGINX_503 = """<html><head><title>503 Service Temporarily Unavailable</title></head>
<body><center><h1>503 Service Temporarily Unavailable</h1></center><hr>
<center>nginx</center></body></html>"""
AO3_502 = """<!DOCTYPE html><html><head><title>AO3 Down | Archive of Our Own</title></head><body>
<div id="outer" class="wrapper"><div id="inner" class="wrapper">
<div id="main" class="system errors error-502 region" role="main">
<h2 class="heading">Error 502</h2><h3 class="heading">The page was responding too slowly.</h3>
<p>Heavy load; try again.</p></div></div></div></body></html>"""


@pytest.mark.parametrize(
    ("html", "heading"),
    [
        (site.error_page(), "Error 503 - Service unavailable"),
        (AO3_502, "Error 502 - The page was responding too slowly."),
        (NGINX_503, "503 Service Temporarily Unavailable"),
        ("<html><body><h1>504 Gateway Time-out</h1></body></html>", "504 Gateway Time-out"),
        ("Retry later\n", "Retry later"),
    ],
)
def test_error_pages_served_with_200_are_retryable(html: str, heading: str) -> None:
    with pytest.raises(RetryableFailure) as failed:
        ADAPTER.check_page(html, f"{BASE}/works/7001")
    assert str(failed.value) == f"AO3 answered with an error page ({heading}) for {BASE}/works/7001"
    assert failed.value.retry_after is None


def test_real_pages_are_no_error_pages_even_when_their_text_says_error() -> None:
    w = fixture_work(site.NORMAL)
    story = replace(
        w.chapters[0],
        body_html="<h2>Error 503 - Service unavailable</h2>\n<p>Retry later, she typed.</p>",
    )
    pages = [
        site.chapter_page(w, story),
        site.full_work_page(replace(w, chapters=(story, *w.chapters[1:]))),
        site.navigate_page(replace(w, title="Error 503")),
        site.one_shot_page(fixture_work(site.ONE_SHOT)),
        site.adult_page(fixture_work(site.EXPLICIT), "/works/7003"),
        site.login_page(restricted=True, return_to="/works/7004"),
        "<html><body><h2>500 Days of Summer</h2><p>Error 503 is a number.</p></body></html>",
    ]
    for html in pages:
        ADAPTER.check_page(html, f"{BASE}/works/7001")


# --- field variants -----------------------------------------------------------------------


def read_work_page(w: site.Ao3Work) -> ListingStep:
    html = site.chapter_page(w, w.chapters[0]) if w.chaptered else site.one_shot_page(w)
    url = f"{BASE}/works/{w.work_id}"
    return ADAPTER.read_listing(html, url, work_fetch(url), None)


def test_odd_word_separators_are_no_count() -> None:
    novel, _, _ = crawl(site.ODD_WORDS)
    assert novel.word_count is None
    assert novel.parse_warnings == (
        "word_count not read: '12.345' is not a plain count; stored as null",
    )


@pytest.mark.parametrize(
    ("shown", "count"),
    [("0", 0), ("7", 7), ("1,234", 1234), ("2,147,483,647", 2**31 - 1), ("999999", 999999)],
)
def test_plain_word_counts_are_read(shown: str, count: int) -> None:
    step = read_work_page(replace(fixture_work(site.ONE_SHOT), words_shown=shown))
    assert step.novel is not None and step.novel.word_count == count


@pytest.mark.parametrize("shown", ["1 234", "1.234", "1,23", "2,147,483,648", "١٢٣", "-5", ""])
def test_words_that_are_no_plain_count_are_null_with_a_warning(shown: str) -> None:
    step = read_work_page(replace(fixture_work(site.ONE_SHOT), words_shown=shown))
    assert step.novel is not None and step.novel.word_count is None
    assert [w for w in step.novel.parse_warnings if w.startswith("word_count not read")]


def test_a_work_without_summary_or_notes_says_only_what_is_missing() -> None:
    w = replace(
        fixture_work(site.NORMAL),
        summary_html=None,
        notes_html=None,
        end_notes_html=None,
        gift_to=None,
    )
    step = read_work_page(w)
    assert step.novel is not None
    assert step.novel.description is None and step.novel.notes_html is None
    assert step.novel.parse_warnings == (
        "description not read: the work page has no summary; stored as null",
    )
    assert step.follow == (Fetch(f"{BASE}/works/7001/navigate", "listing", label="navigate"),)


def test_a_gift_line_alone_is_no_note() -> None:
    w = replace(fixture_work(site.NORMAL), notes_html=None, end_notes_html=None)
    step = read_work_page(w)
    assert step.novel is not None and step.novel.notes_html is None


def test_several_series_and_pseuds_read_as_the_page_shows_them() -> None:
    w = replace(
        fixture_work(site.ONE_SHOT),
        creators=(("a_user", "A Pseud"), ("b", "b"), ("orphan_account", "orphan_account")),
        series=((1, "First & Last", 3), (2, "Zweite Reihe", 1)),
    )
    step = read_work_page(w)
    assert step.novel is not None
    assert step.novel.author == "A Pseud (a_user), b, orphan_account"
    assert step.novel.tag_groups[-1] == (
        "series",
        ("Part 3 of First & Last", "Part 1 of Zweite Reihe"),
    )


def test_a_page_without_a_work_header_reads_title_and_says_the_rest_is_missing() -> None:
    w = fixture_work(site.NORMAL)
    html = re.sub(
        r'<dl class="work meta group">.*?</dl>\s*</dd>\s*</dl>',
        "",
        site.chapter_page(w, w.chapters[0]),
        flags=re.S,
    )
    step = ADAPTER.read_listing(html, f"{BASE}/works/7001", work_fetch(f"{BASE}/works/7001"), None)
    novel = step.novel
    assert novel is not None and novel.title == w.title
    assert (novel.tags, novel.tag_groups, novel.content_warnings) == ((), (), ())
    assert (novel.word_count, novel.status, novel.language, novel.published_at) == (
        None,
        None,
        None,
        None,
    )
    assert novel.parse_warnings == (
        "the work page has no work header (dl.work.meta): its tags and stats not read",
        "status not read: the work header's chapter count '' is not 'x/y'; stored as null",
        "chapters_planned not read: the work header's chapter count '' is not 'x/y';"
        " stored as null",
        "word_count not read: the work header states no word count; stored as null",
        "published_at not read: no published date on the page; stored as null",
        "language not read: the work header states no language; stored as null",
        "content_rating not read: the work header has no rating tag; stored as null",
        "site_updated_at not read: no status date on the page; stored as null",
    )


@pytest.mark.parametrize(
    ("stat", "posted", "planned", "status"),
    [("3/5", 3, 5, "ongoing"), ("5/5", 5, 5, "completed"), ("1,200/?", 1200, None, "ongoing"),
     ("2 / 2", 2, 2, "completed"), ("6/5", 6, 5, "ongoing")],
)  # fmt: skip
def test_the_chapter_count_gives_status_and_planned_chapters(
    stat: str, posted: int, planned: int | None, status: str
) -> None:
    w = fixture_work(site.UNFINISHED)
    html = site.chapter_page(w, w.chapters[0]).replace(
        f'<dd class="chapters">{w.chapters_stat}</dd>', f'<dd class="chapters">{stat}</dd>'
    )
    novel = ADAPTER.read_listing(
        html, f"{BASE}/works/7007", work_fetch(f"{BASE}/works/7007"), None
    ).novel
    assert novel is not None and (novel.status, novel.chapters_planned) == (status, planned)
    assert novel.parse_warnings == ()


@pytest.mark.parametrize(
    ("day", "when"),
    [
        ("2021-12-26", datetime(2021, 12, 26, tzinfo=UTC)),
        ("2024-02-30", None),
        ("26 Dec 2021", None),
        ("0000-01-01", None),
    ],
)
def test_dates_are_days_at_midnight_utc_or_null(day: str, when: datetime | None) -> None:
    w = fixture_work(site.UNFINISHED)
    html = site.chapter_page(w, w.chapters[0]).replace(
        f'<dd class="published">{w.published_at.date().isoformat()}</dd>',
        f'<dd class="published">{day}</dd>',
    )
    novel = ADAPTER.read_listing(
        html, f"{BASE}/works/7007", work_fetch(f"{BASE}/works/7007"), None
    ).novel
    assert novel is not None and novel.published_at == when
    assert (when is None) == any(
        w.startswith("published_at not read") for w in novel.parse_warnings
    )


def test_a_page_that_is_no_work_page_is_a_parse_error_naming_what_it_says() -> None:
    html = "<html><body><div id='main'><h2 class='heading'>Mystery Work</h2></div></body></html>"
    with pytest.raises(ParseError, match="no work title \\(the page says 'Mystery Work'\\)"):
        ADAPTER.read_listing(html, f"{BASE}/works/7001", work_fetch(f"{BASE}/works/7001"), None)


# --- end notes on the last chapter's page ---------------------------------------------------


def test_the_end_notes_step_adds_the_work_end_notes_then_reads_the_index() -> None:
    w = fixture_work(site.NORMAL)
    first = read_work_page(w)
    assert first.novel is not None and first.novel.notes_html == w.notes_html
    (end_fetch,) = first.follow
    assert end_fetch == Fetch(
        f"{BASE}/works/7001/chapters/{w.chapters[-1].chapter_id}?view_adult=true",
        "listing",
        label="endnotes",
    )
    last_page = site.chapter_page(w, w.chapters[-1])
    step = ADAPTER.read_listing(last_page, end_fetch.url, end_fetch, first.novel)
    assert step.novel == replace(first.novel, notes_html=w.expected_notes_html)
    assert step.follow == (Fetch(f"{BASE}/works/7001/navigate", "listing", label="navigate"),)


def test_end_notes_missing_from_the_last_chapter_are_said() -> None:
    w = fixture_work(site.NORMAL)
    first = read_work_page(w)
    assert first.novel is not None
    page = site.chapter_page(replace(w, end_notes_html=None), w.chapters[-1])
    step = ADAPTER.read_listing(page, f"{BASE}/x", first.follow[0], first.novel)
    assert step.novel is not None and step.novel.notes_html == w.notes_html
    assert step.novel.parse_warnings == (
        "work end notes not read: the last chapter's page has none; not stored",
    )


def test_an_end_notes_link_to_no_page_of_the_work_is_said_and_not_followed() -> None:
    w = fixture_work(site.NORMAL)
    for link in (
        "https://elsewhere.invalid/chapters/1#work_endnotes",
        "/works/9/chapters/1#work_endnotes",
        "#work_endnotes",
    ):
        html = site.chapter_page(w, w.chapters[0]).replace(
            f"/chapters/{w.chapters[-1].chapter_id}#work_endnotes", link
        )
        step = ADAPTER.read_listing(
            html, f"{BASE}/works/7001", work_fetch(f"{BASE}/works/7001"), None
        )
        assert step.follow == (Fetch(f"{BASE}/works/7001/navigate", "listing", label="navigate"),)
        assert step.novel is not None and step.novel.parse_warnings == (
            "work end notes not read: the page links to them but names no page of this work",
        )


def test_absolute_links_on_the_real_host_are_rebased_onto_the_crawled_one() -> None:
    w = fixture_work(site.NORMAL)
    html = site.chapter_page(w, w.chapters[0]).replace(
        'href="/chapters/', 'href="https://archiveofourown.org/chapters/'
    )
    step = ADAPTER.read_listing(html, f"{BASE}/works/7001", work_fetch(f"{BASE}/works/7001"), None)
    assert step.follow[0].url.startswith(f"{BASE}/works/7001/chapters/")
    index = site.navigate_page(w).replace(
        'href="/works/7001/chapters/', 'href="https://www.archiveofourown.org/works/7001/chapters/'
    )
    novel = ADAPTER.read_listing(
        index, f"{BASE}/works/7001/navigate", Fetch("", "listing", label="navigate"), step.novel
    ).novel
    assert novel is not None and all(
        c.url.startswith(f"{BASE}/works/7001/chapters/") for c in novel.chapters
    )
    assert len(novel.chapters) == 4 and novel.parse_warnings == ()


# --- the chapter index ----------------------------------------------------------------------


def read_index(html: str, known: NovelRecord | None = None) -> NovelRecord:
    if known is None:
        known = read_work_page(replace(fixture_work(site.NORMAL), end_notes_html=None)).novel
    novel = ADAPTER.read_listing(
        html,
        f"{BASE}/works/7001/navigate",
        Fetch(f"{BASE}/works/7001/navigate", "listing", label="navigate"),
        known,
    ).novel
    assert novel is not None
    return novel


def test_index_rows_doubled_or_of_another_work_are_skipped_and_counted() -> None:
    w = fixture_work(site.NORMAL)
    ids = [c.chapter_id for c in w.chapters]
    html = site.navigate_page(w)
    html = html.replace(
        f'href="/works/7001/chapters/{ids[2]}"', f'href="/works/7002/chapters/{ids[2]}"'
    )
    html = html.replace(
        f'href="/works/7001/chapters/{ids[3]}"', f'href="/works/7001/chapters/{ids[0]}"'
    )
    html = html.replace(f"({w.chapters[0].published_at.date().isoformat()})", "(2024-13-01)")
    novel = read_index(html)
    assert [c.site_chapter_id for c in novel.chapters] == [str(ids[0]), str(ids[1])]
    assert novel.chapters[0].published_at is None
    assert novel.parse_warnings[-3:] == (
        "1 chapters listed without a link to a chapter of this work: skipped",
        "1 chapters listed twice: the first listing kept",
        "1 chapters published_at not read; stored as null",
    )


@pytest.mark.parametrize(
    ("link", "named"),
    [
        ("https://elsewhere.invalid/works/7001/chapters/{id}", None),
        ("http://169.254.169.254/works/7001/chapters/{id}", None),
        (
            "//elsewhere.invalid/works/7001/chapters/{id}",
            "http://elsewhere.invalid/works/7001/chapters/{id}",  # on the page's scheme
        ),
        ("javascript:alert(1)//works/7001/chapters/{id}", None),
        ("file:///etc/passwd", None),
    ],
)
def test_an_index_row_off_the_site_ends_the_listing_naming_it(link: str, named: str | None) -> None:
    w = fixture_work(site.NORMAL)
    chapter_id = w.chapters[1].chapter_id
    link = link.format(id=chapter_id)
    html = site.navigate_page(w).replace(
        f'href="/works/7001/chapters/{chapter_id}"', f'href="{link}"'
    )
    with pytest.raises(RefusedURLError) as refused:
        read_index(html)
    expected = named.format(id=chapter_id) if named else link
    assert (refused.value.url, refused.value.reason) == (expected, "not on the fiction's site")


def test_an_index_row_on_another_ao3_host_is_rebased() -> None:
    w = fixture_work(site.NORMAL)
    chapter_id = w.chapters[1].chapter_id
    html = site.navigate_page(w).replace(
        f'href="/works/7001/chapters/{chapter_id}"',
        f'href="https://ao3.org/works/7001/chapters/{chapter_id}"',
    )
    novel = read_index(html)
    assert [c.site_chapter_id for c in novel.chapters] == [str(c.chapter_id) for c in w.chapters]
    assert novel.chapters[1].url.endswith(f"/works/7001/chapters/{chapter_id}")
    assert "ao3.org" not in novel.chapters[1].url


def test_an_index_title_without_its_number_is_kept_as_listed_and_said() -> None:
    w = fixture_work(site.NORMAL)
    html = site.navigate_page(w).replace(">2. Chapter 2<", ">Chapter Two<")
    novel = read_index(html)
    assert [c.title for c in novel.chapters][1] == "Chapter Two"
    assert novel.parse_warnings == (
        "1 chapters listed without their 'N. ' number: title kept as listed",
    )


def test_an_index_without_chapters_or_before_the_work_is_a_parse_error() -> None:
    w = fixture_work(site.NORMAL)
    empty = re.sub(r"<li>.*?</li>", "", site.navigate_page(w))
    with pytest.raises(ParseError, match="lists no chapter of work 7001"):
        read_index(empty)
    with pytest.raises(ParseError, match="before the AO3 work page"):
        ADAPTER.read_listing(
            site.navigate_page(w), f"{BASE}/n", Fetch("", "listing", label="navigate"), None
        )
    with pytest.raises(ParseError, match="not an AO3 chapter index"):
        read_index(site.one_shot_page(fixture_work(site.ONE_SHOT)))


def test_the_work_published_date_falls_back_to_the_earliest_chapter() -> None:
    known = read_work_page(replace(fixture_work(site.NORMAL), end_notes_html=None)).novel
    assert known is not None
    novel = read_index(
        site.navigate_page(fixture_work(site.NORMAL)), replace(known, published_at=None)
    )
    assert novel.published_at == fixture_work(site.NORMAL).chapters[0].published_at


# --- chapter pages --------------------------------------------------------------------------


def test_a_chapter_missing_from_the_whole_work_page_is_a_parse_error() -> None:
    w = fixture_work(site.NORMAL)
    novel, _, _ = crawl(site.NORMAL)
    (fetch,) = ADAPTER.chapter_fetches(novel)
    html = site.full_work_page(replace(w, chapters=w.chapters[:3]))
    with pytest.raises(ParseError, match=f"has no text for chapter {w.chapters[3].chapter_id}"):
        ADAPTER.parse_chapters(html, fetch)


def test_a_very_long_work_is_fetched_a_chapter_page_at_a_time() -> None:
    w = fixture_work(site.NORMAL)
    novel, _, _ = crawl(site.NORMAL)
    big = replace(novel, word_count=adapter_module.FULL_WORK_MAX_WORDS + 1)
    fetches = ADAPTER.chapter_fetches(big)
    assert [f.url for f in fetches] == [f"{ref.url}?view_adult=true" for ref in novel.chapters]
    assert [f.refs for f in fetches] == [(ref,) for ref in novel.chapters]
    for fetch, chapter in zip(fetches, w.chapters, strict=True):
        _, html = fetch_page(fetch.url)
        (record,) = ADAPTER.parse_chapters(html, fetch)
        assert record.content_html == chapter.body_html
        assert record.author_notes_html == chapter.author_notes_html


def test_a_novel_without_chapters_fetches_nothing() -> None:
    novel, _, _ = crawl(site.NORMAL)
    assert ADAPTER.chapter_fetches(replace(novel, chapters=())) == ()
    assert ADAPTER.parse_chapters("<html></html>", Fetch(f"{BASE}/works/7001", "chapters")) == []


def test_bulk_works_have_one_to_five_chapters() -> None:
    for work_id in (7100, 7104, 7199):
        novel, records, _ = crawl(work_id)
        assert len(novel.chapters) == len(records) == work_id % 5 + 1
    assert site.work(7200) is None and site.route(Asked("GET", "/works/7200", {}, {})) is None


# --- whatever the page: a record or ParseError ----------------------------------------------

CHUNKS = st.sampled_from(
    [
        "<", ">", "</div>", "<div>", '<div id="chapters">', '<dl class="work meta group">',
        '<dd class="words">', '<dd class="chapters">', "9" * 30, "/?", "?/", "</a>",
        '<a href="/works/7001/chapters/1">', '<a href="http://[x/">', '<a href="javascript:1">',
        '<ol class="chapter index group">', "<li>", "(9999-99-99)", '<div id="loginform">',
        '<p class="caution">', "Error 503", "\x00", "&#0;", "<!--", "-->", "#work_endnotes",
        '<div class="chapter" id="chapter-1">', '<h3 class="title">',
    ]
)  # fmt: skip


def mangle(html: str, at: int, cut: int, noise: list[str]) -> str:
    where = at % max(len(html), 1)
    return html[:where] + "".join(noise) + html[where + cut :]


def pages_to_mangle() -> list[tuple[str, Fetch, str]]:
    w = fixture_work(site.NORMAL)
    known = ADAPTER.fiction_ref(f"{BASE}/works/7001", base=BASE)
    return [
        (site.chapter_page(w, w.chapters[0]), ADAPTER.first_fetch(known), "listing"),
        (
            site.one_shot_page(fixture_work(site.ONE_SHOT)),
            work_fetch(f"{BASE}/works/7002"),
            "listing",
        ),
        (
            site.navigate_page(w),
            Fetch(f"{BASE}/works/7001/navigate", "listing", label="navigate"),
            "listing",
        ),
        (
            site.chapter_page(w, w.chapters[-1]),
            Fetch(f"{BASE}/works/7001/chapters/1", "listing", label="endnotes"),
            "listing",
        ),
        (
            site.full_work_page(w),
            Fetch(f"{BASE}/works/7001?view_full_work=true", "chapters"),
            "chapters",
        ),
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0, max_value=4),
    at=st.integers(min_value=0, max_value=10**6),
    cut=st.integers(min_value=0, max_value=400),
    noise=st.lists(st.one_of(CHUNKS, st.text(max_size=8)), max_size=6),
)
def test_a_mangled_page_gives_a_record_or_a_typed_failure(
    which: int, at: int, cut: int, noise: list[str]
) -> None:
    html, fetch, step = pages_to_mangle()[which]
    mangled = mangle(html, at, cut, noise)
    known, _, _ = _NORMAL_CRAWL
    try:
        ADAPTER.check_page(mangled, fetch.url)
        if step == "chapters":
            fetch = replace(fetch, refs=known.chapters)
            records = ADAPTER.parse_chapters(mangled, fetch)
            assert [r.site_chapter_id for r in records] == [
                c.site_chapter_id for c in known.chapters
            ]
            assert all(r.word_count is not None and r.word_count >= 0 for r in records)
            return
        listed = ADAPTER.read_listing(mangled, fetch.url, fetch, known)
    except (ParseError, PermanentFailure, RetryableFailure):
        return
    novel = listed.novel
    assert all(
        f.url.startswith(f"{BASE}/works/7001") or f.url.startswith(f"{BASE}/works/7002")
        for f in listed.follow
    )
    if novel is not None:
        assert all(
            c.site_chapter_id.isdigit() and c.url.startswith(f"{BASE}/works/")
            for c in novel.chapters
        )
        assert len({c.site_chapter_id for c in novel.chapters}) == len(novel.chapters)
        assert novel.word_count is None or 0 <= novel.word_count < 2**31
        assert novel.chapters_planned is None or 0 <= novel.chapters_planned < 2**31
        assert [c.position for c in novel.chapters] == list(range(1, len(novel.chapters) + 1))


_NORMAL_CRAWL = crawl(site.NORMAL)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
@example("[]")  # parsel would read these as JSON documents, not pages
@example('{"a": 1}')
@example("1")
def test_any_text_is_a_record_or_a_typed_failure(text: str) -> None:
    for fetch in (
        work_fetch(f"{BASE}/works/7001"),
        Fetch(f"{BASE}/works/7001/navigate", "listing", label="navigate"),
    ):
        try:
            ADAPTER.check_page(text, fetch.url)
            ADAPTER.read_listing(text, fetch.url, fetch, _NORMAL_CRAWL[0])
        except (ParseError, PermanentFailure, RetryableFailure):
            pass


def test_deeply_nested_markup_is_no_crash() -> None:
    w = fixture_work(site.NORMAL)
    nested = "<span>" * 20_000 + "deep" + "</span>" * 20_000
    chapter = replace(w.chapters[0], body_html=f"<p>{nested}</p>")
    html = site.full_work_page(replace(w, chapters=(chapter, *w.chapters[1:])))
    novel = _NORMAL_CRAWL[0]
    (fetch,) = ADAPTER.chapter_fetches(novel)
    try:
        records = ADAPTER.parse_chapters(html, fetch)
    except ParseError:
        return
    assert records[0].word_count is not None
