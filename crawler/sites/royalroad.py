"""Royal Road: fiction and chapter pages as the site serves them (legacy layout, 2025-26).

Pure functions of HTML (parsel, Scrapy's selectors); no I/O. Markup notes live in the
shared fixtures' README: chapter rows in reading order, dates in `time[unixtime]`,
volumes in the inline `window.volumes`, a per-page hidden anti-piracy class declared in a
`<style>` (`display: none`), author notes in `.author-note-portlet` beside the story.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from parsel import Selector, SelectorList

from crawler.items import ChapterRecord, ChapterRef, FictionRef, NovelRecord, VolumeRecord
from errors import InvalidURLError, ParseError

# Ids are at most 18 digits: the site's are 6-7, and a longer one is not a fiction anyone has.
FICTION_PATH = re.compile(
    r"^/fiction/(?P<id>\d{1,18})(?:/[^/]*)?(?:/chapter/\d{1,18}(?:/[^/]*)?)?/?$"
)
CHAPTER_ID = re.compile(r"/chapter/(?P<id>\d+)")
STATUSES = {"completed", "ongoing", "hiatus", "stub", "dropped", "inactive"}
HIDDEN_RULE = re.compile(r"\.([A-Za-z_][\w-]*)\s*\{[^}]*display\s*:\s*none", re.IGNORECASE)
WINDOW_ARRAY = r"window\.{name}\s*=\s*(\[.*?\])\s*;"
WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
NOTES_SEPARATOR = "\n<hr/>\n"


class RoyalRoadAdapter:
    name = "royalroad"
    display_name = "Royal Road"
    hosts: tuple[str, ...] = ("www.royalroad.com", "royalroad.com")
    example_url = "https://www.royalroad.com/fiction/12345/some-fiction"

    def fiction_ref(self, url: str, *, base: str) -> FictionRef:
        match = FICTION_PATH.match(urlsplit(url.strip()).path)
        if match is None:
            raise InvalidURLError(
                f"{url} is not a Royal Road fiction URL; use /fiction/<id>[/<slug>] "
                "or a chapter URL /fiction/<id>/<slug>/chapter/<chapter id>/<slug>"
            )
        site_id = match.group("id")
        return FictionRef(site=self.name, site_id=site_id, url=f"{base}/fiction/{site_id}")

    def parse_fiction(self, html: str, url: str) -> NovelRecord:
        page = Selector(text=html)
        title = _text(page.css(".fic-header h1"))
        if not title:
            raise ParseError(f"{url} is not a Royal Road fiction page: it has no fiction title")
        volumes = _volumes(html)
        chapters = _chapters(page, html, url, {v.site_volume_id: v.title for v in volumes})
        if chapters is None:
            raise ParseError(f"{url} is not a Royal Road fiction page: it has no chapter list")
        dates = [c.published_at for c in chapters if c.published_at is not None]
        return NovelRecord(
            site=self.name,
            site_id=self.fiction_ref(url, base="").site_id,
            url=url,
            title=title,
            author=_author(page),
            description=_description(page),
            cover_url=_cover(page, url),
            tags=tuple(_texts(page.css(".fiction-info .tags a.fiction-tag"))),
            status=_status(page),
            word_count=_word_count(page),
            rating=_float(page.css('meta[property="books:rating:value"]::attr(content)').get()),
            volumes=volumes,
            chapters=tuple(chapters),
            warnings=_warnings(page),
            published_at=min(dates) if dates else None,
        )

    def parse_chapter(self, html: str, ref: ChapterRef) -> ChapterRecord:
        page = Selector(text=html)
        body = page.css("div.chapter-inner.chapter-content")
        if not body:
            raise ParseError(f"chapter page {ref.url} has no chapter text")
        notes = _author_notes(page)  # before the body is stripped: a note may sit inside it
        title = ref.title or _text(page.css(".fic-header h1"))
        story = _strip(body[0], _hidden_classes(page))
        content = _inner_html(story)
        return ChapterRecord(
            site_chapter_id=ref.site_chapter_id,
            url=ref.url,
            position=ref.position,
            title=title,
            volume=ref.volume,
            published_at=ref.published_at,
            content_html=content,
            author_notes_html=notes,
            word_count=len(WORD.findall(" ".join(story.css("::text").getall()))),
            content_hash=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        )


ADAPTER = RoyalRoadAdapter()


# --- fiction page ---------------------------------------------------------------------


def _text(nodes: SelectorList[Selector]) -> str:
    return " ".join(" ".join(nodes[:1].css("::text").getall()).split()) if nodes else ""


def _texts(nodes: SelectorList[Selector]) -> list[str]:
    return [t for t in (" ".join(" ".join(n.css("::text").getall()).split()) for n in nodes) if t]


def _author(page: Selector) -> str | None:
    link = _text(page.css('.fic-header a[href^="/profile/"]'))
    meta = page.css('meta[property="books:author"]::attr(content)').get()
    return link or (meta.strip() if meta else None) or _json_ld(page).get("author_name")


def _json_ld(page: Selector) -> dict[str, str | None]:
    for raw in page.css('script[type="application/ld+json"]::text').getall():
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("@type") == "Book":
            author = data.get("author")
            name = author.get("name") if isinstance(author, dict) else None
            return {"author_name": name, "description": data.get("description")}
    return {}


def _description(page: Selector) -> str | None:
    node = page.css(".fiction-info .description .hidden-content")
    if node:
        return _inner_html(node[0]) or None
    return (
        _json_ld(page).get("description")
        or page.css('meta[property="og:description"]::attr(content)').get()
    )


def _cover(page: Selector, url: str) -> str | None:
    src = page.css(".fic-header img.thumbnail::attr(src)").get()
    src = src or page.css('meta[property="og:image"]::attr(content)').get()
    return urljoin(url, src.strip()) if src else None


def _status(page: Selector) -> str | None:
    for label in _texts(page.css("span.label")):
        if label.lower() in STATUSES:
            return label.lower()
    return None


def _warnings(page: Selector) -> tuple[str, ...]:
    for strong in page.css("strong"):
        if "warning" in " ".join(strong.css("::text").getall()).lower():
            items = strong.xpath("following::ul[1]/li")
            return tuple(_texts(items))
    return ()


def _word_count(page: Selector) -> int | None:
    raw = page.css('i[title="Story Length"]::attr(data-content)').get()
    digits = re.sub(r"[^\d]", "", raw or "")
    return int(digits) if digits else None


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _volumes(html: str) -> tuple[VolumeRecord, ...]:
    raw = _window_array(html, "volumes")
    volumes = [
        VolumeRecord(str(v["id"]), str(v.get("title") or ""), int(v.get("order") or 0))
        for v in raw
        if isinstance(v, dict) and "id" in v
    ]
    return tuple(sorted(volumes, key=lambda v: v.order))


def _window_array(html: str, name: str) -> list[object]:
    match = re.search(WINDOW_ARRAY.format(name=name), html, re.DOTALL)
    if match is None:
        return []
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _chapters(
    page: Selector, html: str, url: str, volumes: dict[str, str]
) -> list[ChapterRef] | None:
    if page.css("table#chapters"):
        rows = page.css("table#chapters tbody tr.chapter-row[data-url]")
        return [_row_ref(row, n, url, volumes) for n, row in enumerate(rows, start=1)]
    scripted = [c for c in _window_array(html, "chapters") if isinstance(c, dict)]
    if scripted:
        return [_script_ref(c, n, url, volumes) for n, c in enumerate(scripted, start=1)]
    return None


def _row_ref(row: Selector, position: int, url: str, volumes: dict[str, str]) -> ChapterRef:
    chapter_url = urljoin(url, row.attrib["data-url"])
    return ChapterRef(
        site_chapter_id=_chapter_id(chapter_url),
        url=chapter_url,
        position=position,
        title=_text(row.css("td:first-child a")) or _text(row.css("td")),
        volume=volumes.get(row.attrib.get("data-volume-id", "null")),
        published_at=_row_date(row),
    )


def _script_ref(
    chapter: dict[str, object], position: int, url: str, volumes: dict[str, str]
) -> ChapterRef:
    chapter_url = urljoin(url, str(chapter.get("url") or ""))
    date = chapter.get("date")
    return ChapterRef(
        site_chapter_id=str(chapter.get("id") or _chapter_id(chapter_url)),
        url=chapter_url,
        position=position,
        title=" ".join(str(chapter.get("title") or "").split()),
        volume=volumes.get(str(chapter.get("volumeId"))),
        published_at=_iso_date(str(date)) if date else None,
    )


def _chapter_id(url: str) -> str:
    match = CHAPTER_ID.search(url)
    if match is None:
        raise ParseError(f"chapter link {url} has no chapter id")
    return match.group("id")


def _row_date(row: Selector) -> datetime | None:
    unix = row.css("time::attr(unixtime)").get()
    if unix and unix.strip().isdigit():
        return datetime.fromtimestamp(int(unix), tz=UTC)
    stamp = row.css("time::attr(datetime)").get()
    return _iso_date(stamp) if stamp else None


def _iso_date(raw: str) -> datetime | None:
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", raw.strip())
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- chapter page ---------------------------------------------------------------------


def _hidden_classes(page: Selector) -> set[str]:
    return {m for css in page.css("style::text").getall() for m in HIDDEN_RULE.findall(css)}


def _is_hidden(node: Selector, hidden: set[str]) -> bool:
    return bool(hidden & set((node.attrib.get("class") or "").split()))


def _drop_hidden(node: Selector, hidden: set[str]) -> None:
    for element in node.xpath(".//*[@class]"):
        if _is_hidden(element, hidden):
            element.drop()


def _strip(body: Selector, hidden: set[str]) -> Selector:
    """The story alone: drop, in place, the hidden anti-piracy lines and any author note."""
    if hidden:
        _drop_hidden(body, hidden)
    for note in body.css(".author-note-portlet"):
        note.drop()
    return body


def _inner_html(node: Selector) -> str:
    html = node.get()
    start, end = html.find(">") + 1, html.rfind("<")
    return html[start:end].strip() if 0 < start <= end else ""


def _author_notes(page: Selector) -> str | None:
    notes = [
        _inner_html(n.css(".author-note")[0]) if n.css(".author-note") else _inner_html(n)
        for n in page.css("div.portlet.author-note-portlet")
    ]
    notes = [n for n in notes if n]
    return NOTES_SEPARATOR.join(notes) if notes else None
