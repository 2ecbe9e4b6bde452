"""export.py without a database: chapter pages as well-formed EPUB XHTML whatever the
stored HTML holds, volume runs, file names, languages and ETags."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from ebooklib import epub
from lxml import etree

import export
from crawler.sites.markup import NOTES_SEPARATOR, clean_html
from export import ChapterPage, Listed

XHTML = "{http://www.w3.org/1999/xhtml}"


class StoredTexts:
    """What export.Texts gives, from a dict (the database is not the point here)."""

    def __init__(self, texts: dict[int, tuple[str | None, str | None]]) -> None:
        self.texts = texts

    def take(self, chapter_id: int) -> tuple[str | None, str | None]:
        return self.texts.pop(chapter_id)


def _listed(chapter_id: int = 1, *, title: str = "One", volume: str | None = None) -> Listed:
    url = f"https://www.royalroad.com/fiction/1/x/chapter/{chapter_id}/c"
    return Listed(chapter_id, chapter_id, title, volume, url, locked=False)


def _page(listed: Listed, content: str | None, notes: str | None = None) -> etree._Element:
    """The page ebooklib writes for this chapter, parsed as XML."""
    book = epub.EpubBook()
    page = ChapterPage(listed, StoredTexts({listed.id: (content, notes)}), site="royalroad")  # type: ignore[arg-type]
    book.add_item(page)
    written = page.get_content()
    assert page.content == b""  # the text is dropped once written
    return etree.fromstring(written)


def _words(element: etree._Element) -> str:
    return " ".join(etree.tostring(element, method="text", encoding="unicode").split())


@pytest.mark.parametrize(
    ("stored", "reads"),
    [
        ("<p>a&nbsp;b</p>", "a\xa0b"),
        ("line<br>break", "linebreak"),  # <br/>: no text of its own
        ("<p>unclosed<p>second", "unclosed second"),
        ("<p>物語 — naïve café</p>", "物語 — naïve café"),
        ("<p>form\x0cfeed</p>", "formfeed"),
        ("<p>1 &lt; 2 &amp; 3 &gt; 2</p>", "1 < 2 & 3 > 2"),
    ],
)
def test_stored_html_becomes_well_formed_xhtml(stored: str, reads: str) -> None:
    page = _page(_listed(), clean_html(stored, base=None))
    text = page.find(f".//{XHTML}div[@class='chapter-text']")
    assert text is not None and _words(text) == " ".join(reads.split())


def test_a_title_with_markup_characters_is_text() -> None:
    page = _page(_listed(title="Fight <at> the Inn & after"), "<p>x</p>")
    assert page.findtext(f"{XHTML}head/{XHTML}title") == "Fight <at> the Inn & after"
    heading = page.find(f".//{XHTML}h2[@class='chapter-title']")
    assert heading is not None and heading.text == "Fight <at> the Inn & after"


def test_obsolete_markup_and_remote_images_become_what_epub_allows() -> None:
    stored = clean_html(
        "<center>c</center><p align='right'>r</p><strike>s</strike>"
        "<p><img src='https://img.example/map.png' alt='the map'></p>"
        "<p><a href='https://x.example/'><img src='https://img.example/b.png'></a></p>"
        "<p><a href='javascript:alert(1)'>vote</a></p>",
        base=None,
    )
    page = _page(_listed(), stored)
    body = etree.tostring(page, encoding="unicode")
    assert "<center" not in body and "<strike" not in body and "align=" not in body
    assert "<img" not in body
    assert 'style="text-align:center"' in body and 'style="text-align:right"' in body
    link = page.find(f".//{XHTML}a[@href='https://img.example/map.png']")
    assert link is not None and link.text == "[image: the map]"
    outer = page.find(f".//{XHTML}a[@href='https://x.example/']")
    assert outer is not None and _words(outer) == "[image]"  # no link inside a link
    assert all(a.get("href") for a in page.iter(f"{XHTML}a"))


def test_each_note_is_a_labelled_box_after_the_text() -> None:
    notes = NOTES_SEPARATOR.join(["before text<p>first</p>", "<p>second</p>"])
    page = _page(_listed(), "<p>story</p>", notes)
    body = page.find(f"{XHTML}body")
    assert body is not None
    classes = [child.get("class") for child in body]
    assert classes == ["chapter-title", "chapter-text", "author-note", "author-note"]
    assert [box[0].text for box in body[2:]] == ["Author's note", "Author's note"]
    assert [(box[0].tail or "").strip() for box in body[2:]] == ["before text", ""]
    assert [_words(box[1]) for box in body[2:]] == ["first", "second"]


def test_a_chapter_without_text_says_so_with_its_link() -> None:
    listed = Listed(3, 3, "", None, "https://www.royalroad.com/c/3", locked=True)
    page = _page(listed, None)
    assert page.findtext(f"{XHTML}head/{XHTML}title") == "Chapter 3"  # untitled
    line = page.find(f".//{XHTML}p[@class='unavailable']")
    assert line is not None
    assert _words(line) == "This chapter is locked on royalroad: read it on the site."
    link = line.find(f"{XHTML}a")
    assert link is not None and link.get("href") == listed.url


def test_consecutive_chapters_of_one_volume_are_one_run() -> None:
    listing = [
        _listed(1, volume=None),
        _listed(2, volume="Book One"),
        _listed(3, volume="Book One"),
        _listed(4, volume="Book Two"),
    ]
    runs = [(volume, [c.id for c in chapters]) for volume, chapters in export._runs(listing)]
    assert runs == [(None, [1]), ("Book One", [2, 3]), ("Book Two", [4])]
    assert list(export._runs([])) == []


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Ünïcode <Tales> & Co", "Ünïcode-Tales-Co.epub"),
        ("../../etc/passwd", "etc-passwd.epub"),
        ('"; rm -rf /', "rm-rf.epub"),
        ("<>", "novel-7.epub"),
        ("x" * 300, "x" * 100 + ".epub"),
    ],
)
def test_download_name_is_safe(title: str, name: str) -> None:
    assert export.download_name(SimpleNamespace(id=7, title=title)) == name  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("language", "tag"),
    [(None, "und"), ("English", "und"), ("en", "en"), ("pt-BR", "pt-BR"), ("", "und")],
)
def test_language_is_a_tag_only_when_the_site_states_one(language: str | None, tag: str) -> None:
    assert export.language_tag(SimpleNamespace(language=language)) == tag  # type: ignore[arg-type]


def test_if_none_match_names_the_version() -> None:
    assert export.names_version('"abc"', "abc")
    assert export.names_version('W/"abc", "def"', "abc")
    assert export.names_version("*", "abc")
    assert not export.names_version('"abd"', "abc")
    assert not export.names_version(None, "abc")
    assert not export.names_version("abc", "abc")  # an ETag is quoted
