"""Archive of Our Own: the work page, its chapter index, and the whole work in one page.

Pure functions of HTML (parsel, Scrapy's selectors); no I/O. Markup as the real pages in
the shared fixtures show it, and as AO3's own templates write it (otwarchive:
works/_meta, works/navigate, works/show, chapters/_chapter):

- `/works/<id>` is the work page; a work in chapters redirects to its first chapter's page
  `/works/<id>/chapters/<cid>`, with the same work header (`dl.work.meta`) and, on the
  first chapter only, the summary and the work's notes. The work's end notes are on its
  last chapter's page (the head notes link there: "See the end of the work for notes").
- `/works/<id>/navigate` lists every chapter with its id and date. It is read for every
  work, one chapter or many: a one-chapter work's page names no chapter id at all, and a
  chapter stored without the site's id could not be matched again when the work grows.
- `/works/<id>?view_full_work=true` holds every chapter's text: one request for the novel.
- Gates: the "Adult Content Warning" page (passed with `view_adult=true` on each page:
  the crawl keeps no cookies, so AO3's "don't ask again" cookie is never sent); the login
  page for works only registered users may read (not passable); error pages AO3 serves
  with HTTP 200 (retried).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

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
    reading_text,
    site_link,
    story_record,
)
from crawler.sites.markup import NOTES_SEPARATOR as NOTES_SEPARATOR
from crawler.sites.markup import clean_html, clean_notes
from errors import InvalidURLError, ParseError, PermanentFailure, RetryableFailure

# archiveofourown.org is the archive; the others are its own short and old names, which
# redirect there (a URL on any of them names the same work).
HOSTS = (
    "archiveofourown.org",
    "www.archiveofourown.org",
    "ao3.org",
    "www.ao3.org",
    "archiveofourown.com",
    "archiveofourown.net",
)
# Ids are at most 18 ASCII digits ([0-9], not \d: \d also matches other scripts' digits).
# Collection names are letters, digits and underscores.
WORK_PATH = re.compile(
    r"^(?:/collections/[A-Za-z0-9_]{1,255})?/works/(?P<id>[0-9]{1,18})"
    r"(?:/chapters/[0-9]{1,18})?/?$"
)
CHAPTER_PATH = re.compile(r"^/works/(?P<work>[0-9]{1,18})/chapters/(?P<id>[0-9]{1,18})/?$")
SHORT_CHAPTER_PATH = re.compile(r"^/chapters/(?P<id>[0-9]{1,18})/?$")  # the end-notes link
ISO_DAY = re.compile(r"(?<![0-9])([0-9]{4})-([0-9]{2})-([0-9]{2})(?![0-9])")
CHAPTERS_STAT = re.compile(r"^(?P<posted>[0-9][0-9,]*)/(?P<planned>[0-9][0-9,]*|\?)$")
# Cheap test before a page is parsed for an error heading: real pages rarely match it.
ERROR_SIGN = re.compile(
    r"Error\s+5[0-9]{2}|Retry later|Service\s+(?:Temporarily\s+)?Unavailable|Bad Gateway"
    r"|Gateway\s+Time-?out",
    re.IGNORECASE,
)
# AO3's own error pages ("Error 503 - Service unavailable", "Error 502"), its proxies'
# ("503 Service Temporarily Unavailable", "504 Gateway Time-out"), its throttle's text;
# not any heading that starts with a number ("500 Days of Summer").
ERROR_HEADING = re.compile(
    r"^(?:Error\s+5[0-9]{2}\b|5[0-9]{2}\s+(?:Service|Bad\s+Gateway|Gateway|Internal\s+Server"
    r"|Server|Backend|Origin)\b|Retry later\b)",
    re.IGNORECASE,
)
# C0 controls (but tab, newline, carriage return): no HTML text holds them, and lxml
# refuses them in text it has to rewrite (dropping a node joins its neighbours' text).
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TAG_KINDS = ("rating", "warning", "category", "fandom", "relationship", "character", "freeform")
FLAT_TAG_KINDS = ("fandom", "relationship", "character", "freeform")  # `tags`, in this order
# Above this many words the whole-work page could pass CRAWLER_MAX_PAGE_BYTES (16 MiB; AO3
# pages take about 7 bytes a word): such works are fetched a chapter page at a time.
FULL_WORK_MAX_WORDS = 500_000
# The work's preface (title, byline, summary, notes), not a chapter's nor the afterword.
WORKSKIN_PREFACE = '//div[@id="workskin"]/div[has-class("preface")][not(has-class("afterword"))]'
HEAD_NOTES = f'{WORKSKIN_PREFACE}/div[has-class("notes")]/blockquote[has-class("userstuff")]'
END_NOTES = '//div[@id="work_endnotes"]/blockquote[has-class("userstuff")]'
END_NOTES_LINK = f'{WORKSKIN_PREFACE}//a[contains(@href, "#work_endnotes")]/@href'
ADULT_GATE = '//div[@id="main"]/p[has-class("caution")]'
CHAPTER_BLOCKS = '//div[@id="chapters"]/div[has-class("chapter")][starts-with(@id, "chapter-")]'


class Ao3Adapter:
    """A work page, its chapter index (and its last chapter's page for the end notes),
    then every chapter's text from the whole-work page."""

    name = "ao3"
    display_name = "Archive of Our Own"
    hosts: tuple[str, ...] = HOSTS
    url_patterns: tuple[str, ...] = (
        "/works/<id>",
        "/works/<id>/chapters/<chapter id>",
        "/collections/<collection>/works/<id>",
    )
    example_url = "https://archiveofourown.org/works/123456"
    # AO3 throttles hard (429 and bans for fast clients): one request at a time, slowly.
    politeness = Politeness(download_delay=2.0, concurrent_requests=1)

    def fiction_ref(self, url: str, *, base: str) -> FictionRef:
        path = decoded_path(url)
        match = WORK_PATH.match(path)
        if match is None:
            raise invalid_url(
                url,
                path,
                expected="an AO3 work URL; use /works/<id>, "
                "/works/<id>/chapters/<chapter id> or /collections/<collection>/works/<id>",
            )
        site_id = str(int(match.group("id")))  # /works/0024 is work 24
        return FictionRef(site=self.name, site_id=site_id, url=f"{base}/works/{site_id}")

    def first_fetch(self, ref: FictionRef) -> Fetch:
        return Fetch(ref.url, "listing", label="work")

    def check_page(self, html: str, url: str) -> None:
        if not ERROR_SIGN.search(html):
            return
        page = _parsed(html)
        if _is_real_page(page):
            return
        heading = _error_heading(page)
        if heading is not None:
            raise RetryableFailure(f"AO3 answered with an error page ({heading}) for {url}")

    def read_listing(
        self, html: str, url: str, fetch: Fetch, known: NovelRecord | None
    ) -> ListingStep:
        page = _parsed(html)
        gate = _gate(page, url)
        if gate == "login":
            raise _restricted(fetch.url)
        if gate == "adult":
            return ListingStep(known, follow=(_past_adult_gate(url, fetch),))
        if fetch.label == "navigate":
            return ListingStep(_with_chapters(page, url, _known(known, url)))
        if fetch.label == "endnotes":
            novel = _with_end_notes(page, _known(known, url))
            return ListingStep(novel, follow=(_navigate(novel.url, novel.site_id),))
        return self._read_work(page, url, fetch)

    def chapter_fetches(self, novel: NovelRecord) -> tuple[Fetch, ...]:
        served = tuple(ref for ref in novel.chapters if not ref.locked)
        if not served:
            return ()
        if novel.word_count is not None and novel.word_count > FULL_WORK_MAX_WORDS:
            return tuple(
                Fetch(_link(ref.url, "?view_adult=true"), "chapters", refs=(ref,), label="chapter")
                for ref in served
            )
        whole = _link(novel.url, f"/works/{novel.site_id}?view_full_work=true&view_adult=true")
        return (Fetch(whole, "chapters", refs=served, label="full work"),)

    def parse_chapters(self, html: str, fetch: Fetch) -> list[ChapterRecord]:
        if not fetch.refs:
            return []
        page = _parsed(html)
        gate = _gate(page, fetch.url)
        if gate == "login":
            raise _restricted(fetch.url)
        if gate == "adult":
            raise ParseError(
                f"AO3 showed its adult content warning for {fetch.url} although "
                "view_adult=true was asked: no chapter text"
            )
        blocks = _chapter_blocks(page, fetch.url, _work_id(fetch))
        if not blocks and len(fetch.refs) <= 1:
            return [_single_chapter(page, ref) for ref in fetch.refs]
        return [_chapter(blocks, ref, fetch.url) for ref in fetch.refs]

    def _read_work(self, page: Selector, url: str, fetch: Fetch) -> ListingStep:
        title = _text(page.css("h2.title"))
        if not title:
            raise ParseError(f"{url} is not an AO3 work page: it has no work title{_said(page)}")
        site_id = self.fiction_ref(fetch.url, base="").site_id
        work_url = _link(fetch.url, f"/works/{site_id}")
        notes = FieldNotes()
        end_notes_page = _end_notes_page(page, site_id, work_url, notes)
        novel = _work(page, title=title, site_id=site_id, url=work_url, notes=notes)
        if end_notes_page is not None:
            return ListingStep(novel, follow=(end_notes_page,))
        return ListingStep(novel, follow=(_navigate(work_url, site_id),))


ADAPTER = Ao3Adapter()


# --- pages and gates ------------------------------------------------------------------


def _parsed(html: str) -> Selector:
    return Selector(text=CONTROLS.sub("", html), type="html")


def _text(nodes: SelectorList[Selector]) -> str:
    """The first node's text as a reader sees it, whitespace folded."""
    return reading_text(nodes[0].root) if nodes and not isinstance(nodes[0].root, str) else ""


def _texts(nodes: Iterable[Selector]) -> tuple[str, ...]:
    texts = (reading_text(n.root) for n in nodes if not isinstance(n.root, str))
    return tuple(t for t in texts if t)


def _said(page: Selector) -> str:
    """The page's own heading, to say in an error what AO3 sent instead."""
    heading = (_text(page.css("#main h2")) or _text(page.css("title")))[:120]
    return f" (the page says {heading!r})" if heading else ""


def _link(base: str, link: str) -> str:
    """A link built from a URL the crawl already fetched: always on its origin."""
    url = site_link(base, link, hosts=HOSTS)
    if url is None:  # only for a base that is no http(s) URL: a caller's bug
        raise ParseError(f"cannot build an AO3 address from {base!r} and {link!r}")
    return url


def _navigate(work_url: str, site_id: str) -> Fetch:
    return Fetch(_link(work_url, f"/works/{site_id}/navigate"), "listing", label="navigate")


def _is_real_page(page: Selector) -> bool:
    """A work, chapter, index, login or adult-warning page: not an error page."""
    return bool(
        page.css("dl.work.meta, ol.chapter.index, div#chapters, div#loginform")
        or page.xpath(ADULT_GATE)
    )


def _error_heading(page: Selector) -> str | None:
    system = page.xpath('//div[@id="main"][has-class("system")]')
    if system:
        h2, h3 = _text(system.css("h2")), _text(system.css("h3"))
        if ERROR_HEADING.match(h2):
            return f"{h2} - {h3}" if h3 and " - " not in h2 else h2
    for heading in _texts(page.css("title, h1, h2")):
        if ERROR_HEADING.match(heading):
            return heading
    body = _text(page.css("body"))
    return body if ERROR_HEADING.match(body) and len(body) < 80 else None


def _gate(page: Selector, url: str) -> str | None:
    """ "login" or "adult" when AO3 sent that page instead of the one asked for."""
    if page.css("dl.work.meta, ol.chapter.index"):
        return None
    if _path(url).rstrip("/") == "/users/login" or page.css("div#loginform"):
        return "login"
    return "adult" if page.xpath(ADULT_GATE) else None


def _path(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def _restricted(url: str) -> PermanentFailure:
    return PermanentFailure(
        f"{url} is restricted to logged-in AO3 users (AO3 answered with its login page); "
        "it cannot be ingested without an account"
    )


def _past_adult_gate(url: str, fetch: Fetch) -> Fetch:
    """The same page with view_adult=true: what AO3's "Yes, Continue" link asks for."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if ("view_adult", "true") in query:
        raise ParseError(
            f"AO3 kept showing its adult content warning for {url} although "
            "view_adult=true was asked"
        )
    asked = urlencode([*query, ("view_adult", "true")])
    return Fetch(_link(url, f"{parts.path}?{asked}"), "listing", label=fetch.label)


def _work_id(fetch: Fetch) -> str:
    """The work a chapters page belongs to: its chapters' URLs name it."""
    url = fetch.refs[0].url if fetch.refs else fetch.url
    try:
        return ADAPTER.fiction_ref(url, base="").site_id
    except InvalidURLError:
        raise ParseError(f"{url} is no AO3 work or chapter address") from None


def _known(known: NovelRecord | None, url: str) -> NovelRecord:
    if known is None:
        raise ParseError(f"{url} was read before the AO3 work page it belongs to")
    return known


# --- the work page --------------------------------------------------------------------


def _work(page: Selector, *, title: str, site_id: str, url: str, notes: FieldNotes) -> NovelRecord:
    meta = page.css("dl.work.meta")
    if not meta:
        notes.note("the work page has no work header (dl.work.meta): its tags and stats not read")
    groups = {kind: _tags(meta, kind) for kind in TAG_KINDS}
    posted, planned = _chapter_counts(meta, notes)
    status = None if posted is None else "completed" if posted == planned else "ongoing"
    novel = NovelRecord(
        site=ADAPTER.name,
        site_id=site_id,
        url=url,
        title=title,
        author=_author(page, notes),
        description=_description(page, url, notes),
        cover_url=None,  # AO3 works have no cover
        tags=tuple(tag for kind in FLAT_TAG_KINDS for tag in groups[kind]),
        status=status,
        word_count=_word_count(meta, notes),
        rating=None,  # AO3 has kudos and hits, no star rating
        volumes=(),
        chapters=(),
        content_warnings=groups["warning"],
        published_at=_stat_date(meta, "published", notes),
        tag_groups=_tag_groups(groups, _series(meta)),
        language=_language(meta, notes),
        content_rating=_content_rating(groups["rating"], notes),
        chapters_planned=planned,
        site_updated_at=_updated(meta, planned, notes),
        # head notes, and the end notes when this page holds them (a one-chapter work's)
        notes_html=clean_notes(_notes(page.xpath(f"{HEAD_NOTES} | {END_NOTES}")), base=url),
    )
    # taken last: each reader above may have added a line
    return replace(novel, parse_warnings=tuple(notes.lines))


def _tags(meta: SelectorList[Selector], kind: str) -> tuple[str, ...]:
    return _texts(meta.xpath(f'./dd[has-class("{kind}")]//a[has-class("tag")]'))


def _series(meta: SelectorList[Selector]) -> tuple[str, ...]:
    """ "Part 2 of <series>", one per series the work is in."""
    series = meta.xpath('./dd[has-class("series")]')
    return _texts(series.css("span.position")) or _texts(series)


def _tag_groups(
    groups: dict[str, tuple[str, ...]], series: tuple[str, ...]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    kinds = [(kind, groups[kind]) for kind in TAG_KINDS]
    return tuple((kind, tags) for kind, tags in [*kinds, ("series", series)] if tags)


def _author(page: Selector, notes: FieldNotes) -> str | None:
    """The byline as it reads: "A, B" for several creators; "Anonymous", "orphan_account"
    and "Name [archived by X]" are what the site states, kept as they are."""
    byline = re.sub(r"\s+,", ",", _text(page.css("h3.byline")))
    if not byline:
        notes.unread("author", "the work page has no byline")
    return byline or None


def _description(page: Selector, url: str, notes: FieldNotes) -> str | None:
    summary = page.xpath(f'{WORKSKIN_PREFACE}/div[has-class("summary")]/blockquote')
    described = clean_html(inner_html(summary[0]), base=url) if summary else ""
    if not described:
        notes.unread("description", "the work page has no summary")
    return described or None


def _content_rating(ratings: tuple[str, ...], notes: FieldNotes) -> str | None:
    if not ratings:
        notes.unread("content_rating", "the work header has no rating tag")
    return ", ".join(ratings) or None


def _language(meta: SelectorList[Selector], notes: FieldNotes) -> str | None:
    language = _text(meta.xpath('./dd[has-class("language")]'))
    if not language:
        notes.unread("language", "the work header states no language")
    return language or None


def _stat(meta: SelectorList[Selector], kind: str) -> SelectorList[Selector]:
    return meta.xpath(f'.//dd[has-class("{kind}")]')


def _word_count(meta: SelectorList[Selector], notes: FieldNotes) -> int | None:
    raw = _text(_stat(meta, "words"))
    words = parse_count(raw)
    if words is None:  # "6.095" or "6 095" in some locales: not a count we can be sure of
        why = f"{raw!r} is not a plain count" if raw else "the work header states no word count"
        notes.unread("word_count", why)
    return words


def _chapter_counts(
    meta: SelectorList[Selector], notes: FieldNotes
) -> tuple[int | None, int | None]:
    """(posted, planned) from "Chapters: 3/5"; planned is None for "3/?"."""
    raw = _text(_stat(meta, "chapters"))
    match = CHAPTERS_STAT.match(raw.replace(" ", ""))
    posted = parse_count(match.group("posted")) if match else None
    planned = parse_count(match.group("planned")) if match else None
    if posted is None:
        notes.unread("status", f"the work header's chapter count {raw!r} is not 'x/y'")
        notes.unread("chapters_planned", f"the work header's chapter count {raw!r} is not 'x/y'")
    elif planned is None and match and match.group("planned") != "?":
        notes.unread("chapters_planned", f"{match.group('planned')!r} chapters is not a count")
    return (posted, planned) if posted is not None else (None, None)


def _day(raw: str) -> datetime | None:
    """ "2021-12-26" (AO3's dates: a day, no time) as that day's midnight UTC."""
    match = ISO_DAY.search(raw)
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:  # 2021-02-30
        return None


def _stat_date(meta: SelectorList[Selector], kind: str, notes: FieldNotes) -> datetime | None:
    raw = _text(_stat(meta, kind))
    when = _day(raw)
    if when is None:
        field = "published_at" if kind == "published" else "site_updated_at"
        notes.unread(field, f"{raw!r} is not a date" if raw else f"no {kind} date on the page")
    return when


def _updated(
    meta: SelectorList[Selector], planned: int | None, notes: FieldNotes
) -> datetime | None:
    """The Updated/Completed date. AO3 states it only for works in chapters: a one-shot
    (1/1) has none to state, which is no field missing."""
    if not _stat(meta, "status") and planned == 1:
        return None
    return _stat_date(meta, "status", notes)


def _notes(blocks: Iterable[Selector]) -> list[str]:
    """The author's words in notes modules (their blockquotes): not the "(See the end of
    the work for notes.)" links, nor the gift and inspiration lines AO3 writes itself.
    As the page has them: markup.clean_notes sanitizes and joins them."""
    return [html for html in (inner_html(b) for b in blocks) if html]


def _end_notes_page(page: Selector, site_id: str, work_url: str, notes: FieldNotes) -> Fetch | None:
    """The last chapter's page, when the work has end notes this page does not hold: the
    head notes link there ("/chapters/<last chapter id>#work_endnotes")."""
    if page.xpath(END_NOTES):
        return None
    links = page.xpath(END_NOTES_LINK).getall()
    for link in links:
        chapter_id = _linked_chapter(work_url, link, site_id)
        if chapter_id is not None:
            url = _link(work_url, f"/works/{site_id}/chapters/{chapter_id}?view_adult=true")
            return Fetch(url, "listing", label="endnotes")
    if links:
        notes.note("work end notes not read: the page links to them but names no page of this work")
    return None


def _linked_chapter(base: str, link: str, site_id: str) -> str | None:
    """The chapter id in a link "/chapters/<id>" or "/works/<this work>/chapters/<id>"."""
    address = site_link(base, link, hosts=HOSTS)
    path = decoded_path(address) if address else ""
    short, full = SHORT_CHAPTER_PATH.match(path), CHAPTER_PATH.match(path)
    if full and parse_id(full.group("work")) != site_id:
        return None
    found = short or full
    return parse_id(found.group("id")) if found else None


def _with_end_notes(page: Selector, novel: NovelRecord) -> NovelRecord:
    end_notes = _notes(page.xpath(END_NOTES))
    if not end_notes:
        warning = "work end notes not read: the last chapter's page has none; not stored"
        return replace(novel, parse_warnings=(*novel.parse_warnings, warning))
    head = [novel.notes_html] if novel.notes_html else []  # sanitized, joined: kept so
    return replace(novel, notes_html=clean_notes([*head, *end_notes], base=novel.url))


# --- the chapter index ----------------------------------------------------------------


def _with_chapters(page: Selector, url: str, novel: NovelRecord) -> NovelRecord:
    if not page.css("ol.chapter.index"):
        raise ParseError(f"{url} is not an AO3 chapter index: no chapter list{_said(page)}")
    index = ChapterIndex(url, novel.site_id)
    chapters = index.read(page.css("ol.chapter.index > li"))
    if not chapters:
        raise ParseError(f"{url} lists no chapter of work {novel.site_id}")
    dates = [c.published_at for c in chapters if c.published_at is not None]
    return replace(
        novel,
        chapters=tuple(chapters),
        published_at=novel.published_at or (min(dates) if dates else None),
        parse_warnings=(*novel.parse_warnings, *index.report()),
    )


class ChapterIndex:
    """Turns `ol.chapter.index` rows into ChapterRefs, counting what it could not read."""

    def __init__(self, url: str, site_id: str) -> None:
        self.url, self.site_id = url, site_id
        self.seen: set[str] = set()
        self.skipped = self.doubled = self.undated = self.unnumbered = 0

    def read(self, rows: SelectorList[Selector]) -> list[ChapterRef]:
        refs: list[ChapterRef] = []
        for row in rows:
            chapter_id, chapter_url = self._target(row.css("a::attr(href)").get())
            if chapter_id is None or chapter_url is None:
                continue
            when = _day(_text(row.css("span.datetime")))
            self.undated += when is None
            refs.append(
                ChapterRef(
                    site_chapter_id=chapter_id,
                    url=chapter_url,
                    position=len(refs) + 1,
                    title=self._title(_text(row.css("a")), len(refs) + 1),
                    published_at=when,
                )
            )
        return refs

    def _target(self, href: str | None) -> tuple[str | None, str | None]:
        """The chapter id and its canonical URL, for a link to a chapter of this work;
        RefusedURLError for a link off the fiction's site."""
        address = chapter_link(self.url, href, hosts=HOSTS) if href else None
        chapter_id = _chapter_id(address, self.site_id) if address else None
        if chapter_id is None:
            self.skipped += 1
        elif chapter_id in self.seen:
            self.doubled += 1
        else:
            self.seen.add(chapter_id)
            return chapter_id, _link(self.url, f"/works/{self.site_id}/chapters/{chapter_id}")
        return None, None

    def _title(self, shown: str, position: int) -> str:
        """AO3 shows "3. <title>", or "3. Chapter 3" for an untitled chapter: the title is
        what follows its own number, which is the site's, not the author's."""
        prefix = f"{position}. "
        if shown.startswith(prefix):
            return shown[len(prefix) :].strip()
        self.unnumbered += 1
        return shown

    def report(self) -> list[str]:
        notes = FieldNotes()
        notes.chapters(
            (
                (self.skipped, "listed without a link to a chapter of this work: skipped"),
                (self.doubled, "listed twice: the first listing kept"),
                (self.undated, "published_at not read; stored as null"),
                (self.unnumbered, "listed without their 'N. ' number: title kept as listed"),
            )
        )
        return notes.lines


# --- chapter text ---------------------------------------------------------------------


def _chapter_id(address: str, site_id: str) -> str | None:
    """The id in a chapter URL of this work (/works/<site_id>/chapters/<id>), or None."""
    match = CHAPTER_PATH.match(decoded_path(address))
    if match is None or parse_id(match.group("work")) != site_id:
        return None
    return parse_id(match.group("id"))


def _chapter_blocks(page: Selector, url: str, site_id: str) -> dict[str, Selector]:
    """Each `div.chapter` of the page by the chapter id its title links to."""
    blocks: dict[str, Selector] = {}
    for block in page.xpath(CHAPTER_BLOCKS):
        href = block.xpath('./div[has-class("preface")]/h3[has-class("title")]/a/@href').get()
        address = site_link(url, href, hosts=HOSTS) if href else None
        chapter_id = _chapter_id(address, site_id) if address else None
        if chapter_id is not None:
            blocks.setdefault(chapter_id, block)
    return blocks


def _chapter(blocks: dict[str, Selector], ref: ChapterRef, url: str) -> ChapterRecord:
    block = blocks.get(ref.site_chapter_id)
    body = block.xpath('./div[has-class("userstuff")]') if block is not None else []
    if block is None or not body:
        raise ParseError(f"{url} has no text for chapter {ref.site_chapter_id} ({ref.url})")
    # summary, head notes, end notes: the chapter's preface groups, before and after
    notes = _notes(block.xpath('./div[has-class("preface")]//div[has-class("module")]/blockquote'))
    return _record(ref, body[0], notes)


def _single_chapter(page: Selector, ref: ChapterRef) -> ChapterRecord:
    """A one-chapter work's page: the text in `div#chapters > div.userstuff`, no chapter
    block, no chapter notes (AO3 shows the work's notes, which the novel keeps)."""
    body = page.xpath('//div[@id="chapters"]/div[has-class("userstuff")]')
    if not body:
        raise ParseError(f"the AO3 work page for {ref.url} has no chapter text")
    return _record(ref, body[0], [])


def _record(ref: ChapterRef, body: Selector, notes: list[str]) -> ChapterRecord:
    # "Chapter Text" headings and template comments ("<!-- end cache -->") are the site's:
    # AO3 strips comments from what authors post, so none in the text is the author's.
    for node in body.xpath('./h3[has-class("landmark")] | .//comment()'):
        node.drop()
    return story_record(ref, body, notes=notes)
