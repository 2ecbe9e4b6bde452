"""The Royal Road adapter on odd and hostile pages: null and a warning, never a crash.

A parser exception other than ParseError ends a job as an internal error; on whatever a
site (or someone posing as one) serves, the adapter reads what it can, says what it could
not, and raises ParseError only for a page that is no fiction page at all.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.sites.royalroad import ADAPTER
from errors import ParseError, RefusedURLError
from tests.fixture_site import content, pages

BASE = "http://fixture.test"


def _page(fiction_id: int, **changes: object) -> tuple[str, str]:
    fiction = content.fiction(fiction_id)
    assert fiction is not None
    fiction = replace(fiction, **changes)  # type: ignore[arg-type]
    return pages.fiction_page(fiction), f"{BASE}/fiction/{fiction_id}/{fiction.slug}"


def _script_entries(html: str) -> list[dict[str, object]]:
    start = html.index("window.chapters = ") + len("window.chapters = ")
    entries, _ = json.JSONDecoder().raw_decode(html, start)
    return list(entries)


def _with_entries(html: str, entries: list[dict[str, object]]) -> str:
    start = html.index("window.chapters = ") + len("window.chapters = ")
    _, end = json.JSONDecoder().raw_decode(html, start)
    return html[:start] + json.dumps(entries) + html[end:]


def test_a_title_with_brackets_and_a_semicolon_keeps_the_whole_listing() -> None:
    fiction = content.fiction(1006)
    assert fiction is not None
    titled = replace(fiction.chapters[0], title="Arc 1 [Part 2]; the return")
    html, url = _page(1006, chapters=(titled, *fiction.chapters[1:]))
    novel = ADAPTER.parse_fiction(html, url)
    assert novel.chapters[0].title == "Arc 1 [Part 2]; the return"
    assert [c.locked for c in novel.chapters] == [False] * 8 + [True, True]
    assert novel.parse_warnings == ()


def test_an_unreadable_inline_listing_falls_back_to_the_table_and_says_so() -> None:
    html, url = _page(1002)
    html = html.replace("window.chapters = [", "window.chapters = [{broken", 1)
    novel = ADAPTER.parse_fiction(html, url)
    assert len(novel.chapters) == 5
    assert "window.chapters on the page is not a readable list: ignored" in novel.parse_warnings


def test_a_chapter_listed_twice_is_kept_once() -> None:
    html, url = _page(1002)
    entries = _script_entries(html)
    novel = ADAPTER.parse_fiction(_with_entries(html, [*entries, entries[1]]), url)
    assert [c.site_chapter_id for c in novel.chapters] == [str(e["id"]) for e in entries]
    assert novel.parse_warnings == ("1 chapters listed twice: the first listing kept",)


OFF_SITE_LINKS = [
    ("http://169.254.169.254/fiction/1/x/chapter/9/y", None),
    ("https://elsewhere.invalid/fiction/1002/x/chapter/9/y", None),
    ("http://fixture.test:6379/fiction/1002/x/chapter/9/y", None),  # the host, another port
    (
        "//elsewhere.invalid/fiction/1002/x/chapter/9/y",
        "http://elsewhere.invalid/fiction/1002/x/chapter/9/y",
    ),
    ("javascript:alert(1)//chapter/9", None),
    ("file:///etc/passwd#/chapter/9", None),
    ("http://[abc/chapter/9", None),
]


@pytest.mark.parametrize(("link", "named"), OFF_SITE_LINKS)
def test_a_chapter_link_off_the_site_ends_the_listing_naming_it(
    link: str, named: str | None
) -> None:
    """A listed chapter the crawl will not fetch: the novel cannot be whole, so no record."""
    html, url = _page(1002)
    entries = _script_entries(html)
    entries[1] = {**entries[1], "url": link}
    with pytest.raises(RefusedURLError) as refused:
        ADAPTER.parse_fiction(_with_entries(html, entries), url)
    assert (refused.value.url, refused.value.reason) == (named or link, "not on the fiction's site")
    assert str(refused.value).startswith(f"refused {(named or link)[:18]}")
    assert refused.value.retryable is False


@pytest.mark.parametrize(("link", "named"), OFF_SITE_LINKS)
def test_a_chapter_row_off_the_site_ends_the_listing_naming_it(
    link: str, named: str | None
) -> None:
    html, url = _page(1002)
    html = html.replace("window.chapters = [", "window.unused = [", 1)  # the table alone
    row = html.index('data-url="', html.index('class="chapter-row')) + len('data-url="')
    html = html[:row] + link.replace('"', "&quot;") + html[html.index('"', row) :]
    with pytest.raises(RefusedURLError, match="not on the fiction's site"):
        ADAPTER.parse_fiction(html, url)


@pytest.mark.parametrize(
    "link",
    [
        "https://www.royalroad.com/fiction/1002/x/chapter/9/y",
        "http://royalroad.com/fiction/1002/x/chapter/9/y",
        "https://www.royalroad.com:8443/fiction/1002/x/chapter/9/y",
    ],
)
def test_a_chapter_link_to_the_real_host_is_rebased_on_the_page_it_came_from(link: str) -> None:
    html, url = _page(1002)
    entries = _script_entries(html)
    entries[1] = {**entries[1], "url": link}
    novel = ADAPTER.parse_fiction(_with_entries(html, entries), url)
    assert novel.chapters[1].url == f"{BASE}/fiction/1002/x/chapter/9/y"
    assert all(c.url.startswith(f"{BASE}/fiction/1002/") for c in novel.chapters)
    assert len(novel.chapters) == 5 and novel.parse_warnings == ()


@pytest.mark.parametrize(
    "date", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2024-02-30T00:00:00Z"]
)
def test_a_date_no_calendar_holds_is_null(date: str) -> None:
    html, url = _page(1002)
    entries = _script_entries(html)
    entries[2] = {**entries[2], "date": date}
    novel = ADAPTER.parse_fiction(_with_entries(html, entries), url)
    assert novel.chapters[2].published_at is None
    assert novel.parse_warnings == ("1 chapters published_at not read; stored as null",)


def test_deeply_nested_json_is_not_read_and_not_a_crash() -> None:
    html, url = _page(1002)
    nested = "[" * 100_000 + "]" * 100_000
    html = html.replace(
        '<script type="application/ld+json">',
        f'<script type="application/ld+json">{nested}</script><script type="application/ld+json">',
        1,
    )
    html = html.replace("window.volumes = [", f"window.volumes = {nested}; window.unused = [", 1)
    novel = ADAPTER.parse_fiction(html, url)
    assert novel.author is not None and len(novel.chapters) == 5


def test_a_volume_without_a_title_is_not_a_volume_titled_nothing() -> None:
    html, url = _page(1001)
    fiction = content.fiction(1001)
    assert fiction is not None
    first_volume = fiction.volumes[0]
    html = html.replace(f'"title": "{first_volume[1]}"', '"title": 7', 1)
    novel = ADAPTER.parse_fiction(html, url)
    assert [v.site_volume_id for v in novel.volumes] == [str(v[0]) for v in fiction.volumes[1:]]
    in_first = sum(c.volume_id == first_volume[0] for c in fiction.chapters)
    assert all(c.volume != "" for c in novel.chapters)
    assert novel.parse_warnings == (
        "a volume without an id or title in window.volumes was skipped",
        f"{in_first} chapters volume not read (an id window.volumes does not list); stored as null",
    )


def test_a_cover_whose_name_merely_contains_the_placeholder_word_is_a_cover() -> None:
    html, url = _page(1002, cover_path="/covers/1002-nocover-no-more.jpg")
    assert ADAPTER.parse_fiction(html, url).cover_url == f"{BASE}/covers/1002-nocover-no-more.jpg"


# --- whatever the page: ParseError or a record -----------------------------------------

# Page text is decoded bytes (no lone surrogates there); JSON escapes in it can still make
# them, and NULs, which the store must clean.
CHUNKS = st.sampled_from(
    [
        "]", "[", "];", "{", "}", '"', "'", ":", ",", "null", "0", "-1", "1e309", "NaN",
        "\x00", "\\ud800", "\\u0000", "<", ">", "</script>", "<script>", "&#0;", "http://[", "//x",
        "9" * 30, "window.chapters = ", "window.volumes = ", '"isUnlocked": false',
    ]
)  # fmt: skip


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    at=st.integers(min_value=0, max_value=10**6),
    cut=st.integers(min_value=0, max_value=200),
    noise=st.lists(st.one_of(CHUNKS, st.text(max_size=8)), max_size=6),
)
def test_a_mangled_fiction_page_gives_a_record_or_a_parse_error(
    at: int, cut: int, noise: list[str]
) -> None:
    html, url = _page(1006)
    where = at % len(html)
    mangled = html[:where] + "".join(noise) + html[where + cut :]
    try:
        novel = ADAPTER.parse_fiction(mangled, url)
    except ParseError:
        return
    assert all(c.site_chapter_id.isdigit() for c in novel.chapters)
    assert len({c.site_chapter_id for c in novel.chapters}) == len(novel.chapters)
    assert novel.word_count is None or 0 <= novel.word_count < 2**31
    assert novel.rating is None or 0 < novel.rating <= 5


def test_an_attribute_name_with_a_control_character_is_not_a_crash() -> None:
    html, url = _page(1002)
    start, end = html.index("window.chapters ="), html.index("window.volumes =")
    html = (html[:start] + html[end:]).replace('<tr style="cursor: pointer"', '<tr \x1fx="1"', 1)
    novel = ADAPTER.parse_fiction(html, url)
    assert len(novel.chapters) == 5


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("0024", "24"), (24, "24"), ("\u0662\u0664", None), ("\uff12\uff14", None), (True, None)],
)
def test_a_script_chapter_id_is_canonical_ascii_or_read_from_its_link(
    raw: object, stored: str | None
) -> None:
    """An id in other digits is no id: the entry's link gives it in ASCII, or it is skipped."""
    html, url = _page(1002)
    entries = _script_entries(html)
    entries[0] = {**entries[0], "id": raw, "url": "/fiction/1002/x/chapter/0031/c"}
    entries[1] = {**entries[1], "id": None, "url": "/fiction/1002/x/chapter/\u0663\u0662/c"}
    novel = ADAPTER.parse_fiction(_with_entries(html, entries), url)
    by_url = {c.url.rsplit("/chapter/", 1)[1]: c.site_chapter_id for c in novel.chapters}
    assert by_url["0031/c"] == (stored or "31")
    # the second entry has neither an id nor one in ASCII digits in its link: skipped
    assert len(novel.chapters) == 4
    assert novel.parse_warnings == ("1 chapters listed without a chapter id: skipped",)
