"""The AO3 adapter on real pages saved from the site (shared/fixtures/ao3).

Skipped where ../shared/fixtures is absent (a user's clone); CI has it. The 2026 pages
are whole pages; the others (~2021) are bodies from `div#outer`, all of them work or
chapter pages (README: works 692, 310586, 68481, 23477578, 22989676, 29253276):

  where.html / hogwarts.html  work 692, chapters 1 and 2 (of "2/?")
  open1.html / open2.html     work 310586, chapters 1 and 2 (2/2; end notes on chapter 2)
  drive.html, notes.html      one-chapter works 68481 and 23477578 (a gift line, no notes)
  multi.html                  chapter 1 of work 29253276 (two creators, chapter notes)
  quotes.html                 chapter 1 of 71 of work 22989676

Every figure is checked against the page read another way where one exists: tags and
stats by regex over the raw HTML, chapter text through lxml directly, chapter ids
against the page's chapter menu, word counts against AO3's own "Words:" figure. The
authors' prose is not copied here: texts are pinned by length, paragraph count and hash.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from crawler.items import ChapterRef, NovelRecord
from crawler.sites.ao3 import ADAPTER, NOTES_SEPARATOR
from crawler.sites.base import Fetch, ListingStep
from errors import ParseError

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ao3"
SITE = "https://archiveofourown.org"

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="shared/fixtures/ao3 absent")

NO_SUMMARY = "description not read: the work page has no summary; stored as null"


@dataclass(frozen=True)
class Chapter:
    """A chapter block of a page: its id, words, <p> count, length, hash; notes parts."""

    chapter_id: str
    words: int
    paragraphs: int
    length: int
    hash_prefix: str
    note_parts: int = 0


@dataclass(frozen=True)
class Page:
    file: str
    url: str
    site_id: str
    title: str
    author: str
    rating: str
    warnings: tuple[str, ...]
    categories: tuple[str, ...]
    tag_counts: tuple[int, int, int, int]  # fandoms, relationships, characters, freeforms
    published: datetime
    updated: datetime | None
    words: int
    status: str
    planned: int | None
    description_paragraphs: int  # 0: no summary on this page
    note_parts: int  # work notes the page holds (head, end)
    follow: str  # the next listing fetch's URL
    chapters: tuple[Chapter, ...]
    warnings_said: tuple[str, ...] = ()


def day(year: int, month: int, date: int) -> datetime:
    return datetime(year, month, date, tzinfo=UTC)


PAGES = [
    Page(
        "2026_work_35961484.html", f"{SITE}/works/35961484/chapters/89650822", "35961484",
        "Thank God You Introduced Me to Your Sister", "AmberZ10", "Teen And Up Audiences",
        ("No Archive Warnings Apply",), ("F/F",), (1, 2, 7, 10), day(2021, 12, 26),
        day(2021, 12, 27), 6095, "completed", 2, 6, 0, f"{SITE}/works/35961484/navigate",
        (Chapter("89650822", 3280, 141, 25749, "9e691e7bc35edf74"),),
    ),
    Page(
        "2026_chapter_89729749.html", f"{SITE}/works/35961484/chapters/89729749", "35961484",
        "Thank God You Introduced Me to Your Sister", "AmberZ10", "Teen And Up Audiences",
        ("No Archive Warnings Apply",), ("F/F",), (1, 2, 7, 10), day(2021, 12, 26),
        day(2021, 12, 27), 6095, "completed", 2, 0, 0, f"{SITE}/works/35961484/navigate",
        (Chapter("89729749", 2815, 105, 16530, "8bf0738e40dde10b", note_parts=1),),
        (NO_SUMMARY,),  # the summary is on chapter 1's page only
    ),
    Page(
        "2026_work_57038482.html", f"{SITE}/works/57038482", "57038482", "Lleno de zafiros",
        "Anonymous", "General Audiences", ("No Archive Warnings Apply",), ("F/F",),
        (1, 1, 2, 10), day(2024, 7, 8), None, 11419, "completed", 1, 7, 2,
        f"{SITE}/works/57038482/navigate",
        (Chapter("", 11419, 629, 67931, "abc04b4c3932c71e"),),
    ),
    Page(
        "2026_work_92356871_view_full_work.html", f"{SITE}/works/92356871?view_full_work=true",
        "92356871", "Vampiric Concerto", "ashenthea", "Teen And Up Audiences",
        ("Graphic Depictions Of Violence", "Major Character Death"), ("F/F",), (5, 1, 10, 2),
        day(2026, 9, 10), day(2026, 9, 10), 2116, "completed", 3, 1, 1,
        f"{SITE}/works/92356871/navigate",
        (
            Chapter("246151286", 968, 35, 6334, "b8d08c3ae097eda0"),
            Chapter("246151581", 772, 24, 4825, "b4b3bd1c0f7d3779"),
            Chapter("246152346", 376, 23, 2180, "13140a347c173e59"),
        ),
    ),
    Page(
        "drive.html", f"{SITE}/works/68481", "68481", "I Drive Myself Crazy", "Sidra", "Mature",
        ("No Archive Warnings Apply",), ("M/M",), (1, 1, 0, 1), day(2009, 12, 20), None, 4515,
        "completed", 1, 1, 0, f"{SITE}/works/68481/navigate",
        (Chapter("", 4515, 164, 25540, "4feec656012474ce"),),
    ),
    Page(
        "notes.html", f"{SITE}/works/23477578", "23477578", "He is ours", "SWModdy", "Mature",
        ("No Archive Warnings Apply",), ("M/M",), (1, 2, 5, 11), day(2020, 4, 4), None, 3006,
        "completed", 1, 1, 0, f"{SITE}/works/23477578/navigate",
        (Chapter("", 3001, 130, 17685, "a32abf58d454cd01"),),
    ),
    Page(
        "where.html", f"{SITE}/works/692/chapters/803", "692", "Time Was, Time Is", "Sidra",
        "General Audiences", ("No Archive Warnings Apply",), ("Gen",), (1, 0, 1, 4),
        day(2005, 11, 4), day(2008, 9, 20), 1581, "ongoing", None, 1, 1,
        f"{SITE}/works/692/navigate", (Chapter("803", 1394, 28, 8068, "72d9fef89d952c3f"),),
    ),
    Page(
        "hogwarts.html", f"{SITE}/works/692/chapters/804", "692", "Time Was, Time Is", "Sidra",
        "General Audiences", ("No Archive Warnings Apply",), ("Gen",), (1, 0, 1, 4),
        day(2005, 11, 4), day(2008, 9, 20), 1581, "ongoing", None, 0, 0,
        f"{SITE}/works/692/navigate",
        (Chapter("804", 187, 6, 1106, "05025f45f7007900", note_parts=1),),  # end notes only
        (NO_SUMMARY,),
    ),
    Page(
        "multi.html", f"{SITE}/works/29253276/chapters/71833074", "29253276",
        "edge of providence", "adiduck (book_people), whimsicalimages", "Mature",
        ("Graphic Depictions Of Violence",), ("M/M",), (3, 2, 7, 7), day(2021, 2, 7),
        day(2021, 4, 4), 15933, "ongoing", None, 4, 1,
        f"{SITE}/works/29253276/chapters/75093690?view_adult=true",  # the work's end notes
        (Chapter("71833074", 7811, 252, 46081, "74010591affdf9ac", note_parts=1),),
    ),
    Page(
        "open1.html", f"{SITE}/works/310586/chapters/497361", "310586", "Open the Door",
        "eternalbreath", "Not Rated", ("Creator Chose Not To Use Archive Warnings",), ("M/M",),
        (1, 0, 0, 0), day(2012, 1, 2), day(2012, 6, 25), 24871, "completed", 2, 1, 0,
        f"{SITE}/works/310586/chapters/757306?view_adult=true",
        (Chapter("497361", 22450, 799, 131094, "ec4f65defc63b2d6"),),
    ),
    Page(
        "open2.html", f"{SITE}/works/310586/chapters/757306", "310586", "Open the Door",
        "eternalbreath", "Not Rated", ("Creator Chose Not To Use Archive Warnings",), ("M/M",),
        (1, 0, 0, 0), day(2012, 1, 2), day(2012, 6, 25), 24871, "completed", 2, 0, 1,
        f"{SITE}/works/310586/navigate",
        # a chapter summary and chapter notes
        (Chapter("757306", 2421, 98, 14292, "18b3199328260312", note_parts=2),),
        (NO_SUMMARY,),
    ),
    Page(
        "quotes.html", f"{SITE}/works/22989676/chapters/54962869", "22989676",
        "The Various Triumphs of Mischief Bilinski", "Whispering_Sumire", "Mature",
        ("Graphic Depictions Of Violence",), ("M/M",), (1, 5, 16, 53), day(2020, 3, 2),
        day(2021, 10, 7), 165807, "ongoing", None, 8, 1, f"{SITE}/works/22989676/navigate",
        (Chapter("54962869", 2226, 67, 13336, "db2972aaa7913f82", note_parts=1),),
    ),
]  # fmt: skip
BY_FILE = {p.file: p for p in PAGES}


def text(page: Page) -> str:
    return (REAL / page.file).read_text(encoding="utf-8")


def read(page: Page) -> ListingStep:
    html = text(page)
    ADAPTER.check_page(html, page.url)  # a real page is no error page
    return ADAPTER.read_listing(html, page.url, Fetch(page.url, "listing", label="work"), None)


def novel_of(page: Page) -> NovelRecord:
    novel = read(page).novel
    assert novel is not None
    return novel


# --- the same page read another way -------------------------------------------------------


def fold(raw: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", "", raw)).split())


def raw_tags(html: str, kind: str) -> tuple[str, ...]:
    """The tag links of one `dd.<kind>.tags`, by regex over the page's source."""
    block = re.search(rf'<dd class="{kind} tags">(.*?)</dd>', html, re.S)
    links = (
        re.findall(r'<a class="tag" href="[^"]*">(.*?)</a>', block.group(1), re.S) if block else []
    )
    return tuple(fold(link) for link in links)


def raw_stat(html: str, kind: str) -> str | None:
    found = re.search(rf'<dd class="{kind}">(.*?)</dd>', html, re.S)
    return fold(found.group(1)) if found else None


def lxml_body(html: str, chapter_id: str) -> str:
    """A chapter's text through lxml alone: the block whose title links to the chapter
    (or a one-chapter page's `div.userstuff`), minus its landmark heading and comments."""
    root = lxml_html.document_fromstring(html)
    if chapter_id:
        titled = f'//div[@id="chapters"]//h3[@class="title"]/a[contains(@href, "/{chapter_id}")]'
        (link,) = root.xpath(titled)
        block = link.getparent().getparent().getparent()
        (body,) = [d for d in block if "userstuff" in (d.get("class") or "").split()]
    else:
        (body,) = root.xpath('//div[@id="chapters"]/div[@class="userstuff"]')
    body = copy.deepcopy(body)
    for node in [*body.xpath('./h3[contains(@class, "landmark")]'), *body.xpath(".//comment()")]:
        node.drop_tree()
    inner = (body.text or "") + "".join(
        etree.tostring(c, encoding="unicode", method="html") for c in body
    )
    return inner.strip()


def menu_ids(html: str) -> list[str]:
    """The chapter ids of the page's chapter menu (`select#selected_id`), in its order."""
    menu = re.search(r'<select name="selected_id" id="selected_id">(.*?)</select>', html, re.S)
    return re.findall(r'value="([0-9]+)"', menu.group(1)) if menu else []


def refs_of(page: Page) -> tuple[ChapterRef, ...]:
    return tuple(
        ChapterRef(
            c.chapter_id or "1",
            f"{SITE}/works/{page.site_id}/chapters/{c.chapter_id or 1}",
            n,
            f"c{n}",
        )
        for n, c in enumerate(page.chapters, start=1)
    )


# --- the work header ----------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.file)
def test_the_work_header_is_read_exactly(page: Page) -> None:
    novel = novel_of(page)
    html = text(page)
    assert (novel.site, novel.site_id, novel.url) == (
        "ao3",
        page.site_id,
        f"{SITE}/works/{page.site_id}",
    )
    assert (novel.title, novel.author) == (page.title, page.author)
    assert novel.content_rating == page.rating and novel.rating is None
    assert novel.content_warnings == page.warnings
    assert novel.language == "English"
    assert (novel.status, novel.chapters_planned) == (page.status, page.planned)
    assert novel.word_count == page.words
    assert (novel.published_at, novel.site_updated_at) == (page.published, page.updated)
    assert novel.parse_warnings == page.warnings_said
    assert novel.cover_url is None and novel.chapters == ()
    groups = dict(novel.tag_groups)
    counts = tuple(
        len(groups.get(k, ())) for k in ("fandom", "relationship", "character", "freeform")
    )
    assert counts == page.tag_counts
    assert groups["category"] == page.categories
    # the other way: regex over the source
    for kind in (
        "rating",
        "warning",
        "category",
        "fandom",
        "relationship",
        "character",
        "freeform",
    ):
        assert groups.get(kind, ()) == raw_tags(html, kind), kind
    assert novel.tags == tuple(
        t for k in ("fandom", "relationship", "character", "freeform") for t in raw_tags(html, k)
    )
    assert raw_stat(html, "published") == page.published.date().isoformat()
    assert raw_stat(html, "words") in (str(page.words), f"{page.words:,}")
    posted = len(menu_ids(html)) or len(page.chapters)
    assert raw_stat(html, "chapters") == f"{posted}/{page.planned or '?'}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.file)
def test_summary_and_work_notes_are_the_authors_words_only(page: Page) -> None:
    novel = novel_of(page)
    description = novel.description or ""
    assert description.count("<p>") == page.description_paragraphs
    assert (novel.description is None) == (page.description_paragraphs == 0)
    notes = novel.notes_html
    assert (notes.count(NOTES_SEPARATOR) + 1 if notes else 0) == page.note_parts
    for kept in (description, notes or ""):
        assert "Summary:" not in kept and "Notes:" not in kept and "See the end of" not in kept


def test_the_whole_headers_that_are_hard_to_read_come_out_as_the_page_shows_them() -> None:
    full = novel_of(BY_FILE["2026_work_92356871_view_full_work.html"])
    assert dict(full.tag_groups)["fandom"] == (
        "X-Men (Comicverse)",
        "悪魔城ドラキュラ | Castlevania (Video Games)",
        "Emma Frost (Marvel Comics)",
        "Marvel (Comics)",
        "X-Force (Marvel Comics)",
    )
    first = novel_of(BY_FILE["2026_work_35961484.html"])
    # the pretty-printed page breaks a tag over two lines: one space, as a reader sees it
    assert first.tags[0] == "Arcane: League of Legends (Cartoon 2021)"
    assert "can't stop writing stammering baby cait" in first.tags
    assert first.tag_groups[:3] == (
        ("rating", ("Teen And Up Audiences",)),
        ("warning", ("No Archive Warnings Apply",)),
        ("category", ("F/F",)),
    )
    assert [kind for kind, _ in first.tag_groups] == [
        "rating", "warning", "category", "fandom", "relationship", "character", "freeform"
    ]  # fmt: skip


def test_a_gift_line_alone_is_no_work_note() -> None:
    for name in ("drive.html", "notes.html"):
        html = text(BY_FILE[name])
        assert '<ul class="associations">' in html
        assert novel_of(BY_FILE[name]).notes_html is None


# --- what is fetched next -----------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.file)
def test_the_next_page_is_the_index_or_the_last_chapter_for_the_end_notes(page: Page) -> None:
    (follow,) = read(page).follow
    assert follow.url == page.follow and follow.step == "listing"
    assert follow.label == ("endnotes" if "chapters" in page.follow else "navigate")


def test_the_end_notes_of_a_work_in_chapters_come_from_its_last_chapter_page() -> None:
    first, last = BY_FILE["open1.html"], BY_FILE["open2.html"]
    step = read(first)
    (fetch,) = step.follow
    assert fetch.url == f"{SITE}/works/310586/chapters/757306?view_adult=true"
    assert menu_ids(text(first))[-1] == "757306"  # the link named the last chapter
    ended = ADAPTER.read_listing(text(last), fetch.url, fetch, step.novel)
    assert ended.novel is not None and step.novel is not None
    assert ended.novel.notes_html is not None and step.novel.notes_html is None
    assert ended.novel.notes_html.count(NOTES_SEPARATOR) == 0  # the end notes alone
    assert ended.novel.notes_html == novel_of(last).notes_html
    assert ended.follow == (Fetch(f"{SITE}/works/310586/navigate", "listing", label="navigate"),)


def test_the_adult_warning_page_is_passed_with_view_adult() -> None:
    html = (REAL / "2026_adult_interstitial_35369560.html").read_text(encoding="utf-8")
    url = f"{SITE}/works/35369560"
    ADAPTER.check_page(html, url)
    step = ADAPTER.read_listing(html, url, Fetch(url, "listing", label="work"), None)
    assert step == ListingStep(
        None, follow=(Fetch(f"{url}?view_adult=true", "listing", label="work"),)
    )
    assert 'href="/works/35369560?view_adult=true"' in html  # what its "Yes, Continue" asks
    asked = f"{url}?view_adult=true"
    with pytest.raises(ParseError, match="kept showing its adult content warning"):
        ADAPTER.read_listing(html, asked, Fetch(asked, "listing", label="work"), None)
    refs = (ChapterRef("1", f"{url}/chapters/1", 1, "x"),)
    with pytest.raises(ParseError, match="adult content warning"):
        ADAPTER.parse_chapters(html, Fetch(asked, "chapters", refs=refs))


# --- chapter text -------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.file)
def test_each_chapter_block_gives_its_text_and_notes(page: Page) -> None:
    html = text(page)
    refs = refs_of(page)
    records = ADAPTER.parse_chapters(html, Fetch(page.url, "chapters", refs=refs))
    assert [r.site_chapter_id for r in records] == [r.site_chapter_id for r in refs]
    for record, chapter in zip(records, page.chapters, strict=True):
        content = record.content_html or ""
        assert record.word_count == chapter.words
        assert (
            len(content),
            content.count("<p"),
            record.content_hash[:16] if record.content_hash else "",
        ) == (
            chapter.length,
            chapter.paragraphs,
            chapter.hash_prefix,
        )
        assert content == lxml_body(html, chapter.chapter_id)  # the other way: lxml alone
        assert "Chapter Text" not in content and "Work Text" not in content
        assert "<!--" not in content and "Notes:" not in content
        notes = record.author_notes_html
        assert (notes.count(NOTES_SEPARATOR) + 1 if notes else 0) == chapter.note_parts
        assert "See the end of the chapter" not in (notes or "")


def test_chapter_ids_are_the_ones_the_chapter_menu_or_titles_list() -> None:
    for page in PAGES:
        html = text(page)
        listed = menu_ids(html) or re.findall(
            r'<a href="/works/[0-9]+/chapters/([0-9]+)">Chapter', html
        )
        ids = [c.chapter_id for c in page.chapters if c.chapter_id]
        assert set(ids) <= set(listed)
        assert bool(ids) == (page.planned != 1)  # a one-chapter page names no chapter id


@pytest.mark.parametrize(
    ("files", "stated"),
    [
        (("2026_work_35961484.html", "2026_chapter_89729749.html"), 6095),
        (("2026_work_57038482.html",), 11419),
        (("2026_work_92356871_view_full_work.html",), 2116),
        (("drive.html",), 4515),
        (("where.html", "hogwarts.html"), 1581),
        (("open1.html", "open2.html"), 24871),
    ],
)
def test_chapter_word_counts_add_up_to_the_works_own_figure(
    files: tuple[str, ...], stated: int
) -> None:
    total = 0
    for name in files:
        page = BY_FILE[name]
        records = ADAPTER.parse_chapters(
            text(page), Fetch(page.url, "chapters", refs=refs_of(page))
        )
        total += sum(r.word_count or 0 for r in records)
    assert total == stated == novel_of(BY_FILE[files[0]]).word_count


def test_a_count_that_differs_from_the_sites_differs_by_little() -> None:
    # AO3 counts text node by text node (a word split by <em> is two): within 1% here
    page = BY_FILE["notes.html"]
    (record,) = ADAPTER.parse_chapters(text(page), Fetch(page.url, "chapters", refs=refs_of(page)))
    assert (record.word_count, page.words) == (3001, 3006)


def test_chapter_notes_keep_summary_head_and_end_notes_apart_from_the_text() -> None:
    page = BY_FILE["open2.html"]
    (record,) = ADAPTER.parse_chapters(text(page), Fetch(page.url, "chapters", refs=refs_of(page)))
    summary, notes = (record.author_notes_html or "").split(NOTES_SEPARATOR)
    html = text(page)
    assert summary in html and notes in html and summary not in (record.content_html or "")
    hogwarts = BY_FILE["hogwarts.html"]
    (ended,) = ADAPTER.parse_chapters(
        text(hogwarts), Fetch(hogwarts.url, "chapters", refs=refs_of(hogwarts))
    )
    # its head notes module is only "(See the end of the chapter for notes.)": not kept
    assert (ended.author_notes_html or "") in text(hogwarts).replace("<br/>", "<br>")
    assert "chapter_2_endnotes" in text(hogwarts)


def test_a_chapter_the_page_does_not_hold_is_a_parse_error() -> None:
    page = BY_FILE["2026_work_92356871_view_full_work.html"]
    refs = (*refs_of(page), ChapterRef("1", f"{SITE}/works/92356871/chapters/1", 4, "x"))
    with pytest.raises(ParseError, match="has no text for chapter 1 "):
        ADAPTER.parse_chapters(text(page), Fetch(page.url, "chapters", refs=refs))
