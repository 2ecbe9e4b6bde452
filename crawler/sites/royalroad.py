"""Royal Road: fiction and chapter pages as the site serves them (legacy layout, 2025-26).

Pure functions of HTML (parsel, Scrapy's selectors); no I/O. Markup notes live in the
shared fixtures' README: chapter rows in reading order, dates in `time[unixtime]`,
volumes in the inline `window.volumes`, a per-page hidden anti-piracy class declared in a
`<style>` (`display: none`), author notes in `.author-note-portlet` beside the story.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from parsel import Selector, SelectorList

from crawler.items import ChapterRecord, ChapterRef, FictionRef, NovelRecord, VolumeRecord
from crawler.sites.base import Fetch, ListingStep, Politeness
from crawler.sites.fields import (
    INT_MAX,
    FieldNotes,
    chapter_link,
    decoded_path,
    inner_html,
    invalid_url,
    parse_count,
    parse_id,
    parse_number,
    story_record,
)
from crawler.sites.markup import clean_html, http_url
from errors import ParseError

# Ids are at most 18 ASCII digits: the site's are 6-7, and a longer one is not a fiction
# anyone has. ([0-9], not \d: \d also matches other scripts' digits.)
FICTION_PATH = re.compile(
    r"^/fiction/(?P<id>[0-9]{1,18})(?:/[^/]*)?(?:/chapter/[0-9]{1,18}(?:/[^/]*)?)?/?$"
)
CHAPTER_ID = re.compile(r"/chapter/(?P<id>[0-9]{1,18})(?:/|$)")
STATUSES = {"completed", "ongoing", "hiatus", "stub", "dropped", "inactive"}
HIDDEN_RULE = re.compile(r"\.([A-Za-z_][\w-]*)\s*\{[^}]*display\s*:\s*none", re.IGNORECASE)
WINDOW_ARRAY = r"window\.{name}\s*=\s*(?=\[)"
JSON = json.JSONDecoder()
# The "Pages" popover: "This story would be 2,845 pages long as a published paperback
# book. This is an estimate based on an average of 275 words per page, calculated from
# 782,406 words." Only a count followed by "words" (and not "words per ...") is the
# story's length; the pages and words-per-page figures are not.
STORY_WORDS = re.compile(r"(?<![\w,.])([0-9][0-9,]*)\s+words\b(?!\s+(?:a|per)\b)", re.I)
NO_COVER = "nocover"  # the site's placeholder image (/dist/img/nocover-new-min.png): no cover


class RoyalRoadAdapter:
    """One fiction page lists every chapter; one page per chapter."""

    name = "royalroad"
    display_name = "Royal Road"
    hosts: tuple[str, ...] = ("www.royalroad.com", "royalroad.com")
    url_patterns: tuple[str, ...] = (
        "/fiction/<id>[/<slug>]",
        "/fiction/<id>/<slug>/chapter/<chapter id>[/<slug>]",
    )
    example_url = "https://www.royalroad.com/fiction/12345/some-fiction"
    politeness = Politeness(download_delay=0.5, concurrent_requests=4)

    def fiction_ref(self, url: str, *, base: str) -> FictionRef:
        path = decoded_path(url)
        match = FICTION_PATH.match(path)
        if match is None:
            raise invalid_url(
                url,
                path,
                expected="a Royal Road fiction URL; use /fiction/<id>[/<slug>] "
                "or a chapter URL /fiction/<id>/<slug>/chapter/<chapter id>/<slug>",
            )
        site_id = str(int(match.group("id")))  # /fiction/0024 is fiction 24
        return FictionRef(site=self.name, site_id=site_id, url=f"{base}/fiction/{site_id}")

    def first_fetch(self, ref: FictionRef) -> Fetch:
        return Fetch(ref.url, "listing", label="fiction")

    def check_page(self, html: str, url: str) -> None:
        """Royal Road's errors come with their HTTP status; a 200 is a page."""

    def read_listing(
        self, html: str, url: str, fetch: Fetch, known: NovelRecord | None
    ) -> ListingStep:
        return ListingStep(self.parse_fiction(html, url))

    def chapter_fetches(self, novel: NovelRecord) -> tuple[Fetch, ...]:
        return tuple(
            Fetch(ref.url, "chapters", refs=(ref,), label="chapter")
            for ref in novel.chapters
            if not ref.locked
        )

    def parse_chapters(self, html: str, fetch: Fetch) -> list[ChapterRecord]:
        return [self.parse_chapter(html, ref) for ref in fetch.refs]

    def parse_fiction(self, html: str, url: str) -> NovelRecord:
        page = Selector(text=html, type="html")
        title = _text(page.css(".fic-header h1"))
        if not title:
            raise ParseError(f"{url} is not a Royal Road fiction page: it has no fiction title")
        notes = FieldNotes()
        book = _json_ld(page)
        volumes = _volumes(html, notes)
        chapters = _chapters(page, html, url, {v.site_volume_id: v.title for v in volumes}, notes)
        if chapters is None:
            raise ParseError(f"{url} is not a Royal Road fiction page: it has no chapter list")
        dates = [c.published_at for c in chapters if c.published_at is not None]
        return NovelRecord(
            site=self.name,
            site_id=self.fiction_ref(url, base="").site_id,
            url=url,
            title=title,
            author=_author(page, book, notes),
            description=_description(page, book, url, notes),
            cover_url=_cover(page, book, url, notes),
            tags=_tags(page, book, notes),
            status=_status(page, notes),
            word_count=_word_count(page, notes),
            rating=_rating(page, book, notes),
            volumes=volumes,
            chapters=tuple(chapters),
            content_warnings=_content_warnings(page),
            published_at=min(dates) if dates else None,
            parse_warnings=tuple(notes.lines),
        )

    def parse_chapter(self, html: str, ref: ChapterRef) -> ChapterRecord:
        page = Selector(text=html, type="html")
        body = page.css("div.chapter-inner.chapter-content")
        if not body:
            raise ParseError(f"chapter page {ref.url} has no chapter text")
        notes = _author_notes(page)  # before the body is stripped: a note may sit inside it
        title = ref.title or _text(page.css(".fic-header h1"))
        story = _strip(body[0], _hidden_classes(page))
        return story_record(ref, story, notes=notes, title=title)  # sanitized there


ADAPTER = RoyalRoadAdapter()


# --- fiction page ---------------------------------------------------------------------


def _text(nodes: SelectorList[Selector]) -> str:
    return " ".join(" ".join(nodes[:1].css("::text").getall()).split()) if nodes else ""


def _texts(nodes: SelectorList[Selector]) -> list[str]:
    return [t for t in (" ".join(" ".join(n.css("::text").getall()).split()) for n in nodes) if t]


def _json_ld(page: Selector) -> dict[str, Any]:
    """The page's schema.org Book, or {}."""
    for raw in page.css('script[type="application/ld+json"]::text').getall():
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict) and data.get("@type") == "Book":
            return data
    return {}


def _author(page: Selector, book: dict[str, Any], notes: FieldNotes) -> str | None:
    link = _text(page.css('.fic-header a[href^="/profile/"]'))
    meta = (page.css('meta[property="books:author"]::attr(content)').get() or "").strip()
    person = book.get("author")
    named = person.get("name") if isinstance(person, dict) else None
    author = link or meta or (named.strip() if isinstance(named, str) else "")
    if not author:
        notes.unread("author", "no author link, books:author or JSON-LD author on the page")
    return author or None


def _description(page: Selector, book: dict[str, Any], url: str, notes: FieldNotes) -> str | None:
    node = page.css(".fiction-info .description .hidden-content")
    if node:
        return clean_html(inner_html(node[0]), base=url) or None
    # og:description is cut short ("(...)"): a wrong value; the JSON-LD one is whole.
    described = book.get("description")
    if isinstance(described, str) and described.strip():
        return clean_html(described.strip(), base=url) or None
    notes.unread("description", "no description block or JSON-LD description")
    return None


def _cover(page: Selector, book: dict[str, Any], url: str, notes: FieldNotes) -> str | None:
    image = book.get("image")
    src = (
        page.css(".fic-header img.thumbnail::attr(src)").get()
        or page.css('meta[property="og:image"]::attr(content)').get()
        or (image if isinstance(image, str) else None)
    )
    if not src or not src.strip():
        notes.unread("cover_url", "no cover image on the page")
        return None
    if _basename(src).startswith(NO_COVER):
        return None  # the site's placeholder: this fiction has no cover
    cover = _cover_url(url, src.strip())
    if cover is None:
        notes.unread("cover_url", "the cover image's address is not an http(s) URL")
    return cover


def _tags(page: Selector, book: dict[str, Any], notes: FieldNotes) -> tuple[str, ...]:
    if page.css(".fiction-info .tags"):
        return tuple(_texts(page.css(".fiction-info .tags a.fiction-tag")))
    genres = book.get("genre")  # the same list, where the tag block is not rendered
    if isinstance(genres, list) and all(isinstance(g, str) for g in genres):
        return tuple(" ".join(g.split()) for g in genres if g.strip())
    notes.note("tags not read: no tag block or JSON-LD genre on the page; stored as none")
    return ()


def _status(page: Selector, notes: FieldNotes) -> str | None:
    for label in _texts(page.css("span.label")):
        if label.lower() in STATUSES:
            return label.lower()
    notes.unread("status", "no status label (COMPLETED, ONGOING, HIATUS, ...) on the page")
    return None


def _content_warnings(page: Selector) -> tuple[str, ...]:
    """The fiction's "Warning: This fiction contains" list; none when it has no such block."""
    for strong in page.css("strong"):
        if " ".join(strong.css("::text").getall()).strip().lower() != "warning":
            continue
        if strong.xpath("ancestor::*[contains(@class, 'description')]"):
            continue  # the author's own words, not the site's warning block
        return tuple(_texts(strong.xpath("following-sibling::ul[1]/li")))
    return ()


def _word_count(page: Selector, notes: FieldNotes) -> int | None:
    popover = page.css('i[title="Story Length"]::attr(data-content)').get()
    if popover is None:
        notes.unread("word_count", "no Story Length popover on the page")
        return None
    counts = {c for c in STORY_WORDS.findall(popover)}
    if len(counts) != 1:
        notes.unread(
            "word_count",
            f"the Story Length popover states no single word count ({popover[:120]!r})",
        )
        return None
    raw = counts.pop()
    words = parse_count(raw)
    if words is None:
        notes.unread("word_count", f"{raw!r} words is not a count the store can hold")
    return words


def _rating(page: Selector, book: dict[str, Any], notes: FieldNotes) -> float | None:
    aggregate = book.get("aggregateRating")
    aggregate = aggregate if isinstance(aggregate, dict) else {}
    raw = page.css('meta[property="books:rating:value"]::attr(content)').get()
    value = parse_number(raw if raw is not None else aggregate.get("ratingValue"))
    # the site rates out of 5; a scale read off the page only if the page states one
    scale = parse_number(page.css('meta[property="books:rating:scale"]::attr(content)').get())
    scale = scale if scale and scale > 0 else 5.0
    if value is None:
        if raw is not None or aggregate:
            notes.unread("rating", f"{raw or aggregate.get('ratingValue')!r} is not a rating")
        else:
            notes.unread("rating", "no books:rating:value or JSON-LD rating on the page")
        return None
    if value == 0 or parse_number(aggregate.get("ratingCount")) == 0:
        return None  # not rated yet: no rating, not a rating of 0
    if not 0 < value <= scale:
        notes.unread("rating", f"{value} is outside the site's scale 0-{scale:g}")
        return None
    return value


def _volumes(html: str, notes: FieldNotes) -> tuple[VolumeRecord, ...]:
    volumes: list[VolumeRecord] = []
    entries = _window_array(html, "volumes", notes)
    for entry in entries or []:
        volume = _volume(entry, position=len(volumes))
        if volume is None:
            notes.note("a volume without an id or title in window.volumes was skipped")
        elif volume.site_volume_id not in {v.site_volume_id for v in volumes}:
            volumes.append(volume)
    return tuple(sorted(volumes, key=lambda v: v.order))


def _volume(entry: object, *, position: int) -> VolumeRecord | None:
    if not isinstance(entry, dict) or (volume_id := parse_id(entry.get("id"))) is None:
        return None
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip():
        return None
    order = parse_number(entry.get("order"))
    if order is None or not order.is_integer() or abs(order) > INT_MAX:
        order = position  # an unreadable order keeps the volume where the site lists it
    return VolumeRecord(volume_id, " ".join(title.split()), int(order))


def _window_array(html: str, name: str, notes: FieldNotes) -> list[object] | None:
    """The JSON array assigned to `window.<name>` in an inline script; None if absent.

    Decoded from its "[" to its own end, so a "];" inside a title does not cut it short.
    """
    match = re.search(WINDOW_ARRAY.format(name=name), html)
    if match is None:
        return None
    try:
        value, _ = JSON.raw_decode(html, match.end())
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list):
        notes.note(f"window.{name} on the page is not a readable list: ignored")
        return None
    return value


def _chapters(
    page: Selector, html: str, url: str, volumes: dict[str, str], notes: FieldNotes
) -> list[ChapterRef] | None:
    """The table of contents in reading order, from `window.chapters` or the table.

    The inline script is the whole list with the site's own flags (`isUnlocked`,
    `visible`): chapters it lists but does not serve are kept, locked. The rendered table
    is the fallback (and what older pages have).
    """
    listing = Listing(url, volumes, notes)
    scripted = [c for c in _window_array(html, "chapters", notes) or [] if isinstance(c, dict)]
    if scripted:
        refs = listing.from_script(scripted)
    elif page.css("table#chapters"):
        refs = listing.from_rows(page.css("table#chapters tbody tr.chapter-row[data-url]"))
    else:
        return None
    listing.report()
    return refs


class Listing:
    """Turns table-of-contents entries into ChapterRefs, counting what it could not read."""

    def __init__(self, url: str, volumes: dict[str, str], notes: FieldNotes) -> None:
        self.url, self.volumes, self.notes = url, volumes, notes
        self.undated = self.untitled = self.no_volume = self.skipped = 0
        self.doubled = 0
        self.seen: set[str] = set()

    def from_script(self, entries: list[dict[str, Any]]) -> list[ChapterRef]:
        refs: list[ChapterRef] = []
        for entry in entries:
            chapter_id = parse_id(entry.get("id"))
            link = entry.get("url")
            chapter_url = self._link(link) if isinstance(link, str) and link else None
            if chapter_id is None and chapter_url is not None:
                chapter_id = _chapter_id(chapter_url)
            if not self._new(chapter_id):
                continue
            assert chapter_id is not None
            date = entry.get("date")
            refs.append(
                ChapterRef(
                    site_chapter_id=chapter_id,
                    url=chapter_url or urljoin(self.url, f"/fiction/chapter/{chapter_id}"),
                    position=len(refs) + 1,
                    title=self._title(entry.get("title")),
                    volume=self._volume(entry.get("volumeId")),
                    published_at=self._dated(_iso_date(date) if isinstance(date, str) else None),
                    locked=entry.get("isUnlocked") is False or entry.get("visible") in (0, False),
                )
            )
        return refs

    def from_rows(self, rows: SelectorList[Selector]) -> list[ChapterRef]:
        refs: list[ChapterRef] = []
        for row in rows:
            link = row.xpath("@data-url").get() or ""  # .attrib fails on odd attribute names
            chapter_url = self._link(link)
            chapter_id = _chapter_id(chapter_url)
            if not self._new(chapter_id):
                continue
            assert chapter_id is not None and chapter_url is not None
            refs.append(
                ChapterRef(
                    site_chapter_id=chapter_id,
                    url=chapter_url,
                    position=len(refs) + 1,
                    title=self._title(_text(row.css("td:first-child a")) or _text(row.css("td"))),
                    volume=self._volume(row.xpath("@data-volume-id").get()),
                    published_at=self._dated(_row_date(row)),
                )
            )
        return refs

    def _link(self, link: str) -> str:
        """The chapter's URL; RefusedURLError for a link off the fiction's site."""
        return chapter_link(self.url, link, hosts=RoyalRoadAdapter.hosts)

    def _new(self, chapter_id: str | None) -> bool:
        """Whether an entry is a chapter to list: an id, not listed before."""
        if chapter_id is None:
            self.skipped += 1
        elif chapter_id in self.seen:
            self.doubled += 1
        else:
            self.seen.add(chapter_id)
            return True
        return False

    def _title(self, raw: object) -> str:
        title = " ".join(raw.split()) if isinstance(raw, str) else ""
        self.untitled += not title
        return title

    def _volume(self, raw: object) -> str | None:
        if raw is None or raw == "null":
            return None
        title = self.volumes.get(parse_id(raw) or "")
        self.no_volume += title is None
        return title

    def _dated(self, when: datetime | None) -> datetime | None:
        self.undated += when is None
        return when

    def report(self) -> None:
        self.notes.chapters(
            (
                (self.skipped, "listed without a chapter id: skipped"),
                (self.doubled, "listed twice: the first listing kept"),
                (self.untitled, "without a title"),
                (self.undated, "published_at not read; stored as null"),
                (
                    self.no_volume,
                    "volume not read (an id window.volumes does not list); stored as null",
                ),
            )
        )


def _basename(url: str) -> str:
    try:
        return urlsplit(url).path.rsplit("/", 1)[-1].lower()
    except ValueError:
        return ""


def _cover_url(base: str, src: str) -> str | None:
    """An image may live on any host (the site's CDN): any http(s) URL, as the page has it
    (javascript:, data: and the like are no cover)."""
    try:
        joined = urljoin(base, src)
    except ValueError:  # e.g. "http://[abc/": no URL at all
        return None
    return http_url(joined)


def _chapter_id(url: str) -> str | None:
    match = CHAPTER_ID.search(decoded_path(url))  # other digits than 0-9: no id
    return parse_id(match.group("id")) if match else None


def _row_date(row: Selector) -> datetime | None:
    unix = parse_count(row.css("time::attr(unixtime)").get())
    if unix is not None:  # at most INT_MAX: 2038, a date every platform holds
        return datetime.fromtimestamp(unix, tz=UTC)
    stamp = row.css("time::attr(datetime)").get()
    return _iso_date(stamp) if stamp else None


def _iso_date(raw: str) -> datetime | None:
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", raw.strip())
    try:
        parsed = datetime.fromisoformat(cleaned)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # not a date, or one UTC cannot hold (year 1 +05:00)
        return None


# --- chapter page ---------------------------------------------------------------------


def _hidden_classes(page: Selector) -> set[str]:
    return {m for css in page.css("style::text").getall() for m in HIDDEN_RULE.findall(css)}


def _drop_hidden(node: Selector, hidden: set[str]) -> None:
    """Drop, in document order, every element under `node` with one of the `hidden`
    classes, keeping its tail text (as Selector.drop does). Walked in lxml itself: a
    Selector and an XPath query per element cost more than the rest of the page's parse."""
    doomed = [
        element
        for element in node.root.iterdescendants(etree.Element)
        if not hidden.isdisjoint((element.get("class") or "").split())
    ]
    for element in doomed:
        element.drop_tree()


def _strip(body: Selector, hidden: set[str]) -> Selector:
    """The story alone: drop, in place, the hidden anti-piracy lines and any author note."""
    if hidden:
        _drop_hidden(body, hidden)
    for note in body.css(".author-note-portlet"):
        note.drop()
    return body


def _author_notes(page: Selector) -> list[str]:
    """Each note's markup, as the page has it (story_record sanitizes and joins them)."""
    return [
        inner_html(n.css(".author-note")[0]) if n.css(".author-note") else inner_html(n)
        for n in page.css("div.portlet.author-note-portlet")
    ]
