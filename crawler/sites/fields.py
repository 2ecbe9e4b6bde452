"""Reading fields off a page: what the page states, or None and a warning, never a guess.

Every adapter reads its fields through these helpers, so that a field it cannot read
becomes null in the store and one line in the job's `warnings`, and a number it reads is
one the database can hold.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from lxml import etree
from lxml import html as lxml_html
from parsel import Selector

from crawler.items import ChapterRecord, ChapterRef
from crawler.sites.markup import clean_html, clean_notes
from errors import InvalidURLError, RefusedURLError

INT_MAX = 2**31 - 1  # the largest value of an INTEGER column (PostgreSQL's int4)

# A count as the sites print it: 782406 or 782,406 (ASCII digits only).
COUNT = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+")


class FieldNotes:
    """The warnings of one page: which fields were not read, and why."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def unread(self, field: str, why: str) -> None:
        self.lines.append(f"{field} not read: {why}; stored as null")

    def note(self, line: str) -> None:
        self.lines.append(line)

    def chapters(self, counted: Iterable[tuple[int, str]]) -> None:
        """One line per kind of table-of-contents entry not read whole: "3 chapters ..."."""
        self.lines.extend(f"{count} chapters {what}" for count, what in counted if count)


def parse_count(raw: str | None) -> int | None:
    """An exact count ("782,406", "782406") as an int the database holds; else None."""
    text = (raw or "").strip()
    if not COUNT.fullmatch(text):
        return None
    value = int(text.replace(",", ""))
    return value if value <= INT_MAX else None


def parse_number(raw: object) -> float | None:
    """A finite decimal number ("4.898785", 4.9), or None."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        value = float(raw) if isinstance(raw, int | float | str) else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_id(raw: object) -> str | None:
    """A site's numeric id in its canonical form ("0024" -> "24"), or None."""
    text = str(raw).strip() if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return str(int(text))


# A digit of another script: Arabic-Indic, full-width (U+FF10-FF19), Devanagari ... (\d in
# Python's re matches every decimal digit; [0-9] only the ASCII ones).
FOREIGN_DIGIT = re.compile(r"(?![0-9])\d")


def decoded_path(url: str) -> str:
    """The path of `url` as the site reads it, percent-escapes decoded (/%31%32 is /12)."""
    try:
        return unquote(urlsplit(url.strip()).path)
    except ValueError:
        return ""


def invalid_url(url: str, path: str, *, expected: str) -> InvalidURLError:
    """The error for a URL whose path names no fiction: "<url> is not <expected>", or,
    when the path writes a number in other digits than ASCII 0-9, that. Ids are ASCII
    digits: a site does not read "/fiction/١٢" as fiction 12, so such a URL is refused,
    not normalized."""
    foreign = FOREIGN_DIGIT.search(path)
    if foreign is None:
        return InvalidURLError(f"{url} is not {expected}")
    digit = foreign.group()
    return InvalidURLError(
        f"{url} is not {expected}: ids are written in ASCII digits (0-9), "
        f"not {digit!r} (U+{ord(digit):04X})"
    )


# Elements that break a line where they start and end; every other element is inline, and
# text on both sides of an inline boundary is one word ("J<em>olasin</em>" is "Jolasin").
BREAKING = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
UNREAD = frozenset({"script", "style", "template"})


def reading_text(root: Any) -> str:
    """The text of an lxml element as a reader sees it, whitespace folded.

    Iterative (lxml's iterwalk), so a page nested thousands deep cannot exhaust the stack.
    """
    parts: list[str] = []
    unread = 0  # depth inside script/style: their text is not read
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if event == "start":
            unread += tag in UNREAD
            parts.append(" " if tag in BREAKING else "")
            if tag and not unread:
                parts.append(element.text or "")
            continue
        unread -= tag in UNREAD
        parts.append(" " if tag in BREAKING else "")
        if element is not root and not unread:
            parts.append(element.tail or "")
    return " ".join("".join(parts).split())


def site_link(base: str, link: str, *, hosts: Collection[str]) -> str | None:
    """`link` as a URL to fetch: absolute on `base`, http(s), on base's host or one of the
    site's own `hosts`, and rebased onto base's scheme://host[:port] (so a fiction reached
    through an alias, a mirror or a test server, is crawled there, never on the real host).
    None for anything else: another host, another scheme, no URL at all.
    """
    link = link.strip()
    if PLAIN_PATH.fullmatch(link):  # most links of a listing: the same answer, quicker
        rebased = _origin(base)
        if rebased is not None:
            return f"{rebased}{link}"
    return joined_link(base, link, hosts=hosts)


def joined_link(base: str, link: str, *, hosts: Collection[str]) -> str | None:
    """site_link the long way, for any link: joined on `base` by urljoin, then checked."""
    try:
        joined = urlsplit(urljoin(base, link.strip()))
        origin = urlsplit(base)
        same_origin = joined.hostname == origin.hostname and joined.port == origin.port
    except ValueError:  # e.g. "http://[abc/": no URL at all
        return None
    if joined.scheme not in ("http", "https") or not joined.hostname:
        return None
    if not same_origin and joined.hostname not in hosts:
        return None
    return urlunsplit((origin.scheme, origin.netloc, joined.path or "/", joined.query, ""))


# An absolute path of plain segments (no dot segment, query, fragment, backslash or
# empty segment): joined on any http(s) base it is that base's scheme://host[:port] and
# this path unchanged, which joined_link works out with urljoin for every link.
PLAIN_PATH = re.compile(r"/[A-Za-z0-9_~%-]+(?:/[A-Za-z0-9_~%-]+)*/?")


@lru_cache(maxsize=64)
def _origin(base: str) -> str | None:
    """scheme://netloc of an http(s) `base` with a host, as site_link rebases onto; None
    for anything else (site_link then decides the long way)."""
    try:
        parts = urlsplit(base)
        _ = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc}"


OFF_SITE = "not on the fiction's site"


def chapter_link(base: str, link: str, *, hosts: Collection[str]) -> str:
    """A chapter link of a listing as site_link makes it; RefusedURLError for a link off
    the fiction's site (another host or port, file:, javascript:, no URL at all): a listed
    chapter the crawl will not fetch means the novel cannot be stored whole."""
    url = site_link(base, link, hosts=hosts)
    if url is None:
        raise RefusedURLError(_absolute(base, link), OFF_SITE)
    return url


def _absolute(base: str, link: str) -> str:
    try:
        return urljoin(base, link.strip())
    except ValueError:
        return link.strip()


# A word: letters or digits, with inner apostrophes or hyphens ("don't", "well-known").
WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")


def inner_html(node: Selector) -> str:
    """The markup inside an element, without the element's own tags."""
    html = node.get()
    start, end = html.find(">") + 1, html.rfind("<")
    return html[start:end].strip() if 0 < start <= end else ""


def count_words(html: str) -> int:
    """The words of an HTML fragment as a reader reads them (see reading_text)."""
    if not html.strip():
        return 0
    return len(WORD.findall(reading_text(lxml_html.fragment_fromstring(html, create_parent="div"))))


def story_record(
    ref: ChapterRef, story: Selector, *, notes: Iterable[str], title: str | None = None
) -> ChapterRecord:
    """The record of a chapter whose story element is `story` (already stripped of what is
    not story text) and whose author notes are `notes`: the story's inner HTML and the
    notes sanitized (markup.clean_html), then the words of that HTML as a reader reads
    them and its hash, so that the hash describes the text stored."""
    content = clean_html(inner_html(story), base=ref.url)
    return ChapterRecord(
        site_chapter_id=ref.site_chapter_id,
        url=ref.url,
        position=ref.position,
        title=title if title is not None else ref.title,
        volume=ref.volume,
        published_at=ref.published_at,
        content_html=content,
        author_notes_html=clean_notes(notes, base=ref.url),
        word_count=count_words(content),
        content_hash=hashlib.sha256(content.encode("utf-8")).hexdigest(),
    )
