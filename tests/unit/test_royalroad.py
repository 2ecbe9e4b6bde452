"""The Royal Road adapter against the fixture site's pages and against real saved pages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crawler.items import ChapterRef
from crawler.sites.royalroad import ADAPTER
from errors import InvalidURLError, ParseError
from tests.fixture_site import content, pages

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "royalroad"
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
    assert novel.warnings == fiction.warnings
    assert novel.cover_url == BASE + fiction.cover_path
    assert novel.description is not None and "<p>" in novel.description
    assert [(v.site_volume_id, v.title, v.order) for v in novel.volumes] == [
        (str(i), t, o) for i, t, o in fiction.volumes
    ]


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


def test_chapter_list_falls_back_to_the_inline_script() -> None:
    fiction, novel = _novel()
    html = pages.fiction_page(fiction)
    start, end = html.index('<table class="table no-border"'), html.index("</table>") + 8
    scripted = ADAPTER.parse_fiction(html[:start] + html[end:], novel.url)
    assert [(c.site_chapter_id, c.title, c.volume) for c in scripted.chapters] == [
        (c.site_chapter_id, c.title, c.volume) for c in novel.chapters
    ]


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


# --- real pages saved from the site (skipped where shared/ is absent) -------------------

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="shared/fixtures/royalroad absent")


@needs_real
def test_real_fiction_page() -> None:
    html = (REAL / "fiction_117255_rend.html").read_text()
    novel = ADAPTER.parse_fiction(html, "https://www.royalroad.com/fiction/117255/rend")
    assert (novel.title, novel.author, novel.site_id) == ("REND", "Temple", "117255")
    assert novel.rating == pytest.approx(4.898785)
    assert novel.cover_url and novel.cover_url.startswith("https://www.royalroadcdn.com/")
    assert novel.description and "Erind Hartwell" in novel.description
    assert len(novel.chapters) == 12
    first = novel.chapters[0]
    assert (first.site_chapter_id, first.title, first.position) == (
        "2291798",
        "1.1 Crappy Monday",
        1,
    )
    assert first.published_at is not None and first.published_at.isoformat().startswith(
        "2025-05-20T00:55:33"
    )
    assert len({c.site_chapter_id for c in novel.chapters}) == 12
    assert novel.published_at == first.published_at


def _real_chapter(name: str, hidden: str | None = None) -> str:
    fragment = (REAL / "content_fragments" / name).read_text()
    style = f"<style>.{hidden}{{display: none;speak: never;}}</style>" if hidden else ""
    return f"<html><head>{style}</head><body>{fragment}</body></html>"


@needs_real
def test_real_chapter_hidden_span_removed() -> None:
    name = "a-world-without-god-urban-fantasy-light-novel_chapter_00001_1922860.html"
    hidden = "cmVjNWU5MjMwY2RiNzQyN2RiZGVlNTg2ODg3OWYyOTYw"
    ref = ChapterRef("1922860", "https://www.royalroad.com/x/chapter/1922860/y", 1, "Art")
    record = ADAPTER.parse_chapter(_real_chapter(name, hidden), ref)
    assert "taken without the author's consent" not in record.content_html
    assert hidden not in record.content_html
    assert "Character Designs" in record.content_html
    assert record.content_html.count("<img") >= 10  # images and spoilers kept


@needs_real
@pytest.mark.parametrize(
    "path", sorted(REAL.glob("content_fragments/*.html")) if REAL.is_dir() else []
)
def test_every_real_chapter_fragment_parses(path: Path) -> None:
    ref = ChapterRef("1", "https://www.royalroad.com/x/chapter/1/y", 1, "t")
    record = ADAPTER.parse_chapter(_real_chapter(path.name), ref)
    assert record.word_count > 20
    assert record.content_html.startswith("<")
