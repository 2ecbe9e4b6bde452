"""Every real Royal Road chapter fragment through `parse_chapter`: exact figures, per file.

The fragments (../shared/fixtures/royalroad/content_fragments, see its README) are real
`div.chapter-inner.chapter-content` elements saved from the site. Their prose belongs to its
authors, so they are read from there, never copied here, and these tests skip without them.
A real chapter page declares, in its `<head>`, a random anti-piracy class as
`display: none; speak: never;`; each fragment carries one such span (found by reading them:
the only `span` with a class, used once, whose text sends the reader to the official site).
The tests wrap a fragment in a page with that style, as the site serves it, and check that
the adapter drops that span and nothing else. The source figures are computed here, with
parsel or plain string operations on the fragment, and pinned in EXPECTED.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from parsel import Selector

from crawler.items import ChapterRecord, ChapterRef
from crawler.sites.royalroad import ADAPTER

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "royalroad"
FRAGMENTS = REAL / "content_fragments"
OPENING = '<div class="chapter-inner chapter-content">'
needs_real = pytest.mark.skipif(not FRAGMENTS.is_dir(), reason="shared/fixtures/royalroad absent")

# A word as the adapter defines it (crawler/sites/royalroad.py WORD), restated so that the
# test pins the definition: letters/digits, joined by an apostrophe (' or U+2019) or hyphen.
ADAPTER_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
# Elements that break a line where they start and end: a reader sees a word boundary there.
# Any other element (span, em, strong, b, ...) is inline: "w<span>hen</span>" reads "when".
BREAKS = {"br", "hr", "p", "div", "figure", "table", "tbody", "tr", "td", "th", "li", "ul", "ol"}


@dataclass(frozen=True)
class Figures:
    """What one fragment holds, minus its hidden anti-piracy span."""

    hidden: str | None  # the anti-piracy class (None: the fragment has no such span)
    hidden_text: str | None
    images: tuple[str, ...] = ()  # <img> src, in page order
    table_rows: tuple[int, ...] = ()  # rows of each <table>, in page order
    table_cells: int = 0
    spoilers: tuple[str, ...] = ()  # data-caption of each spoiler block
    figures: int = 0
    paragraphs: int = 0
    links: int = 0
    rules: int = 0  # <hr>
    breaks: int = 0  # <br> outside the hidden span
    em: int = 0
    strong: int = 0
    b: int = 0
    i: int = 0
    styled_spans: int = 0  # <span style=...>
    words: int = 0  # ADAPTER_WORD over the text as a reader sees it: the right count
    spaced_words: int = 0  # whitespace-split tokens with a letter or digit, same text


WORLD_1 = "a-world-without-god-urban-fantasy-light-novel_chapter_00001_1922860.html"
WORLD_32 = "a-world-without-god-urban-fantasy-light-novel_chapter_00032_2377182.html"
YOUNG_GIRL = "a-young-girls-war-between-the-stars-youjo-senkistar-wars_chapter_00035_2307539.html"
CRIMSON = "crimson-eternal-an-immortal-death-mage-litrpg-apocalypse_chapter_00209_1820042.html"
DARK = (
    "dark-resurrection-shadows-of-nekrom-dark-fantasy-isekai-slowburn-time-loop"
    "_chapter_00037_2265107.html"
)
OAKWOOD = "tales-of-oakwood-hall_chapter_00041_1033988.html"
AMAZON = "If you encounter this tale on Amazon, note that it's taken without the author's consent."

EXPECTED: dict[str, Figures] = {
    # An art page: figures, images in spoilers; the hidden span sits inside a styled span
    # inside <b>. Words: all counts agree (64).
    WORLD_1: Figures(
        hidden="cmVjNWU5MjMwY2RiNzQyN2RiZGVlNTg2ODg3OWYyOTYw",
        hidden_text="If you stumble upon this tale on Amazon, it's taken without the author's "
        "consent. Report it.",
        images=tuple(
            f"https://i.imgur.com/{n}"
            for n in (
                "56nd16o.jpeg",
                "5zS9U5L.jpeg",
                "Yy6qtxK.jpeg",
                "lEYnnEL.jpeg",
                "s0LLXHW.jpeg",
                "at28bfe.png",
                "PEt7DUp.png",
                "F9v8Ods.png",
                "jYXeDZw.png",
                "N5pmI20.png",
                "FsIX6zJ.png",
            )
        ),
        spoilers=("Spoiler",) * 6,
        figures=5,
        paragraphs=17,
        breaks=12,
        b=8,
        styled_spans=2,
        words=64,
        spaced_words=64,
    ),
    # Two tables (Shavian letters in the cells); the hidden span is inside a table cell.
    # Words 1058. Text nodes joined with a space would say 1059: the heading
    # "<strong>J<em>olasin </em>Dictionary/Glossary</strong>" would count "J" and "olasin".
    # Whitespace tokens say 1054: the word regex also splits "1.5,", "Dictionary/Glossary",
    # and two Shavian tokens joined by "|" and a middot (4 more).
    WORLD_32: Figures(
        hidden="cmFjZmQxNzQ1ZDU0YzQwMTg5ZThlYWQwZDlmNDU4ODI5",
        hidden_text="Enjoying the story? Show your support by reading it on the official site.",
        table_rows=(9, 15),
        table_cells=120,
        paragraphs=151,
        rules=2,
        breaks=3,
        em=25,
        strong=38,
        styled_spans=38,
        words=1058,
        spaced_words=1054,
    ),
    # Words 6569. Text nodes joined with a space would say 6575: six words are cut by
    # <span> boundaries mid-word ("away w</span><span>hen", "I</span><span>t",
    # "d</span><span>o", "adjust</span><span>ing", twice "T</span><span>he").
    # Whitespace tokens say 6547: 22 tokens are two words joined by an em dash or a slash
    # ("time<em dash>you", "BBY/961", "helmet/suit", ...).
    YOUNG_GIRL: Figures(
        hidden="cjU3YTIwYmNhNTY0NDQ5ZThhN2U2NDE5OGE3MjJjM2U4",
        hidden_text="This novel's true home is a different platform. Support the author by "
        "finding it there.",
        paragraphs=267,
        rules=4,
        breaks=5,
        em=33,
        styled_spans=156,
        words=6569,
        spaced_words=6547,
    ),
    # Words: all counts agree (1477).
    CRIMSON: Figures(
        hidden="cmY2MWU0N2E3NTU5ZTQ5NzE5ZjE1MTQzZTY2NGEzNTZj",
        hidden_text=f"{AMAZON} Report it.",
        paragraphs=51,
        rules=1,
        em=2,
        strong=2,
        styled_spans=2,
        words=1477,
        spaced_words=1477,
    ),
    # Words 1490, as the adapter says. Whitespace tokens say 1484: five tokens are words
    # joined by ellipses ("Ugh...ugh...", "Ah...Ahhh...AHHHHGGGGH!!" is three).
    DARK: Figures(
        hidden="cjZmMDljMTg0NDFiYjRlMDRhYTE5MmQ2NDg5YjMyNmYz",
        hidden_text="If you come across this story on Amazon, it's taken without permission "
        "from the author. Report it.",
        paragraphs=52,
        em=5,
        styled_spans=52,
        words=1490,
        spaced_words=1484,
    ),
    # Words 3078, as the adapter says. Whitespace tokens say 3053: 13 tokens are words
    # joined by ellipses ("but...well") and the regex reads the initials "D.T." (11 times)
    # as two words ("D.T.'s" as three): 25 more. A counting convention, not lost text.
    OAKWOOD: Figures(
        hidden="cjIyNWM5ZjRmMjc0NjRkYzJhNzgyNmUzN2I2ZjVmZjVi",
        hidden_text=f"{AMAZON} Report it.",
        paragraphs=118,
        words=3078,
        spaced_words=3053,
    ),
}

NAMES = sorted(EXPECTED)
# What is counted in content_html and in the fragment: (label, CSS selector).
COUNTED = [
    ("images", "img"),
    ("tables", "table"),
    ("table rows", "tr"),
    ("table cells", "td, th"),
    ("spoilers", "div.spoiler-new, .spoiler"),
    ("figures", "figure"),
    ("paragraphs", "p"),
    ("links", "a"),
    ("rules", "hr"),
    ("breaks", "br"),
    ("em", "em"),
    ("strong", "strong"),
    ("b", "b"),
    ("i", "i"),
    ("styled spans", "span[style]"),
]


def _fragment(name: str) -> str:
    return (FRAGMENTS / name).read_text(encoding="utf-8")


def _page(fragment: str, style: str = "") -> str:
    """The fragment as a chapter page: `style` in the head, as the site declares it."""
    return f"<html><head>{style}</head><body>{fragment}</body></html>"


def _hiding(cls: str | None) -> str:
    return f"<style>.{cls}{{display: none;speak: never;}}</style>" if cls else ""


def _ref(name: str) -> ChapterRef:
    chapter_id = name.removesuffix(".html").rsplit("_", 1)[1]
    return ChapterRef(
        site_chapter_id=chapter_id,
        url=f"https://www.royalroad.com/fiction/1/f/chapter/{chapter_id}/c",
        position=int(name.rsplit("_chapter_", 1)[1][:5]),
        title=f"Chapter of {name[:20]}",
        volume="Volume 1.5",
        published_at=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
    )


def _parse(name: str, style: str | None = None) -> ChapterRecord:
    """The chapter as the site serves it (with its hiding style), unless `style` is given."""
    page = _page(_fragment(name), _hiding(EXPECTED[name].hidden) if style is None else style)
    return ADAPTER.parse_chapter(page, _ref(name))


def _body(html: str) -> Selector:
    return Selector(text=html).css("div.chapter-inner.chapter-content")[0]


def _visible_source(name: str) -> Selector:
    """The fragment's story element, parsed with parsel, minus its hidden elements."""
    body = _body(_fragment(name))
    hidden = EXPECTED[name].hidden
    if hidden:
        for element in body.css(f".{hidden}"):
            element.drop()
    return body


def _content(record: ChapterRecord) -> Selector:
    assert record.content_html is not None
    return Selector(text=f"<div>{record.content_html}</div>").xpath("/html/body/div")[0]


def _as_written(name: str, hidden: str | None) -> str:
    """The fragment's inner markup exactly as the file has it, minus the `hidden` spans.

    String surgery, no parser; void elements spelled as an HTML serializer writes them
    (`<br>`, not `<br/>`).
    """
    inner = _fragment(name).strip().removeprefix(OPENING).removesuffix("</div>").strip()
    if hidden:
        inner, dropped = re.subn(rf'<span class="{hidden}">(?:(?!</?span).)*</span>', "", inner)
        assert dropped == 1
    return inner.replace("/>", ">")


# What the store keeps of the fragment's attributes (crawler/sites/markup.py): no class
# (the random per-paragraph "cn..." ones, the anti-piracy span's, the spoiler's
# data-class) but the spoiler's own,
# no style but a text-align.
DROPPED_ATTRIBUTES = re.compile(r' (?:class="(?!spoiler-new")[^"]*"|data-class="[^"]*")')
STYLE = re.compile(r' style="([^"]*)"')
ALIGN = re.compile(r"text-align:\s*([a-z]+)")


def _as_stored(markup: str) -> str:
    """`markup` with the attributes the sanitizer drops taken out: string surgery again.
    Everything else (text, entities, tags, their order) is the page's, byte for byte."""

    def style(match: re.Match[str]) -> str:
        align = ALIGN.search(match.group(1))
        return f' style="text-align:{align.group(1)}"' if align else ""

    return STYLE.sub(style, DROPPED_ATTRIBUTES.sub("", markup))


def _text_nodes(node: Selector) -> list[str]:
    """All text nodes joined, split on whitespace: the text, whatever the markup."""
    return " ".join(node.css("::text").getall()).split()


def _read_text(node: Selector) -> str:
    """The text as a reader sees it: inline markup joins, line-breaking elements separate."""
    parts: list[str] = []

    def walk(element) -> None:  # an lxml element
        breaks = element.tag in BREAKS
        parts.append(" " if breaks else "")
        parts.append(element.text or "")
        for child in element:
            walk(child)
            parts.append(child.tail or "")
        parts.append(" " if breaks else "")

    walk(node.root)
    return " ".join("".join(parts).split())


def _texts(nodes) -> str:
    return " ".join(" ".join(nodes.css("::text").getall()).split())


# --- the files and their anti-piracy spans -----------------------------------------------


@needs_real
def test_every_fragment_has_its_figures() -> None:
    assert sorted(p.name for p in FRAGMENTS.glob("*.html")) == NAMES


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_the_anti_piracy_span_is_the_only_classed_span(name: str) -> None:
    body = _body(_fragment(name))
    expected = EXPECTED[name]
    spans = body.css("span[class]")
    if expected.hidden is None:
        assert spans == [], "a fragment without an anti-piracy span has no classed span"
        return
    assert [s.attrib["class"] for s in spans] == [expected.hidden]
    assert _texts(spans) == expected.hidden_text
    assert len(body.css(f".{expected.hidden}")) == 1  # used once in the page
    # every other class is the story element's or a paragraph's (each used once) or spoiler
    others = [e.attrib["class"] for e in body.xpath(".//*[not(self::span)][@class]")]
    assert {c for c in others if not c.startswith("cn")} <= {"spoiler-new"}
    paragraph_classes = [c for c in others if c.startswith("cn")]
    assert len(set(paragraph_classes)) == len(paragraph_classes) == expected.paragraphs


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_hidden_span_dropped_and_nothing_else(name: str) -> None:
    expected = EXPECTED[name]
    record = _parse(name)
    assert record.content_html is not None
    if expected.hidden is None:  # no anti-piracy span: the page as it is
        assert record.content_html == _as_stored(_as_written(name, None))
        return
    assert expected.hidden_text is not None
    assert expected.hidden_text in _texts(_body(_fragment(name)))
    assert expected.hidden not in record.content_html
    assert expected.hidden_text not in _texts(_content(record))
    assert record.content_html == _as_stored(_as_written(name, expected.hidden))


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_the_sites_attributes_are_dropped_and_the_text_is_not(name: str) -> None:
    """The random paragraph classes and the editor's styles go; a centred line stays
    centred; the words, and so the word count, are the page's."""
    record = _parse(name)
    content, source = _content(record), _visible_source(name)
    assert content.xpath(".//*[@class]/@class").getall() == ["spoiler-new"] * len(
        EXPECTED[name].spoilers
    )
    assert set(content.xpath(".//*[@style]/@style").getall()) <= {"text-align:center"}
    assert len(content.xpath(".//*[@style]")) == len(source.css("[style*=text-align]"))
    assert not content.xpath(".//@id | .//@data-class")
    assert _text_nodes(content) == _text_nodes(source)


# --- content kept as the page has it ----------------------------------------------------


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_elements_kept(name: str) -> None:
    expected = EXPECTED[name]
    record = _parse(name)
    content, source = _content(record), _visible_source(name)
    figures = {
        "images": len(expected.images),
        "tables": len(expected.table_rows),
        "table rows": sum(expected.table_rows),
        "table cells": expected.table_cells,
        "spoilers": len(expected.spoilers),
        "figures": expected.figures,
        "paragraphs": expected.paragraphs,
        "links": expected.links,
        "rules": expected.rules,
        "breaks": expected.breaks,
        "em": expected.em,
        "strong": expected.strong,
        "b": expected.b,
        "i": expected.i,
        "styled spans": expected.styled_spans,
    }
    counts = {label: (len(content.css(css)), len(source.css(css))) for label, css in COUNTED}
    stored = {label: (n, n) for label, n in figures.items()}
    stored["styled spans"] = (0, expected.styled_spans)  # a span keeps no style
    assert counts == stored
    assert record.content_html is not None
    assert record.content_html.count("<img") == len(expected.images)
    assert record.content_html.count("<table") == len(expected.table_rows)
    assert record.content_html.count("<p") == expected.paragraphs  # no <pre>, <param>
    assert content.css("img::attr(src)").getall() == list(expected.images)
    assert source.css("img::attr(src)").getall() == list(expected.images)
    assert [len(t.css("tr")) for t in content.css("table")] == list(expected.table_rows)
    spoilers = "div.spoiler-new, .spoiler"
    assert content.css(spoilers).xpath("@data-caption").getall() == list(expected.spoilers)
    # what each spoiler, table cell and figure holds, markup and text, is the page's (less
    # the attributes the store drops)
    for css in (spoilers, "td", "figure"):
        assert content.css(css).getall() == [_as_stored(m) for m in source.css(css).getall()]


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_visible_text_kept(name: str) -> None:
    expected = EXPECTED[name]
    content, source = _content(_parse(name)), _visible_source(name)
    assert _text_nodes(content) == _text_nodes(source)
    assert _read_text(content) == _read_text(source)
    lost = len(_text_nodes(_body(_fragment(name)))) - len(_text_nodes(content))
    assert lost == len((expected.hidden_text or "").split())  # the hidden text, no more


# --- word count, hash, notes, the ref ----------------------------------------------------


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_word_count_independently(name: str) -> None:
    text = _read_text(_visible_source(name))
    spaced = [t for t in text.split() if any(ch.isalnum() for ch in t)]
    assert (len(ADAPTER_WORD.findall(text)), len(spaced)) == (
        EXPECTED[name].words,
        EXPECTED[name].spaced_words,
    )


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_word_count(name: str) -> None:
    """Words the markup cuts in two ("J<em>olasin", "T<span>he") are one word, once; a
    <br/> between words separates them."""
    assert _parse(name).word_count == EXPECTED[name].words


@needs_real
@pytest.mark.parametrize("name", NAMES)
def test_hash_notes_and_ref_pass_through(name: str) -> None:
    record, ref = _parse(name), _ref(name)
    assert record.content_html is not None
    assert record.content_hash == hashlib.sha256(record.content_html.encode("utf-8")).hexdigest()
    assert record.author_notes_html is None  # the fragments have no author notes
    assert (record.site_chapter_id, record.url, record.position) == (
        ref.site_chapter_id,
        ref.url,
        ref.position,
    )
    assert (record.title, record.volume, record.published_at) == (
        ref.title,
        ref.volume,
        ref.published_at,
    )
    assert record.locked is False


# --- the obfuscated paragraph classes hide nothing by themselves ------------------------


def _paragraph_class(name: str) -> str:
    return _body(_fragment(name)).css("p[class]")[0].attrib["class"]


STYLES = {
    "no style": lambda name: "",
    "another class hidden": lambda name: _hiding("not-on-this-page"),
    "a class prefix hidden": lambda name: _hiding("cn") + _hiding(_paragraph_class(name)[:6]),
    "a paragraph class styled": lambda name: (
        f"<style>.{_paragraph_class(name)}{{display: block; font-style: italic}}</style>"
    ),
}


@needs_real
@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("name", NAMES)
def test_paragraph_classes_hide_nothing_unless_a_style_hides_them(name: str, style: str) -> None:
    record = _parse(name, STYLES[style](name))
    # the whole fragment, span too (its class gone with the others: hidden by no style)
    assert record.content_html == _as_stored(_as_written(name, None))
    assert _text_nodes(_content(record)) == _text_nodes(_body(_fragment(name)))
    assert len(_content(record).css("p")) == EXPECTED[name].paragraphs
