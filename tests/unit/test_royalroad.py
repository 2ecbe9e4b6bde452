"""The Royal Road adapter against the fixture site's pages and against real saved pages."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from crawler.items import ChapterRef
from crawler.sites.royalroad import ADAPTER
from errors import InvalidURLError, ParseError
from tests.fixture_site import content, pages

BASE = "http://fixture.test"


def _novel(fiction_id: int = 1001):
    fiction = content.fiction(fiction_id)
    assert fiction is not None
    url = f"{BASE}/fiction/{fiction_id}/{fiction.slug}"
    return fiction, ADAPTER.parse_fiction(pages.fiction_page(fiction), url)


def test_fiction_page_metadata() -> None:
    fiction, novel = _novel()
    assert (novel.site, novel.site_id) == ("royalroad", "1001")
    assert novel.title == fiction.title
    assert novel.author == fiction.author
    assert novel.tags == fiction.tags
    assert novel.status == fiction.status
    assert novel.rating == pytest.approx(fiction.rating)
    assert novel.word_count == fiction.word_count
    assert novel.content_warnings == fiction.warnings
    assert novel.cover_url == BASE + fiction.cover_path
    assert novel.description == fiction.description_html
    assert [(v.site_volume_id, v.title, v.order) for v in novel.volumes] == [
        (str(i), t, o) for i, t, o in fiction.volumes
    ]
    assert novel.parse_warnings == ()  # every field was read


def test_chapter_list_in_reading_order_with_volumes_and_dates() -> None:
    fiction, novel = _novel()
    assert len(novel.chapters) == 48
    for ref, expected in zip(novel.chapters, fiction.chapters, strict=True):
        assert ref.position == expected.position
        assert ref.site_chapter_id == str(expected.chapter_id)
        assert ref.title == expected.title
        assert ref.volume == expected.volume_title
        assert ref.published_at == expected.published_at
        assert ref.url == f"{BASE}{pages.chapter_url(fiction, expected)}"
    # a re-posted chapter is dated before the first one: published = earliest date
    assert novel.published_at == min(c.published_at for c in fiction.chapters)
    assert novel.published_at != fiction.chapters[0].published_at


def test_fiction_without_volumes() -> None:
    _, novel = _novel(1002)
    assert novel.volumes == ()
    assert all(ref.volume is None for ref in novel.chapters)


def _listing(chapters: tuple[ChapterRef, ...]) -> list[tuple[object, ...]]:
    return [
        (c.site_chapter_id, c.url, c.position, c.title, c.volume, c.published_at, c.locked)
        for c in chapters
    ]


def test_the_chapter_table_gives_the_same_listing_as_the_inline_script() -> None:
    fiction, novel = _novel()
    html = pages.fiction_page(fiction)
    start, end = html.index("window.chapters ="), html.index("window.volumes =")
    from_table = ADAPTER.parse_fiction(html[:start] + html[end:], novel.url)
    assert _listing(from_table.chapters) == _listing(novel.chapters)
    assert from_table.parse_warnings == ()


def test_chapter_text_without_hidden_lines_and_with_notes_apart() -> None:
    fiction, novel = _novel()
    checked_notes = 0
    for ref, expected in zip(novel.chapters, fiction.chapters, strict=True):
        record = ADAPTER.parse_chapter(pages.chapter_page(fiction, expected), ref)
        assert expected.hidden_text not in record.content_html
        assert pages.hidden_class(expected) not in record.content_html
        assert all(p in record.content_html for p in expected.paragraphs)
        notes = [n for n in (expected.notes_before, expected.notes_after) if n]
        for note in notes:
            assert note in (record.author_notes_html or "")
            assert note not in record.content_html
        checked_notes += len(notes)
        assert record.author_notes_html is None if not notes else True
        words = [w for p in expected.paragraphs for w in p.split()]
        assert record.word_count == sum(any(ch.isalnum() for ch in w) for w in words)
        assert record.content_hash == hashlib.sha256(record.content_html.encode()).hexdigest()
        assert (record.position, record.volume) == (ref.position, ref.volume)
    assert checked_notes > 5


def test_pages_without_structure_are_parse_errors() -> None:
    with pytest.raises(ParseError, match="not a Royal Road fiction page"):
        ADAPTER.parse_fiction(pages.maintenance_page(), f"{BASE}/fiction/1")
    fiction, novel = _novel(1002)
    page = pages.chapter_page(fiction, fiction.chapters[0], with_body=False)
    with pytest.raises(ParseError, match="no chapter text"):
        ADAPTER.parse_chapter(page, novel.chapters[0])


@pytest.mark.parametrize(
    ("url", "site_id"),
    [
        ("https://www.royalroad.com/fiction/12345", "12345"),
        ("https://www.royalroad.com/fiction/12345/some-slug?x=1#top", "12345"),
        ("https://royalroad.com/fiction/12345/s/chapter/999/c-slug", "12345"),
    ],
)
def test_fiction_urls_normalize(url: str, site_id: str) -> None:
    ref = ADAPTER.fiction_ref(url, base="https://www.royalroad.com")
    assert (ref.site_id, ref.url) == (site_id, f"https://www.royalroad.com/fiction/{site_id}")


@pytest.mark.parametrize(
    "url",
    [
        "https://www.royalroad.com/fiction/chapter/999",
        "https://www.royalroad.com/profile/1",
        "https://www.royalroad.com/",
        "https://www.royalroad.com/fiction/abc",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidURLError, match="not a Royal Road fiction URL"):
        ADAPTER.fiction_ref(url, base="https://www.royalroad.com")


# --- fields the page states, or null with a warning ------------------------------------


def _page_of(fiction_id: int, **changes: object) -> tuple[str, str]:
    fiction = content.fiction(fiction_id)
    assert fiction is not None
    fiction = replace(fiction, **changes)  # type: ignore[arg-type]
    return pages.fiction_page(fiction), f"{BASE}/fiction/{fiction_id}/{fiction.slug}"


# The real page's popover (a 160-chapter fiction): every digit of it joined gave
# 2,845,275,782,406; the story's length is the count "calculated from".
REAL_POPOVER = (
    "This story would be 2,845 pages long as a published paperback book. This is an estimate"
    " based on an average of 275 words per page, calculated from 782,406 words."
)


@pytest.mark.parametrize(
    ("popover", "words"),
    [
        (REAL_POPOVER, 782_406),
        (REAL_POPOVER.replace("782,406", "782406"), 782_406),
        (content.paperback_popover(950), 950),
        (content.paperback_popover(1_234_567, comma=False), 1_234_567),
        ("Calculated from 12,001 words.", 12_001),
        ("This story would be 3 pages long as a published paperback book.", None),
        ("782,406", None),  # a bare figure: pages or words? not read
        ("About 2,845 pages (between 700,000 words and 800,000 words).", None),
        ("calculated from 9,999,999,999 words.", None),  # beyond what the store holds
        ("calculated from 1.234 words.", None),
        ("calculated from ١٢٣ words.", None),  # other scripts' digits are not ours to read
        ("", None),
        (None, None),  # no popover at all
    ],
)
def test_word_count_is_the_popover_s_word_figure_or_null(
    popover: str | None, words: int | None
) -> None:
    html, url = _page_of(1001, story_length=popover)
    novel = ADAPTER.parse_fiction(html, url)
    assert novel.word_count == words
    warned = [w for w in novel.parse_warnings if w.startswith("word_count not read")]
    assert len(warned) == (words is None)
    assert all(w.endswith("stored as null") for w in warned)


@pytest.mark.parametrize(
    "status", ["completed", "ongoing", "hiatus", "stub", "dropped", "inactive"]
)
def test_every_status_label_the_site_shows(status: str) -> None:
    novel = ADAPTER.parse_fiction(*_page_of(1002, status=status))
    assert novel.status == status
    assert novel.parse_warnings == ()


def test_no_status_label_is_null_with_a_warning_not_the_chapter_count_label() -> None:
    novel = ADAPTER.parse_fiction(*_page_of(1002, status=None))
    assert novel.status is None  # the page still has a "5 Chapters" span.label
    assert novel.parse_warnings == (
        "status not read: no status label (COMPLETED, ONGOING, HIATUS, ...) on the page;"
        " stored as null",
    )


@pytest.mark.parametrize(
    ("meta", "rating", "warned"),
    [
        ('content="4.898785"', 4.898785, False),
        ('content="5"', 5.0, False),
        ('content="0"', None, False),  # not rated yet: no rating rather than 0
        ('content="7.5"', None, True),  # beyond the site's 5-star scale
        ('content="NaN"', None, True),
        ('content="four"', None, True),
    ],
)
def test_rating_in_the_site_s_scale_or_null(meta: str, rating: float | None, warned: bool) -> None:
    html, url = _page_of(1002, rating=1.0)
    html = html.replace('content="1.0"', meta)
    novel = ADAPTER.parse_fiction(html, url)
    assert novel.rating == (pytest.approx(rating) if rating is not None else None)
    assert any(w.startswith("rating not read") for w in novel.parse_warnings) == warned


def test_a_page_without_rating_status_or_word_count_gives_nulls_and_warnings() -> None:
    fiction = content.fiction(1005)
    assert fiction is not None
    novel = ADAPTER.parse_fiction(pages.fiction_page(fiction), f"{BASE}/fiction/1005/x")
    assert (novel.status, novel.rating, novel.word_count) == (None, None, None)
    assert [w.split(" not read")[0] for w in novel.parse_warnings] == [
        "status",
        "word_count",
        "rating",
    ]
    assert novel.title == fiction.title and len(novel.chapters) == 3  # the rest is read


def test_the_no_cover_placeholder_is_no_cover() -> None:
    html, url = _page_of(1002, cover_path="/dist/img/nocover-new-min.png")
    novel = ADAPTER.parse_fiction(html, url)
    assert novel.cover_url is None
    assert novel.parse_warnings == ()


def test_a_warning_in_the_author_s_description_is_not_a_content_warning() -> None:
    description = "<p><strong>Warning</strong> slow start</p><ul><li>not a site warning</li></ul>"
    novel = ADAPTER.parse_fiction(*_page_of(1002, description_html=description))
    assert novel.content_warnings == ()
    assert novel.description == description


def test_chapters_the_site_lists_but_does_not_serve_are_locked() -> None:
    fiction = content.fiction(1006)
    assert fiction is not None
    novel = ADAPTER.parse_fiction(pages.fiction_page(fiction), f"{BASE}/fiction/1006/x")
    assert [c.locked for c in novel.chapters] == [False] * 8 + [True, True]
    for ref, expected in zip(novel.chapters, fiction.chapters, strict=True):
        assert (ref.title, ref.published_at, ref.volume) == (
            expected.title,
            expected.published_at,
            expected.volume_title,
        )
    assert novel.parse_warnings == ()


def test_one_chapter_no_volumes_and_a_count_without_separators() -> None:
    fiction = content.fiction(1007)
    assert fiction is not None and fiction.story_length is not None
    assert f"{fiction.word_count} words" in fiction.story_length
    novel = ADAPTER.parse_fiction(pages.fiction_page(fiction), f"{BASE}/fiction/1007/x")
    assert novel.word_count == fiction.word_count
    assert novel.volumes == () and len(novel.chapters) == 1
    assert novel.chapters[0].volume is None
    assert novel.published_at == fiction.chapters[0].published_at


def test_broken_listing_entries_are_counted_in_the_warnings() -> None:
    fiction, novel = _novel(1002)
    html = pages.fiction_page(fiction)
    first = str(fiction.chapters[0].chapter_id)
    html = html.replace(f'"id": {first}, "volumeId": null', f'"id": {first}, "volumeId": 77')
    second = fiction.chapters[1].published_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    html = html.replace(f'"date": "{second}"', '"date": "someday"')
    broken = ADAPTER.parse_fiction(html, novel.url)
    assert broken.chapters[0].volume is None
    assert broken.chapters[1].published_at is None
    assert broken.parse_warnings == (
        "1 chapters published_at not read; stored as null",
        "1 chapters volume not read (an id window.volumes does not list); stored as null",
    )


@pytest.mark.parametrize(
    ("url", "site_id"),
    [
        ("https://www.royalroad.com/fiction/024", "24"),
        ("https://www.royalroad.com/fiction/0024/slug", "24"),
    ],
)
def test_leading_zeros_name_the_same_fiction(url: str, site_id: str) -> None:
    ref = ADAPTER.fiction_ref(url, base="https://www.royalroad.com")
    assert (ref.site_id, ref.url) == (site_id, f"https://www.royalroad.com/fiction/{site_id}")


@pytest.mark.parametrize(
    "url",
    ["https://www.royalroad.com/fiction/١٢", "https://www.royalroad.com/fiction/１２"],  # noqa: RUF001
)
def test_other_scripts_digits_are_no_fiction_id(url: str) -> None:
    with pytest.raises(InvalidURLError):
        ADAPTER.fiction_ref(url, base="https://www.royalroad.com")
