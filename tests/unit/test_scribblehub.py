"""The Scribble Hub adapter against the project's look-alike pages (tests/fixture_site/
scribblehub.py): every field exact, the variants a page may show, odd and hostile pages
(null and a warning, or ParseError; never another exception), and every URL form.

Pages are fetched from the look-alike's `route` in process, reached through an alias
(BASE), so every link the adapter follows must have been rebased off the real host.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parsel import Selector

from crawler.items import ChapterRecord, ChapterRef, NovelRecord
from crawler.sites.base import Fetch, ListingStep
from crawler.sites.fields import WORD
from crawler.sites.scribblehub import ADAPTER
from errors import InvalidURLError, ParseError, RefusedURLError, RetryableFailure
from tests.fixture_site import scribblehub as sh
from tests.fixture_site.answer import Answer, Asked

BASE = "http://sh.test:8080"
TOC = f"{BASE}/wp-admin/admin-ajax.php"


def _get(path: str, query: dict[str, list[str]] | None = None) -> Answer:
    answer = sh.route(Asked("GET", path, query or {}, {}))
    assert answer is not None, path
    return answer


def _post(fetch: Fetch) -> Answer:
    form = {name: [value] for name, value in fetch.form}
    answer = sh.route(Asked(fetch.method, urlsplit(fetch.url).path, {}, form))
    assert answer is not None, fetch
    return answer


def _fiction(fiction_id: int) -> sh.ShFiction:
    found = sh.fiction(fiction_id)
    assert found is not None
    return found


def _series_step(fiction: sh.ShFiction) -> ListingStep:
    html = sh.series_page(fiction)
    return ADAPTER.read_listing(
        html, BASE + fiction.path(), Fetch("x", "listing", label="series"), None
    )


def _toc_step(fiction: sh.ShFiction, html: str | None = None) -> NovelRecord:
    first = _series_step(fiction)
    (toc,) = first.follow
    answer = html if html is not None else sh.toc_answer(fiction, -1)
    step = ADAPTER.read_listing(answer, toc.url, toc, first.novel)
    assert step.follow == () and step.novel is not None
    return step.novel


def _crawl(fiction_id: int) -> tuple[NovelRecord, list[ChapterRecord]]:
    """The crawl the spider makes, against the look-alike's routes."""
    ref = ADAPTER.fiction_ref(f"{BASE}/series/{fiction_id}/", base=BASE)
    fetch, known = ADAPTER.first_fetch(ref), None
    while True:
        answer = _post(fetch) if fetch.method == "POST" else _get(urlsplit(fetch.url).path)
        if answer.status == 301:
            fetch = replace(fetch, url=BASE + answer.headers["Location"])
            continue
        assert answer.status == 200, (fetch, answer.status)
        ADAPTER.check_page(answer.body, fetch.url)
        step = ADAPTER.read_listing(answer.body, fetch.url, fetch, known)
        if not step.follow:
            break
        (fetch,), known = step.follow, step.novel
    novel = step.novel
    assert novel is not None
    records = []
    for page in ADAPTER.chapter_fetches(novel):
        answer = _get(urlsplit(page.url).path)
        ADAPTER.check_page(answer.body, page.url)
        records += ADAPTER.parse_chapters(answer.body, page)
    return novel, records


def _words(text: str) -> int:
    return len(WORD.findall(text))


# --- the adapter's declarations and URL forms ---------------------------------------


def test_the_adapter_declares_its_site() -> None:
    assert (ADAPTER.name, ADAPTER.display_name) == ("scribblehub", "Scribble Hub")
    assert ADAPTER.hosts == ("www.scribblehub.com", "scribblehub.com")
    assert ADAPTER.example_url == "https://www.scribblehub.com/series/123456/some-series/"
    assert (ADAPTER.politeness.download_delay, ADAPTER.politeness.concurrent_requests) == (1.0, 2)
    assert ADAPTER.fiction_ref(ADAPTER.example_url, base="https://x").site_id == "123456"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.scribblehub.com/series/123456/some-series/",
        "https://www.scribblehub.com/series/123456/some-series",
        "https://www.scribblehub.com/series/123456/",
        "https://www.scribblehub.com/series/123456",
        "http://scribblehub.com/series/0123456/some-series/",
        "https://www.scribblehub.com/series/123456/some-series/?toc=3#content1",
        "https://www.scribblehub.com/series/123456/some-series/#comments",
        "  https://www.scribblehub.com/series/123456/some-series/  ",
        "https://www.scribblehub.com/read/123456-some-series/chapter/987654/",
        "https://www.scribblehub.com/read/123456-some-series/chapter/987654",
        "https://www.scribblehub.com/read/123456/chapter/987654/",
        "https://www.scribblehub.com/read/123456-some-series/chapter/987654/?x=1#comments",
    ],
)
def test_every_url_form_of_a_series_is_one_canonical_url(url: str) -> None:
    ref = ADAPTER.fiction_ref(url, base="https://www.scribblehub.com")
    assert (ref.site, ref.site_id) == ("scribblehub", "123456")
    assert ref.url == "https://www.scribblehub.com/series/123456/"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.scribblehub.com/",
        "https://www.scribblehub.com/series/",
        "https://www.scribblehub.com/series/abc/some-series/",
        "https://www.scribblehub.com/series/١٢٣/some-series/",  # Arabic-Indic digits
        "https://www.scribblehub.com/series/123/some-series/stats/",
        "https://www.scribblehub.com/read/123456some-series/chapter/987654/",
        "https://www.scribblehub.com/read/123456-some-series/",
        "https://www.scribblehub.com/profile/108709/drava/",
        "https://www.scribblehub.com/series/1234567890123456789/x/",
        "http://[abc/series/1/",
    ],
)
def test_a_url_that_names_no_series_is_refused(url: str) -> None:
    with pytest.raises(InvalidURLError):
        ADAPTER.fiction_ref(url, base="https://www.scribblehub.com")


def test_the_crawl_starts_at_the_series_page() -> None:
    ref = ADAPTER.fiction_ref(f"{BASE}/read/3001-x/chapter/3001003/", base=BASE)
    assert ADAPTER.first_fetch(ref) == Fetch(f"{BASE}/series/3001/", "listing", label="series")


# --- the look-alike serves what the adapter reads ------------------------------------


def test_the_series_page_shows_only_the_newest_15_so_the_crawl_must_post() -> None:
    fiction = _fiction(sh.NORMAL)
    page = Selector(text=sh.series_page(fiction))
    shown = page.css("ol.toc_ol li.toc_w a::attr(href)").getall()
    newest = fiction.newest_first()[:15]
    assert shown == [sh.REAL + fiction.chapter_path(c) for c in newest]
    assert page.css(".toc span.cnt_toc::text").get() == "23"


def test_the_table_of_contents_answers_only_its_own_form() -> None:
    def post(form: dict[str, list[str]]) -> Answer | None:
        return sh.route(Asked("POST", "/wp-admin/admin-ajax.php", {}, form))

    fiction, action = _fiction(sh.NORMAL), ["wi_getreleases_pagination"]
    every = post({"action": action, "pagenum": ["-1"], "mypostid": ["3001"]})
    second = post({"action": action, "pagenum": ["2"], "mypostid": ["3001"]})
    assert every is not None and second is not None
    assert every.body.endswith("</ol></div></div>0")
    assert Selector(text=every.body).css("li.toc_w::attr(order)").getall() == [
        str(c.order) for c in fiction.newest_first()
    ]
    assert len(Selector(text=second.body).css("li.toc_w")) == 8
    assert post({"action": ["other"], "pagenum": ["-1"], "mypostid": ["3001"]}) == Answer(400, "0")
    assert post({"action": action, "pagenum": ["-1"]}) == Answer(400, "0")
    assert post({"action": action, "pagenum": ["-1"], "mypostid": ["42"]}) is None
    assert sh.route(Asked("GET", "/wp-admin/admin-ajax.php", {}, {})) == Answer(400, "0")


def test_the_look_alike_redirects_to_the_canonical_paths() -> None:
    fiction = _fiction(sh.NORMAL)
    assert _get("/series/3001/").headers == {"Location": fiction.path()}
    assert _get("/series/3001/wrong-slug/").headers == {"Location": fiction.path()}
    chapter = fiction.chapters[0]
    without_slug = f"/read/3001/chapter/{chapter.chapter_id}/"
    assert _get(without_slug).headers == {"Location": fiction.chapter_path(chapter)}
    assert sh.route(Asked("GET", "/series/9999/x/", {}, {})) is None
    assert sh.route(Asked("GET", "/read/3002-fixture-series-3002/chapter/3001003/", {}, {})) is None


# --- every field of the normal series ------------------------------------------------


def test_every_field_of_a_series_of_23_chapters() -> None:
    fiction = _fiction(sh.NORMAL)
    novel, _ = _crawl(sh.NORMAL)
    assert (novel.site, novel.site_id, novel.url) == ("scribblehub", "3001", BASE + fiction.path())
    assert (novel.title, novel.author) == (fiction.title, fiction.author)
    assert novel.title == "The Wren Orchard — Ünïcode Series 3001 & Co."
    assert novel.description == fiction.description_html
    assert novel.cover_url == fiction.cover  # on the site's CDN: not rebased
    assert novel.tags == fiction.genres + fiction.tags
    assert novel.tag_groups == (("genre", fiction.genres), ("tag", fiction.tags))
    assert novel.content_warnings == ("Gore", "Strong Language")
    assert (novel.status, novel.rating, novel.word_count) == ("ongoing", 3.1, None)
    assert novel.site_updated_at == fiction.chapters[-1].published_at
    assert (novel.volumes, novel.language, novel.content_rating) == ((), None, None)
    assert (novel.chapters_planned, novel.notes_html) == (None, None)
    assert novel.parse_warnings == ()


def test_the_23_chapters_come_from_the_post_in_reading_order() -> None:
    fiction = _fiction(sh.NORMAL)
    novel, _ = _crawl(sh.NORMAL)
    assert [c.position for c in novel.chapters] == list(range(1, 24))
    assert [(c.site_chapter_id, c.title, c.published_at) for c in novel.chapters] == [
        (str(c.chapter_id), c.title, c.published_at) for c in fiction.chapters
    ]
    assert all(
        c.url == BASE + fiction.chapter_path(f)
        for c, f in zip(novel.chapters, fiction.chapters, strict=True)
    )
    assert all(c.volume is None and not c.locked for c in novel.chapters)
    # chapter 5 was re-posted: the highest id and the earliest date, still fifth
    assert novel.chapters[4].site_chapter_id == "3001999"
    earliest = min(c.published_at for c in fiction.chapters)
    assert novel.published_at == novel.chapters[4].published_at == earliest
    assert earliest < fiction.chapters[0].published_at


def test_the_series_step_asks_for_every_chapter_by_post() -> None:
    step = _series_step(_fiction(sh.NORMAL))
    assert step.novel is not None and step.novel.chapters == ()
    assert step.follow == (
        Fetch(
            TOC,
            "listing",
            "POST",
            (("action", "wi_getreleases_pagination"), ("pagenum", "-1"), ("mypostid", "3001")),
            label="toc:23",
        ),
    )


def test_every_chapter_page_gives_its_story_notes_and_counts() -> None:
    fiction = _fiction(sh.NORMAL)
    novel, records = _crawl(sh.NORMAL)
    fetches = ADAPTER.chapter_fetches(novel)
    assert [f.refs for f in fetches] == [(ref,) for ref in novel.chapters]
    assert all(f.step == "chapters" and f.url == f.refs[0].url for f in fetches)
    for record, expected in zip(records, fiction.chapters, strict=True):
        assert (record.site_chapter_id, record.position) == (
            str(expected.chapter_id),
            expected.position,
        )
        assert record.title == expected.title
        assert record.content_html == expected.story_html
        assert record.author_notes_html == expected.notes_html
        assert record.word_count == _words(" ".join(expected.paragraphs))
        assert record.content_hash == hashlib.sha256(expected.story_html.encode()).hexdigest()
        assert record.published_at == expected.published_at
        assert "Announcement" not in record.content_html + (record.author_notes_html or "")
    assert (
        records[0].author_notes_html
        == "<p>Welcome, reader ♥</p>\n<hr/>\n<p>See you in chapter 2.</p>"
    )
    assert fiction.chapters[1].news and records[1].author_notes_html is None


# --- the other fictions -----------------------------------------------------------------


def test_a_completed_series_reads_completed_and_its_tooltip_date() -> None:
    fiction = _fiction(sh.COMPLETED)
    novel, records = _crawl(sh.COMPLETED)
    assert (novel.status, novel.site_updated_at) == ("completed", fiction.chapters[-1].published_at)
    assert len(novel.chapters) == len(records) == 8
    assert novel.parse_warnings == ()


def test_a_one_chapter_series_with_genres_and_no_tags() -> None:
    fiction = _fiction(sh.ONE_CHAPTER)
    novel, (record,) = _crawl(sh.ONE_CHAPTER)
    assert novel.tags == ("Fantasy", "Slice of Life")
    assert novel.tag_groups == (("genre", ("Fantasy", "Slice of Life")),)
    assert [c.site_chapter_id for c in novel.chapters] == ["3003003"]
    assert novel.published_at == fiction.chapters[0].published_at
    assert record.author_notes_html == "<p>The end — thank you!</p>"
    assert record.word_count == _words(" ".join(fiction.chapters[0].paragraphs)) > 500
    assert novel.parse_warnings == ()


def test_a_series_with_odd_fields_gives_nulls_and_says_why() -> None:
    fiction = _fiction(sh.ODD)
    novel, records = _crawl(sh.ODD)
    assert (novel.status, novel.site_updated_at, novel.rating, novel.cover_url) == (
        None,
        None,
        None,
        None,
    )
    assert novel.tags == fiction.genres and novel.content_warnings == ()
    assert [c.published_at for c in novel.chapters] == [c.expected_date for c in fiction.chapters]
    assert novel.chapters[-1].published_at is None
    assert novel.published_at == fiction.chapters[0].published_at
    assert len(records) == 4
    assert novel.parse_warnings == (
        "cover_url not read: no cover image on the page; stored as null",
        "status not read: the status line 'On Hold - Updated 5 hours ago' names no status"
        " (Ongoing, Completed, Hiatus); stored as null",
        "site_updated_at not read: the page gives it only relatively ('5 hours ago');"
        " stored as null",
        "1 chapters published_at not read (given only relatively); stored as null",
        "the table of contents lists 4 chapters of the 6 the series page counts",
    )


def test_a_series_without_chapters_is_a_whole_listing_with_none() -> None:
    novel, records = _crawl(sh.STUB)
    assert (novel.chapters, records, novel.published_at) == ((), [], None)
    assert ADAPTER.chapter_fetches(novel) == ()
    assert novel.parse_warnings == ()


@pytest.mark.parametrize("fiction_id", [7000, 7004, 7999])
def test_the_many_small_series_crawl_whole(fiction_id: int) -> None:
    novel, records = _crawl(fiction_id)
    assert len(novel.chapters) == len(records) == fiction_id % 9 + 3
    assert novel.parse_warnings == ()


# --- error pages served with HTTP 200 ------------------------------------------------


def test_cloudflares_browser_check_is_retried() -> None:
    answer = _get(_fiction(sh.CHALLENGE).path())
    with pytest.raises(
        RetryableFailure, match=r"Cloudflare's browser check \('Just a moment...'\)"
    ):
        ADAPTER.check_page(answer.body, BASE + "/series/3901/x/")


def test_a_bad_gateway_page_with_http_200_is_retried() -> None:
    fiction = _fiction(sh.BAD_GATEWAY)
    answer = _get(fiction.chapter_path(fiction.chapters[1]))
    with pytest.raises(
        RetryableFailure, match=r"an error page \('502 Bad Gateway'\) with HTTP 200"
    ):
        ADAPTER.check_page(answer.body, "u")


@pytest.mark.parametrize(
    "body",
    [
        "502 Bad Gateway",
        "<title>scribblehub.com | 522: Connection timed out</title><div id='cf-wrapper'></div>",
        "<html><head><title>503 Service Temporarily Unavailable</title></head></html>",
        "<title>Database Error</title><h1>Error establishing a database connection</h1>",
        "<title>Maintenance</title><p>Briefly unavailable for scheduled maintenance.</p>",
        "<title>Attention Required! | Cloudflare</title>",
    ],
)
def test_the_sites_outage_pages_are_retried(body: str) -> None:
    with pytest.raises(RetryableFailure):
        ADAPTER.check_page(body, "u")


def test_real_pages_and_odd_answers_are_no_error_pages() -> None:
    fiction = _fiction(sh.NORMAL)
    for html in (
        sh.series_page(fiction),  # it loads Cloudflare's challenge-platform script
        sh.toc_answer(fiction, -1),
        sh.chapter_page(fiction, fiction.chapters[0]),
        "0",
        "",
        "<title>502 days of summer | Scribble Hub</title><div class='fic_title'>502 days</div>",
    ):
        ADAPTER.check_page(html, "u")


def test_a_table_of_contents_answer_of_0_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="the table of contents of series 3902 lists nothing"):
        _crawl(sh.NO_TOC)


# --- variants of the series page -------------------------------------------------------


def _series_novel(
    fiction: sh.ShFiction, html: str | None = None, url: str | None = None
) -> NovelRecord:
    page = html if html is not None else sh.series_page(fiction)
    step = ADAPTER.read_listing(
        page, url or BASE + fiction.path(), Fetch("x", "listing", label="series"), None
    )
    assert step.novel is not None
    return step.novel


def test_a_hiatus_status_line_is_read() -> None:
    fiction = replace(_fiction(sh.NORMAL), status_line="Hiatus")
    assert _series_novel(fiction).status == "hiatus"


def test_a_page_without_a_status_line_says_so() -> None:
    fiction = _fiction(sh.NORMAL)
    html = sh.series_page(fiction).replace('title="Last updated:', 'title="Updated:')
    novel = _series_novel(fiction, html)
    assert (novel.status, novel.site_updated_at) == (None, None)
    assert novel.parse_warnings == (
        "status not read: no 'Last updated' line on the page; stored as null",
        "site_updated_at not read: no 'Last updated' line on the page; stored as null",
    )


@pytest.mark.parametrize(
    ("tooltip", "why"),
    [
        ("Feb 30, 2025 01:00 PM", "in no form the site uses"),
        ("Mar 3, 2025 13:00 PM", "in no form the site uses"),
        ("Smarch 3, 2025 01:00 PM", "in no form the site uses"),
        ("yesterday", "only relatively"),
    ],
)
def test_an_update_date_no_calendar_holds_is_null(tooltip: str, why: str) -> None:
    fiction = replace(_fiction(sh.COMPLETED), updated_tooltip=tooltip)
    novel = _series_novel(fiction)
    assert (novel.status, novel.site_updated_at) == ("completed", None)
    assert novel.parse_warnings == (
        f"site_updated_at not read: the page gives it {why} ({tooltip!r}); stored as null",
    )


def test_a_date_at_noon_and_midnight_reads_as_the_site_means_it() -> None:
    for hour in (0, 12):
        when = datetime(2025, 6, 1, hour, 7, tzinfo=UTC)
        fiction = replace(_fiction(sh.COMPLETED), updated_tooltip=sh.site_date(when))
        assert _series_novel(fiction).site_updated_at == when


def test_missing_author_description_cover_and_tags_are_null_with_warnings() -> None:
    fiction = _fiction(sh.NORMAL)
    html = sh.series_page(fiction)
    for cut in (
        'class="auth_name_fic"',
        'class="wi_fic_desc"',
        'class="fic_genre"',
        'class="wi_fic_showtags_inner"',
    ):
        html = html.replace(cut, 'class="gone"')
    html = html.replace(f'<img src="{fiction.cover}"', '<img src=""')
    novel = _series_novel(fiction, html)
    assert (novel.author, novel.description, novel.cover_url, novel.tags) == (None, None, None, ())
    assert novel.tag_groups == ()
    assert novel.parse_warnings == (
        "tags not read: no genre or tag block on the page; stored as none",
        "author not read: no author name (span.auth_name_fic) on the page; stored as null",
        "description not read: no synopsis block on the page; stored as null",
        "cover_url not read: no cover image on the page; stored as null",
    )


def test_a_cover_that_is_no_http_url_is_not_stored() -> None:
    fiction = replace(_fiction(sh.NORMAL), cover="javascript:alert(1)")
    novel = _series_novel(fiction)
    assert novel.cover_url is None
    assert novel.parse_warnings == (
        "cover_url not read: the cover image's address is not an http(s) URL; stored as null",
    )


def test_a_relative_cover_is_made_absolute_on_the_page() -> None:
    fiction = replace(_fiction(sh.NORMAL), cover="/images/cover.jpg")
    assert _series_novel(fiction).cover_url == f"{BASE}/images/cover.jpg"


def test_the_rating_falls_back_to_the_json_ld() -> None:
    fiction = _fiction(sh.NORMAL)
    html = sh.series_page(fiction).replace('id="ratefic_user"', 'id="gone"')
    assert _series_novel(fiction, html).rating == 3.1


def test_a_series_no_one_rated_has_no_rating_and_no_warning() -> None:
    fiction = replace(_fiction(sh.NORMAL), rating=0.0, ratings=0)
    novel = _series_novel(fiction)
    assert (novel.rating, novel.parse_warnings) == (None, ())


@pytest.mark.parametrize(
    ("shown", "warning"),
    [
        ("7.5", "rating not read: 7.5 is outside the site's scale 0-5; stored as null"),
        ("-1", "rating not read: -1.0 is outside the site's scale 0-5; stored as null"),
        ("four", "rating not read: 'four' is not a rating; stored as null"),
        ("nan", "rating not read: 'nan' is not a rating; stored as null"),
    ],
)
def test_a_rating_off_the_scale_is_null_with_a_warning(shown: str, warning: str) -> None:
    fiction = _fiction(sh.NORMAL)
    html = sh.series_page(fiction).replace("<span>3.1</span>", f"<span>{shown}</span>")
    novel = _series_novel(fiction, html)
    assert (novel.rating, novel.parse_warnings) == (None, (warning,))


def test_a_json_ld_rating_on_another_scale_is_not_taken() -> None:
    fiction = _fiction(sh.NORMAL)
    html = (
        sh.series_page(fiction)
        .replace('id="ratefic_user"', 'id="gone"')
        .replace('"bestRating":"5"', '"bestRating":"10"')
    )
    novel = _series_novel(fiction, html)
    assert (novel.rating, novel.parse_warnings) == (
        None,
        ("rating not read: the page rates out of 10.0, not 5; stored as null",),
    )


def test_a_page_without_any_rating_says_so() -> None:
    fiction = replace(_fiction(sh.NORMAL), ratings=0)  # no JSON-LD rating
    html = sh.series_page(fiction).replace('id="ratefic_user"', 'id="gone"')
    assert _series_novel(fiction, html).parse_warnings == (
        "rating not read: no rating on the page; stored as null",
    )


def test_a_page_without_a_series_title_is_no_series_page() -> None:
    fiction = _fiction(sh.NORMAL)
    html = sh.series_page(fiction).replace('class="fic_title"', 'class="gone"')
    with pytest.raises(
        ParseError, match="is not a Scribble Hub series page: it has no series title"
    ):
        _series_novel(fiction, html)


def test_the_series_id_comes_from_the_page_else_from_its_url() -> None:
    fiction = _fiction(sh.NORMAL)
    named = sh.series_page(fiction).replace(
        'id="mypostid" value="3001"', 'id="mypostid" value="3002"'
    )
    novel = _series_novel(fiction, named)
    assert novel.site_id == "3002"
    assert novel.parse_warnings == (
        f"the page at {BASE}{fiction.path()} names series 3002: stored as series 3002",
    )
    unnamed = sh.series_page(fiction).replace('id="mypostid"', 'id="gone"')
    assert _series_novel(fiction, unnamed).site_id == "3001"
    with pytest.raises(ParseError, match="it names no series id"):
        _series_novel(fiction, unnamed, url=f"{BASE}/some/where/")


def test_without_a_chapter_count_the_listing_is_not_compared() -> None:
    fiction = _fiction(sh.ODD)
    html = (
        sh.series_page(fiction)
        .replace('class="cnt_toc"', 'class="gone"')
        .replace('id="chpcounter"', 'id="x"')
    )
    step = ADAPTER.read_listing(
        html, BASE + fiction.path(), Fetch("x", "listing", label="series"), None
    )
    assert step.follow[0].label == "toc"
    answer = ADAPTER.read_listing(sh.toc_answer(fiction, -1), TOC, step.follow[0], step.novel)
    assert answer.novel is not None
    assert not any("series page counts" in w for w in answer.novel.parse_warnings)


def test_the_table_of_contents_is_asked_where_the_series_was_reached() -> None:
    fiction = _fiction(sh.NORMAL)
    step = ADAPTER.read_listing(
        sh.series_page(fiction),
        f"https://www.scribblehub.com{fiction.path()}",
        Fetch("x", "listing", label="series"),
        None,
    )
    assert step.follow[0].url == "https://www.scribblehub.com/wp-admin/admin-ajax.php"


# --- variants of the table of contents -----------------------------------------------


def _answer(fiction: sh.ShFiction) -> str:
    return sh.toc_answer(fiction, -1)


def test_a_table_of_contents_before_its_series_page_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="a table of contents without its series page"):
        ADAPTER.read_listing(
            _answer(_fiction(sh.NORMAL)), TOC, Fetch(TOC, "listing", "POST", label="toc:23"), None
        )


def test_without_order_attributes_the_list_is_reversed() -> None:
    fiction = _fiction(sh.NORMAL)
    novel = _toc_step(fiction, _answer(fiction).replace(' order="', ' data-order="'))
    assert [c.site_chapter_id for c in novel.chapters] == [
        str(c.chapter_id) for c in fiction.chapters
    ]


def test_the_sites_order_wins_over_the_lists_order() -> None:
    fiction = _fiction(sh.NORMAL)
    page = Selector(text=_answer(fiction))
    items = page.css("li.toc_w").getall()
    shuffled = '<ol class="toc_ol">' + "".join(items[::2] + items[1::2]) + "</ol>0"
    novel = _toc_step(fiction, shuffled)
    assert [c.site_chapter_id for c in novel.chapters] == [
        str(c.chapter_id) for c in fiction.chapters
    ]
    duplicated = shuffled.replace(
        f'order="{fiction.chapters[0].order}"', f'order="{fiction.chapters[1].order}"'
    )
    assert [c.site_chapter_id for c in _toc_step(fiction, duplicated).chapters] == [
        s.split("/chapter/")[1].strip("/")
        for s in reversed(Selector(text=shuffled).css("a.toc_a::attr(href)").getall())
    ]


def _toc_with_link(link: str) -> tuple[sh.Fiction, str]:
    """Series 3004's table of contents (4 chapters) with its second entry linking `link`."""
    fiction = replace(_fiction(sh.ODD), counted=None, chapters=_fiction(sh.NORMAL).chapters[:4])
    fiction = replace(
        fiction,
        chapters=tuple(replace(c, chapter_id=3004000 + c.position) for c in fiction.chapters),
    )
    html = _answer(fiction).replace(sh.REAL + fiction.chapter_path(fiction.chapters[1]), link)
    return fiction, html


@pytest.mark.parametrize(
    ("link", "named"),
    [
        ("http://169.254.169.254/read/3004-x/chapter/1/", None),
        ("https://elsewhere.invalid/read/3004-x/chapter/1/", None),
        (f"{BASE}:6379/read/3004-x/chapter/1/", None),  # the same host, another port
        ("javascript:alert(1)//chapter/9/", None),
        ("file:///etc/passwd", None),
        ("http://[abc/chapter/9/", None),
    ],
)
def test_an_entry_linking_off_the_site_ends_the_listing_naming_it(
    link: str, named: str | None
) -> None:
    fiction, html = _toc_with_link(link)
    with pytest.raises(RefusedURLError) as refused:
        _toc_step(fiction, html)
    assert (refused.value.url, refused.value.reason) == (named or link, "not on the fiction's site")
    assert refused.value.retryable is False


def test_an_entry_linking_the_real_host_is_rebased() -> None:
    fiction, html = _toc_with_link("https://scribblehub.com/read/3004-x/chapter/3004002/")
    novel = _toc_step(fiction, html)
    assert [c.site_chapter_id for c in novel.chapters] == [
        "3004001",
        "3004002",
        "3004003",
        "3004004",
    ]
    assert novel.chapters[1].url == f"{BASE}/read/3004-x/chapter/3004002/"


@pytest.mark.parametrize(
    ("link", "warning"),
    [
        (
            "https://www.scribblehub.com/read/3004-x/",
            "1 chapters listed without a chapter link: skipped",
        ),
        (
            "https://www.scribblehub.com/read/3001-x/chapter/77/",
            "1 chapters linked to another series: skipped",
        ),
    ],
)
def test_an_entry_that_links_to_no_chapter_of_this_series_is_skipped(
    link: str, warning: str
) -> None:
    fiction, html = _toc_with_link(link)
    novel = _toc_step(fiction, html)
    assert [c.site_chapter_id for c in novel.chapters] == ["3004001", "3004003", "3004004"]
    assert [c.position for c in novel.chapters] == [1, 2, 3]
    assert all(
        c.url.startswith(f"{BASE}/read/3004-fixture-series-3004/chapter/") for c in novel.chapters
    )
    assert warning in novel.parse_warnings
    assert (
        "the table of contents lists 3 chapters of the 4 the series page counts"
        in novel.parse_warnings
    )


def test_an_entry_without_a_link_or_a_title_or_a_date() -> None:
    fiction = _fiction(sh.COMPLETED)
    first, second, third = fiction.chapters[:3]
    html = _answer(fiction)
    html = html.replace(f'href="{sh.REAL + fiction.chapter_path(first)}"', "")
    html = html.replace(f">{second.title}</a>", "></a>")
    html = html.replace(f'title="{sh.site_date(third.published_at)}"', 'title="Someday"')
    novel = _toc_step(fiction, html)
    assert len(novel.chapters) == 7
    assert (novel.chapters[0].title, novel.chapters[1].published_at) == ("", None)
    assert novel.parse_warnings == (
        "1 chapters listed without a chapter link: skipped",
        "1 chapters without a title in the table of contents",
        "1 chapters published_at not read; stored as null",
        "the table of contents lists 7 chapters of the 8 the series page counts",
    )


def test_a_chapter_listed_twice_is_kept_once() -> None:
    fiction = _fiction(sh.COMPLETED)
    html = _answer(fiction)
    items = Selector(text=html).css("li.toc_w").getall()
    twice = html.replace(items[0], items[0] + items[0].replace('order="8"', 'order="99"'))
    novel = _toc_step(fiction, twice)
    assert [c.site_chapter_id for c in novel.chapters] == [
        str(c.chapter_id) for c in fiction.chapters
    ]
    assert novel.parse_warnings == ("1 chapters listed twice: the first listing kept",)


def test_the_listing_title_is_kept_and_the_pages_title_fills_an_empty_one() -> None:
    fiction = _fiction(sh.COMPLETED)
    chapter = fiction.chapters[2]
    page = sh.chapter_page(fiction, chapter)
    ref = ChapterRef(str(chapter.chapter_id), "u", 3, "Listed title")
    (listed,) = ADAPTER.parse_chapters(page, Fetch("u", "chapters", refs=(ref,)))
    (untitled,) = ADAPTER.parse_chapters(
        page, Fetch("u", "chapters", refs=(replace(ref, title=""),))
    )
    assert (listed.title, untitled.title) == ("Listed title", chapter.title)


# --- variants of the chapter page -----------------------------------------------------


def _ref(chapter: sh.ShChapter) -> ChapterRef:
    return ChapterRef(str(chapter.chapter_id), "u", chapter.position, chapter.title)


def _record(html: str, chapter: sh.ShChapter) -> ChapterRecord:
    (record,) = ADAPTER.parse_chapters(html, Fetch("u", "chapters", refs=(_ref(chapter),)))
    return record


def test_a_chapter_page_without_its_text_is_a_parse_error() -> None:
    fiction = _fiction(sh.NORMAL)
    chapter = fiction.chapters[0]
    html = sh.chapter_page(fiction, chapter).replace('id="chp_raw"', 'id="gone"')
    with pytest.raises(ParseError, match="chapter page u has no chapter text"):
        _record(html, chapter)


def test_a_page_that_holds_another_chapter_is_a_parse_error() -> None:
    fiction = _fiction(sh.NORMAL)
    html = sh.chapter_page(fiction, fiction.chapters[1])
    with pytest.raises(
        ParseError, match=f"u served chapter {fiction.chapters[1].chapter_id}, not 3001003"
    ):
        _record(html, fiction.chapters[0])


def test_a_note_without_its_body_block_is_kept_whole() -> None:
    fiction = _fiction(sh.NORMAL)
    chapter = replace(fiction.chapters[2], note_before="A plain note.")
    html = sh.chapter_page(fiction, chapter).replace('class="wi_authornotes_body"', 'class="plain"')
    record = _record(html, chapter)
    assert record.content_html == chapter.story_html
    assert record.author_notes_html is not None and "A plain note." in record.author_notes_html
    assert f"{fiction.author}</a>" in record.author_notes_html  # the name block, kept
    assert "an_username" not in record.author_notes_html  # the site's classes are not


def test_images_tables_spoilers_and_formatting_stay_as_the_page_has_them() -> None:
    fiction = _fiction(sh.NORMAL)
    chapter = fiction.chapters[2]
    extra = (
        '<p><img class="aligncenter" src="https://cdn.scribblehub.com/x.png"></p>'
        "<table><tbody><tr><td>Skill: <em>Runic</em> Eye</td></tr></tbody></table>"
        '<div class="sp-wrap"><div class="sp-head">Spoiler</div>'
        '<div class="sp-body">hidden plot</div></div>'
    )
    html = sh.chapter_page(fiction, chapter).replace(
        '<div class="chp_raw" id="chp_raw">', f'<div class="chp_raw" id="chp_raw">{extra}'
    )
    record = _record(html, chapter)
    kept = extra.replace(' class="aligncenter"', "")  # the site's own styling, not the text's
    assert record.content_html == kept + chapter.story_html
    assert record.word_count == _words(" ".join(chapter.paragraphs)) + _words(
        "Skill: Runic Eye Spoiler hidden plot"
    )


def test_a_word_cut_by_inline_markup_is_one_word() -> None:
    fiction = _fiction(sh.NORMAL)
    chapter = replace(fiction.chapters[2], paragraphs=("x",))
    html = sh.chapter_page(fiction, chapter).replace(
        "<p>x</p>", "<p>J<em>olasin</em> went<br>home</p>"
    )
    assert _record(html, chapter).word_count == 3


# --- whatever the page: a record or ParseError (or, from check_page, RetryableFailure) ----

CHUNKS = st.sampled_from(
    [
        "<", ">", "</li>", "<li class='toc_w'>", '"', "'", "order=", 'order="-1"',
        'order="99999999999999999999"', "href=", 'href="http://[x"', "/chapter/", "/read/",
        "<ol class='toc_ol'>", "</ol>", "\x00", "&#0;", "Last updated: ", "Feb 30, 2025 01:00 PM",
        " ago", "<script>", "</script>", '{"@type":"AggregateRating"', "9" * 30,
        "<div class='wi_authornotes'>", "<div class='wi_news'>", "</div>",
        'id="mypostid" value="x"',
    ]
)  # fmt: skip


def _mangle(html: str, at: int, cut: int, noise: list[str]) -> str:
    where = at % max(len(html), 1)
    return html[:where] + "".join(noise) + html[where + cut :]


MANGLED = {
    "at": st.integers(min_value=0, max_value=10**6),
    "cut": st.integers(min_value=0, max_value=300),
    "noise": st.lists(st.one_of(CHUNKS, st.text(max_size=8)), max_size=6),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**MANGLED)
def test_a_mangled_series_page_gives_a_record_or_a_parse_error(
    at: int, cut: int, noise: list[str]
) -> None:
    fiction = _fiction(sh.NORMAL)
    html = _mangle(sh.series_page(fiction), at, cut, noise)
    try:
        ADAPTER.check_page(html, "u")
        novel = _series_novel(fiction, html)
    except (ParseError, RetryableFailure):
        return
    assert novel.site_id.isdigit() and novel.title
    assert novel.rating is None or 0 < novel.rating <= 5


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**MANGLED)
def test_a_mangled_table_of_contents_gives_a_record_or_a_parse_error(
    at: int, cut: int, noise: list[str]
) -> None:
    fiction = _fiction(sh.NORMAL)
    html = _mangle(_answer(fiction), at, cut, noise)
    try:
        ADAPTER.check_page(html, "u")
        novel = _toc_step(fiction, html)
    except (ParseError, RetryableFailure, RefusedURLError):  # a link cut to another host
        return
    ids = [c.site_chapter_id for c in novel.chapters]
    assert all(i.isascii() and i.isdigit() for i in ids) and len(set(ids)) == len(ids)
    assert [c.position for c in novel.chapters] == list(range(1, len(ids) + 1))
    assert all(c.url.startswith(f"{BASE}/read/3001") for c in novel.chapters)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**MANGLED)
def test_a_mangled_chapter_page_gives_a_record_or_a_parse_error(
    at: int, cut: int, noise: list[str]
) -> None:
    fiction = _fiction(sh.NORMAL)
    chapter = fiction.chapters[0]
    html = _mangle(sh.chapter_page(fiction, chapter), at, cut, noise)
    try:
        ADAPTER.check_page(html, "u")
        record = _record(html, chapter)
    except (ParseError, RetryableFailure):
        return
    assert record.content_html is not None and record.word_count is not None
    assert not Selector(text=record.content_html).css("div.wi_authornotes, div.wi_news")


def test_deeply_nested_markup_and_json_are_not_a_crash() -> None:
    fiction = _fiction(sh.NORMAL)
    nested = "[" * 100_000 + "]" * 100_000
    html = sh.series_page(fiction).replace(
        '<script type="application/ld+json">',
        f'<script type="application/ld+json">{nested}</script><script type="application/ld+json">',
        1,
    )
    assert _series_novel(fiction, html).rating == 3.1
    chapter = fiction.chapters[2]
    deep = "<div>" * 5000 + "deep words here" + "</div>" * 5000
    page = sh.chapter_page(fiction, chapter).replace(
        '<div class="chp_raw" id="chp_raw">', f'<div class="chp_raw" id="chp_raw">{deep}'
    )
    assert _record(page, chapter).word_count is not None


@pytest.mark.parametrize("listed", [0, 15])
def test_a_table_of_contents_far_shorter_than_the_series_count_is_retried(listed: int) -> None:
    fiction = sh.fiction(sh.NORMAL)
    assert fiction is not None and len(fiction.chapters) == 23
    series_url = f"http://127.0.0.1:9{fiction.path()}"
    step = ADAPTER.read_listing(
        sh.series_page(fiction),
        series_url,
        ADAPTER.first_fetch(ADAPTER.fiction_ref(series_url, base="http://127.0.0.1:9")),
        None,
    )
    (toc,) = step.follow
    answer = sh.toc_list(fiction, fiction.newest_first()[:listed])
    with pytest.raises(RetryableFailure, match=f"lists {listed} of the 23 chapters"):
        ADAPTER.read_listing(answer, toc.url, toc, step.novel)


def test_inline_markup_inside_a_word_does_not_split_it() -> None:
    fiction = _fiction(sh.NORMAL)
    html = sh.series_page(fiction)
    first_genre, title = fiction.genres[0], fiction.title
    html = html.replace(f">{first_genre}<", f">{first_genre[:2]}<b>{first_genre[2:]}</b><", 1)
    marked = title.replace(title[:3], f"{title[:1]}<i>{title[1:3]}</i>", 1)
    html = html.replace(f'Co.">{title[:20]}', f'Co.">{marked[:27]}', 1)
    assert f"<b>{first_genre[2:]}</b>" in html and marked[:27] in html  # the markup is there
    novel = _series_novel(fiction, html)
    assert novel.tags[0] == first_genre
    assert novel.title == title
