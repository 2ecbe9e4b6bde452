"""The Royal Road adapter on a real fiction page saved from the site (shared/fixtures).

Skipped where ../shared/fixtures is absent (a user's clone); CI has it. The saved page had
its tag, statistics and sidebar blocks cut out by whoever saved it: those fields must come
out null with a warning (or from the page's JSON-LD, which is whole), never guessed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from parsel import Selector

from crawler.sites.royalroad import ADAPTER
from tests.unit.test_royalroad import REAL_POPOVER

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "royalroad"
PAGE = REAL / "fiction_117255_rend.html"
URL = "https://www.royalroad.com/fiction/117255/rend"

pytestmark = pytest.mark.skipif(not PAGE.is_file(), reason="shared/fixtures/royalroad absent")

CHAPTERS = [  # (id, title, published) as the page's table lists them, in reading order
    ("2291798", "1.1 Crappy Monday", "2025-05-20T00:55:33"),
    ("2292710", "1.2 Crappy Monday", "2025-05-20T12:30:09"),
    ("2295018", "1.3 Crappy Monday", "2025-05-21T13:03:41"),
    ("2296785", "1.4 Crappy Monday", "2025-05-22T04:49:58"),
    ("2299364", "2.1 New Semester, New Me", "2025-05-23T07:46:03"),
    ("2301568", "2.2 New Semester, New Me", "2025-05-24T00:55:08"),
    ("2303699", "2.3 New Semester, New Me", "2025-05-25T01:45:42"),
    ("2305732", "2.4 New Semester, New Me", "2025-05-26T02:26:44"),
    ("2311648", "3.1 Those Above the Law", "2025-05-28T13:52:18"),
    ("2316851", "3.2 Those Above the Law", "2025-05-30T13:36:15"),
    ("2319836", "3.3 Those Above the Law", "2025-05-31T16:01:32"),
    ("2322033", "4.1 A Memorial To Remember", "2025-06-01T14:53:47"),
]
TAGS = (  # the JSON-LD "genre" list: the page's tag block was cut out
    "Action",
    "Comedy",
    "Fantasy",
    "Psychological",
    "Anti-Hero Lead",
    "Female Lead",
    "Low Fantasy",
    "Progression",
    "Secret Identity",
    "Strong Lead",
    "Super Heroes",
    "Supernatural",
    "Urban Fantasy",
    "Villainous Lead",
)


def _html() -> str:
    return PAGE.read_text(encoding="utf-8")


def _text(html: str) -> str:
    return " ".join(" ".join(Selector(text=html).css("::text").getall()).split())


def test_every_field_of_the_real_fiction_page() -> None:
    novel = ADAPTER.parse_fiction(_html(), URL)
    assert (novel.site, novel.site_id, novel.url) == ("royalroad", "117255", URL)
    assert (novel.title, novel.author) == ("REND", "Temple")
    assert novel.cover_url == (
        "https://www.royalroadcdn.com/public/covers-large/117255-rend.jpg?time=1748727569"
    )
    assert novel.rating == 4.898785
    assert novel.tags == TAGS
    assert novel.content_warnings == ()
    assert novel.volumes == ()
    assert (novel.status, novel.word_count) == (None, None)  # their blocks were cut out
    assert novel.parse_warnings == (
        "status not read: no status label (COMPLETED, ONGOING, HIATUS, ...) on the page;"
        " stored as null",
        "word_count not read: no Story Length popover on the page; stored as null",
    )
    assert novel.published_at == datetime(2025, 5, 20, 0, 55, 33, tzinfo=UTC)


def test_the_real_description_is_the_whole_one() -> None:
    novel = ADAPTER.parse_fiction(_html(), URL)
    assert novel.description is not None
    assert novel.description.startswith("<p>Erind Hartwell: dutiful daughter, law student,")
    assert novel.description.endswith("<br>Cover art by ChristianAC</p>")
    # the JSON-LD copy is an independent statement of the same text; og:description is cut
    book = Selector(text=_html()).css('script[type="application/ld+json"]::text').get()
    assert book is not None
    assert _text(novel.description) == _text(json.loads(book)["description"])
    assert "(...)" not in novel.description


def test_the_real_chapter_list() -> None:
    novel = ADAPTER.parse_fiction(_html(), URL)
    assert [
        (c.site_chapter_id, c.title, c.published_at.isoformat()[:19] if c.published_at else None)
        for c in novel.chapters
    ] == CHAPTERS
    assert [c.position for c in novel.chapters] == list(range(1, 13))
    assert all(c.volume is None and not c.locked for c in novel.chapters)
    assert novel.chapters[0].url == (
        "https://www.royalroad.com/fiction/117255/rend/chapter/2291798/11-crappy-monday"
    )
    # the row's unixtime and its ISO datetime attribute agree
    rows = Selector(text=_html()).css("tr.chapter-row time::attr(datetime)").getall()
    assert [r[:19] for r in rows] == [c[2] for c in CHAPTERS]


def test_the_real_page_with_the_site_s_pages_popover() -> None:
    """The statistics block put back as the site renders it: 782,406 words, not 2.8e12."""
    stats = (
        '<div class="portlet light"><div class="fiction-stats"><div class="stats-content">'
        '<ul class="list-unstyled"><li class="bold uppercase">Pages</li>'
        '<li class="bold uppercase font-red-sunglo">2,845<i title="Story Length"'
        ' data-toggle="popover" data-trigger="hover" data-placement="top"'
        f' data-content="{REAL_POPOVER}" class="fa fa-info-circle popovers"></i></li>'
        "</ul></div></div></div>"
        '<span class="label label-default label-sm bg-blue-hoki">COMPLETED</span>'
    )
    html = _html().replace('<div class="portlet light">', stats + '<div class="portlet light">', 1)
    novel = ADAPTER.parse_fiction(html, URL)
    assert (novel.word_count, novel.status) == (782_406, "completed")
    assert novel.parse_warnings == ()
