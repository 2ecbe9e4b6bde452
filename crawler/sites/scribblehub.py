"""Scribble Hub: series page, table of contents and chapter pages as the site serves them.

Pure functions of HTML (parsel); no I/O. Markup notes live in the shared fixtures'
README. A crawl is two listing steps: the series page (metadata; it shows only the newest
15 chapters), then the site's own table-of-contents request, `POST
/wp-admin/admin-ajax.php` with `action=wi_getreleases_pagination&pagenum=-1`, whose answer
lists every chapter, newest first. Then one page per chapter, its text in `div#chp_raw`,
author notes (`div.wi_authornotes`) and announcement boxes (`div.wi_news`) inside it.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from parsel import Selector, SelectorList

from crawler.items import ChapterRecord, ChapterRef, FictionRef, NovelRecord
from crawler.sites.base import Fetch, ListingStep, Politeness
from crawler.sites.fields import (
    FieldNotes,
    chapter_link,
    decoded_path,
    inner_html,
    invalid_url,
    parse_count,
    parse_id,
    parse_number,
    reading_text,
    story_record,
)
from crawler.sites.fields import site_link as _site_link
from crawler.sites.markup import clean_html, http_url
from errors import ParseError, RetryableFailure

HOSTS = ("www.scribblehub.com", "scribblehub.com")
# Ids are at most 18 ASCII digits ([0-9], not \d: \d also matches other scripts' digits).
SERIES_PATH = re.compile(r"^/series/(?P<id>[0-9]{1,18})(?:/[^/]*)?/?$")
# /read/<id>-<slug>/chapter/<chapter id>/; the site also answers without the slug.
READ_PATH = re.compile(r"^/read/(?P<id>[0-9]{1,18})(?:-[^/]*)?/chapter/(?P<cid>[0-9]{1,18})/?$")
TOC_ACTION = "wi_getreleases_pagination"
TOC_LABEL = "toc"  # "toc:<n>" carries the series page's chapter count to the next step
ALL_PAGES = "-1"  # pagenum=-1: every chapter in one answer (pagenum=N: 15 a page)
STATUSES = {"ongoing", "completed", "hiatus"}
# The sidebar's status line: "Ongoing - Updated <span title="Last updated: ...">...</span>";
# a finished series shows just "Completed" (the date in the span's tooltip).
STATUS_LINE = re.compile(r"^(?P<status>[A-Za-z][A-Za-z ]*?)\s*(?:[-\u2013]\s*Updated\b.*)?$")
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}
# "Nov 19, 2022 06:00 PM", as the site prints a date in a title attribute.
SITE_DATE = re.compile(
    r"^(?P<month>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>[0-9]{1,2}),\s*(?P<year>[0-9]{4})\s+"
    r"(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})\s*(?P<half>[AaPp][Mm])$"
)
RELATIVE = re.compile(r"\bago$|^(?:just now|yesterday|today)$", re.IGNORECASE)
RATINGS = re.compile(r"(?P<count>[0-9][0-9,]*)\s+ratings?\b", re.IGNORECASE)
SCALE = 5.0  # the site rates out of five stars
# What the site's own pages always have; an error page has none of it. The strings are a
# shortcut: most pages are real, and need not be parsed twice.
SITE_MARKUP = "div.fic_title, div#chp_raw, ol.toc_ol, li.toc_w"
SITE_STRINGS = ('id="chp_raw"', 'class="fic_title"', 'class="toc_ol"')
CHALLENGE = re.compile(r"^just a moment\.*$|^attention required!? \| cloudflare$", re.IGNORECASE)
# nginx's "502 Bad Gateway", Cloudflare's "scribblehub.com | 522: Connection timed out".
SERVER_ERROR = re.compile(r"^(?:[^|]*\|\s*)?5[0-9]{2}\s*:?\s+[A-Za-z][A-Za-z .'-]{2,80}$")
# WordPress's own outage pages (the site runs on WordPress).
WORDPRESS_DOWN = (
    "error establishing a database connection",
    "briefly unavailable for scheduled maintenance",
)


def site_link(base: str, link: str) -> str | None:
    return _site_link(base, link, hosts=HOSTS)


class ScribbleHubAdapter:
    """The series page, then the whole table of contents by POST; one page per chapter."""

    name = "scribblehub"
    display_name = "Scribble Hub"
    hosts: tuple[str, ...] = HOSTS
    url_patterns: tuple[str, ...] = (
        "/series/<id>[/<slug>]/",
        "/read/<id>-<slug>/chapter/<chapter id>/",
    )
    example_url = "https://www.scribblehub.com/series/123456/some-series/"
    politeness = Politeness(download_delay=1.0, concurrent_requests=2)

    def fiction_ref(self, url: str, *, base: str) -> FictionRef:
        site_id = _series_id(url)
        if site_id is None:
            raise invalid_url(
                url,
                decoded_path(url),
                expected="a Scribble Hub series URL; use /series/<id>/<slug>/ "
                "or a chapter URL /read/<id>-<slug>/chapter/<chapter id>/",
            )
        return FictionRef(site=self.name, site_id=site_id, url=f"{base}/series/{site_id}/")

    def first_fetch(self, ref: FictionRef) -> Fetch:
        return Fetch(ref.url, "listing", label="series")

    def check_page(self, html: str, url: str) -> None:
        problem = _error_page(html)
        if problem:
            raise RetryableFailure(f"Scribble Hub answered {url} with {problem}")

    def read_listing(
        self, html: str, url: str, fetch: Fetch, known: NovelRecord | None
    ) -> ListingStep:
        if fetch.label.startswith(TOC_LABEL):
            if known is None:
                raise ParseError(f"{url}: a table of contents without its series page")
            return ListingStep(_whole_novel(html, url, known, _expected(fetch.label)))
        novel, count = _series(html, url)
        toc_url = site_link(url, "/wp-admin/admin-ajax.php")
        if toc_url is None:
            raise ParseError(f"{url} is not an http(s) URL to ask the table of contents at")
        form = (("action", TOC_ACTION), ("pagenum", ALL_PAGES), ("mypostid", novel.site_id))
        label = TOC_LABEL if count is None else f"{TOC_LABEL}:{count}"
        return ListingStep(novel, (Fetch(toc_url, "listing", "POST", form, label=label),))

    def chapter_fetches(self, novel: NovelRecord) -> tuple[Fetch, ...]:
        return tuple(
            Fetch(ref.url, "chapters", refs=(ref,), label="chapter")
            for ref in novel.chapters
            if not ref.locked
        )

    def parse_chapters(self, html: str, fetch: Fetch) -> list[ChapterRecord]:
        return [_chapter(html, ref) for ref in fetch.refs]


ADAPTER = ScribbleHubAdapter()


def _series_id(url: str) -> str | None:
    path = decoded_path(url)
    match = SERIES_PATH.match(path) or READ_PATH.match(path)
    return parse_id(match.group("id")) if match else None


# --- error pages served with HTTP 200 -------------------------------------------------


def _error_page(html: str) -> str | None:
    """What error page this is ("Cloudflare's browser check", ...), or None for a page."""
    if any(sign in html for sign in SITE_STRINGS):
        return None
    page = Selector(text=html or "<html></html>", type="html")
    if page.css(SITE_MARKUP):
        return None
    title = _text(page.css("title"))
    heading = _text(page.css("h1"))
    if CHALLENGE.match(title) or page.css("#challenge-error-text, #cf-challenge-running"):
        return f"Cloudflare's browser check ({title or 'challenge'!r}) instead of the page"
    text = " ".join(" ".join(page.css("body ::text").getall()).split())[:2000]
    for line in (title, heading, text):  # the whole text: a bare "502 Bad Gateway" body
        if SERVER_ERROR.match(line):
            return f"an error page ({line!r}) with HTTP 200"
    down = next((sign for sign in WORDPRESS_DOWN if sign in text.lower()), None)
    if down is not None:
        return f"its outage page ({down!r}) with HTTP 200"
    return None


# --- series page ----------------------------------------------------------------------


def _series(html: str, url: str) -> tuple[NovelRecord, int | None]:
    """The novel without chapters, and the chapter count the page states."""
    page = Selector(text=html, type="html")
    title = _text(page.css("div.fic_title"))
    if not title:
        raise ParseError(f"{url} is not a Scribble Hub series page: it has no series title")
    notes = FieldNotes()
    site_id = _page_id(page, url, notes)
    genres = tuple(_texts(page.css("a.fic_genre")))
    tags = tuple(_texts(page.css("span.wi_fic_showtags_inner a")))
    if not page.css("a.fic_genre, span.wi_fic_showtags_inner"):
        notes.note("tags not read: no genre or tag block on the page; stored as none")
    updated = page.css('span[title^="Last updated"]')
    novel = NovelRecord(
        site=ADAPTER.name,
        site_id=site_id,
        url=url,
        title=title,
        author=_author(page, notes),
        description=_description(page, url, notes),
        cover_url=_cover(page, url, notes),
        tags=genres + tags,
        tag_groups=tuple(
            (kind, names) for kind, names in (("genre", genres), ("tag", tags)) if names
        ),
        status=_status(updated, notes),
        # The series page never states a word count (only its /stats/ page does): null,
        # and no warning, as for every Scribble Hub series.
        word_count=None,
        rating=_rating(page, notes),
        volumes=(),  # the site has no volumes
        chapters=(),
        content_warnings=tuple(_texts(page.css("ul.ul_rate_expand a"))),
        site_updated_at=_updated_at(updated, notes),
        parse_warnings=tuple(notes.lines),
    )
    return novel, _chapter_count(page)


def _page_id(page: Selector, url: str, notes: FieldNotes) -> str:
    """The series id the page names (`input#mypostid`), else the one in its URL."""
    named = parse_id(page.css("input#mypostid::attr(value)").get() or "")
    in_url = _series_id(url)
    if named is None and in_url is None:
        raise ParseError(f"{url} is not a Scribble Hub series page: it names no series id")
    if named is not None and in_url is not None and named != in_url:
        notes.note(f"the page at {url} names series {named}: stored as series {named}")
    return named or in_url or ""


def _author(page: Selector, notes: FieldNotes) -> str | None:
    author = _text(page.css("span.auth_name_fic"))
    if not author:
        notes.unread("author", "no author name (span.auth_name_fic) on the page")
    return author or None


def _description(page: Selector, url: str, notes: FieldNotes) -> str | None:
    node = page.css("div.wi_fic_desc")
    if not node:
        notes.unread("description", "no synopsis block on the page")
        return None
    return clean_html(inner_html(node[0]), base=url) or None


def _cover(page: Selector, url: str, notes: FieldNotes) -> str | None:
    src = (page.css("div.fic_image img::attr(src)").get() or "").strip()
    if not src:
        notes.unread("cover_url", "no cover image on the page")
        return None
    cover = _absolute(url, src)
    if cover is None:
        notes.unread("cover_url", "the cover image's address is not an http(s) URL")
    return cover


def _status(updated: SelectorList[Selector], notes: FieldNotes) -> str | None:
    if not updated:
        notes.unread("status", "no 'Last updated' line on the page")
        return None
    if _text(updated).lower() == "completed":
        return "completed"
    line = _text(updated[0].xpath(".."))
    match = STATUS_LINE.match(line)
    status = match.group("status").lower() if match else ""
    if status in STATUSES:
        return status
    notes.unread(
        "status", f"the status line {line[:80]!r} names no status (Ongoing, Completed, Hiatus)"
    )
    return None


def _updated_at(updated: SelectorList[Selector], notes: FieldNotes) -> datetime | None:
    if not updated:
        notes.unread("site_updated_at", "no 'Last updated' line on the page")
        return None
    raw = (updated[0].xpath("@title").get() or "").removeprefix("Last updated").lstrip(": ")
    when = _site_date(raw)
    if when is None:
        how = "only relatively" if RELATIVE.search(raw) else "in no form the site uses"
        notes.unread("site_updated_at", f"the page gives it {how} ({raw[:40]!r})")
    return when


def _chapter_count(page: Selector) -> int | None:
    """The "Table of Contents <n>" count (the page's other cnt_toc counts reviews)."""
    counted = (
        page.css(".toc span.cnt_toc::text").get() or page.css("input#chpcounter::attr(value)").get()
    )
    return parse_count(counted)


def _rating(page: Selector, notes: FieldNotes) -> float | None:
    """The stars the page shows (4.9 of 5), else its JSON-LD AggregateRating."""
    shown = page.css("#ratefic_user > span > span")
    aggregate = _json_ld(page, "AggregateRating")
    if shown:
        raw: object = _text(shown[:1])
        scale: float | None = SCALE
        count = RATINGS.search(_text(page.css("#ratefic_user .rate_more")))
        rated = parse_count(count.group("count")) if count else None
    elif aggregate:
        raw, scale = aggregate.get("ratingValue"), parse_number(aggregate.get("bestRating"))
        rated = parse_count(str(aggregate.get("ratingCount", "")))
    else:
        notes.unread("rating", "no rating on the page")
        return None
    return _in_scale(parse_number(raw), raw, scale, rated, notes)


def _in_scale(
    value: float | None, raw: object, scale: float | None, rated: int | None, notes: FieldNotes
) -> float | None:
    if value is None:
        notes.unread("rating", f"{str(raw)[:40]!r} is not a rating")
        return None
    if value == 0 or rated == 0:
        return None  # not rated yet: no rating, not a rating of 0
    if scale != SCALE:
        notes.unread("rating", f"the page rates out of {scale}, not {SCALE:g}")
        return None
    if not 0 < value <= SCALE:
        notes.unread("rating", f"{value} is outside the site's scale 0-{SCALE:g}")
        return None
    return value


def _json_ld(page: Selector, kind: str) -> dict[str, Any]:
    for raw in page.css('script[type="application/ld+json"]::text').getall():
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict) and data.get("@type") == kind:
            return data
    return {}


# --- table of contents ----------------------------------------------------------------


TOC_PAGE = 15  # entries of one page of the table of contents (pagenum=N, or the series page)


def _expected(label: str) -> int | None:
    return parse_count(label.partition(":")[2]) if ":" in label else None


def _whole_novel(html: str, url: str, known: NovelRecord, expected: int | None) -> NovelRecord:
    page = Selector(text=html, type="html")
    entries = page.css("li.toc_w")
    if not entries and not page.css("ol.toc_ol") and expected != 0:
        raise ParseError(f"{url}: the table of contents of series {known.site_id} lists nothing")
    notes = FieldNotes()
    chapters = Listing(url, known.site_id, notes).read(entries)
    if expected and (len(chapters) < expected / 2 or len(chapters) == TOC_PAGE < expected):
        # a partial answer (an empty list, one page of 15): storing it would drop chapters
        raise RetryableFailure(
            f"{url}: the table of contents of series {known.site_id} lists {len(chapters)}"
            f" of the {expected} chapters the series page counts"
        )
    if expected is not None and len(chapters) < expected:
        notes.note(
            f"the table of contents lists {len(chapters)} chapters of the {expected}"
            " the series page counts"
        )
    dates = [c.published_at for c in chapters if c.published_at is not None]
    return replace(
        known,
        chapters=tuple(chapters),
        published_at=min(dates) if dates else None,
        parse_warnings=known.parse_warnings + tuple(notes.lines),
    )


class Listing:
    """Turns table-of-contents entries (newest first) into ChapterRefs in reading order,
    counting what it could not read."""

    def __init__(self, url: str, series_id: str, notes: FieldNotes) -> None:
        self.url, self.series_id, self.notes = url, series_id, notes
        self.skipped = self.elsewhere = self.doubled = 0
        self.untitled = self.relative = self.undated = 0

    def read(self, entries: SelectorList[Selector]) -> list[ChapterRef]:
        refs: list[ChapterRef] = []
        seen: set[str] = set()
        for entry in _reading_order(entries):
            found = self._link(entry)
            if found is None:
                continue
            chapter_id, chapter_url = found
            if chapter_id in seen:
                self.doubled += 1
                continue
            seen.add(chapter_id)
            refs.append(
                ChapterRef(
                    site_chapter_id=chapter_id,
                    url=chapter_url,
                    position=len(refs) + 1,
                    title=self._title(entry),
                    published_at=self._date(entry),
                )
            )
        self._report()
        return refs

    def _link(self, entry: Selector) -> tuple[str, str] | None:
        """The chapter's id and URL, if the entry links to a chapter of this series;
        RefusedURLError for a link off the fiction's site."""
        href = entry.css("a.toc_a::attr(href)").get()
        chapter_url = chapter_link(self.url, href, hosts=HOSTS) if href else None
        match = READ_PATH.match(decoded_path(chapter_url)) if chapter_url else None
        if match is None:
            self.skipped += 1
        elif parse_id(match.group("id")) != self.series_id:
            self.elsewhere += 1
        else:
            assert chapter_url is not None
            return str(int(match.group("cid"))), chapter_url
        return None

    def _title(self, entry: Selector) -> str:
        title = _text(entry.css("a.toc_a"))
        self.untitled += not title
        return title

    def _date(self, entry: Selector) -> datetime | None:
        # The title attribute holds the date ("Nov 19, 2022 06:00 PM"); the text may be
        # relative ("6 hours ago"), and so may the title of a chapter posted today.
        raw = entry.css("span.fic_date_pub::attr(title)").get() or ""
        when = _site_date(raw)
        if when is None and RELATIVE.search(raw.strip()):
            self.relative += 1
        elif when is None:
            self.undated += 1
        return when

    def _report(self) -> None:
        self.notes.chapters(
            (
                (self.skipped, "listed without a chapter link: skipped"),
                (self.elsewhere, "linked to another series: skipped"),
                (self.doubled, "listed twice: the first listing kept"),
                (self.untitled, "without a title in the table of contents"),
                (self.relative, "published_at not read (given only relatively); stored as null"),
                (self.undated, "published_at not read; stored as null"),
            )
        )


def _reading_order(entries: SelectorList[Selector]) -> list[Selector]:
    """Oldest first: by the site's `order` when every entry has a distinct one, else the
    list (newest first) reversed."""
    orders = [parse_id(entry.xpath("@order").get() or "") for entry in entries]
    if all(o is not None for o in orders) and len(set(orders)) == len(orders):
        ranked = sorted(zip(orders, range(len(orders)), strict=True), key=lambda p: int(p[0] or 0))
        return [entries[index] for _, index in ranked]
    return list(reversed(entries))


def _site_date(raw: str) -> datetime | None:
    """A date as the site prints it, "Nov 19, 2022 06:00 PM", or None.

    The site prints no time zone; it is taken as UTC (the site's own clock, as far as a
    page can tell), so dates compare, and a chapter's date is never off by more than a day.
    """
    match = SITE_DATE.match(" ".join(raw.split()))
    if match is None:
        return None
    month = MONTHS.get(match.group("month").lower())
    hour = int(match.group("hour"))
    if month is None or not 1 <= hour <= 12:
        return None
    hour = hour % 12 + (12 if match.group("half").lower() == "pm" else 0)
    try:
        day = int(match.group("day"))
        return datetime(
            int(match.group("year")), month, day, hour, int(match.group("minute")), tzinfo=UTC
        )
    except ValueError:  # Feb 30, minute 61, year 0
        return None


# --- chapter page ---------------------------------------------------------------------


def _chapter(html: str, ref: ChapterRef) -> ChapterRecord:
    page = Selector(text=html, type="html")
    body = page.css("div#chp_raw")
    if not body:
        raise ParseError(f"chapter page {ref.url} has no chapter text")
    served = parse_id(page.css("input#mypostid::attr(value)").get() or "")
    if served is not None and served != ref.site_chapter_id:
        raise ParseError(f"{ref.url} served chapter {served}, not {ref.site_chapter_id}")
    notes = _author_notes(body[0])  # before the body is stripped of them
    story = _strip(body[0])
    title = ref.title or _text(page.css(".chapter-title"))
    return story_record(ref, story, notes=notes, title=title)


def _author_notes(body: Selector) -> list[str]:
    """Each note's text (`.wi_authornotes_body`), without the author's avatar and name."""
    notes = []
    for note in body.css("div.wi_authornotes"):
        inner = note.css(".wi_authornotes_body")
        notes.append(inner_html(inner[0]) if inner else inner_html(note))
    return notes  # story_record sanitizes and joins them


def _strip(body: Selector) -> Selector:
    """The story alone: drop, in place, author notes and the site's announcement boxes."""
    for box in body.css("div.wi_authornotes, div.wi_news"):
        box.drop()
    return body


# --- helpers --------------------------------------------------------------------------


def _text(nodes: SelectorList[Selector]) -> str:
    """The first node's text as a reader sees it: "Ki<b>ll</b>" is "Kill", not "Ki ll"."""
    return reading_text(nodes[0].root) if nodes else ""


def _texts(nodes: SelectorList[Selector]) -> list[str]:
    return [t for t in (reading_text(n.root) for n in nodes) if t]


def _absolute(base: str, link: str) -> str | None:
    """`link` made absolute on `base`, if it is an http(s) URL (any host: covers are on
    the site's CDN; javascript:, data: and the like are no cover)."""
    try:
        joined = urljoin(base, link)
    except ValueError:
        return None
    return http_url(joined)
