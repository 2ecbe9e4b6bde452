"""What stored HTML may hold: an allow-list fitting fiction as the three sites write it.

Chapter text, author notes and descriptions are cleaned with nh3 (the ammonia sanitizer)
where records are built, before their hash and word count, so a stored hash describes the
stored text; the store checks again (`is_clean`) before a row is written.

Kept: paragraphs, line breaks, emphasis, headings, block quotes, rules, lists, tables
(LitRPG status screens, with colspan/rowspan), figures, details/summary, links (http(s)
and mailto, with rel="noopener noreferrer nofollow"), images (http(s) only), spans and
divs without attributes, and the sites' spoiler boxes (Royal Road's `div.spoiler-new`
with its caption, Scribble Hub's `div.sp-wrap`: readers see a button, not the text).
Every element that breaks a line for a reader (fields.BREAKING) is kept, so no two words
run together where a tag is dropped.

Dropped: scripts, styles and templates with their content; event handlers, iframes,
forms, objects, embeds, base, meta; ids and classes (Royal Road's random per-paragraph
classes among them); javascript:, data: and every other scheme. Relative URLs are made
absolute on the page they came from.

Style: only `text-align` with a keyword (left, right, center, justify), on paragraphs,
headings and table cells, as `style` or `align`. Authors centre scene breaks and headings
with it; it takes no URL, so it can load nothing, and it cannot move or cover the page
around the text. Every other property goes: the sites' editors write font sizes and
families, margins and widths that say nothing about the story, and properties such as
`background: url(...)` or `position: fixed` are how styled HTML leaks a reader's visit
or dresses itself up as the page around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

import nh3

from errors import clean_text

NOTES_SEPARATOR = "\n<hr/>\n"  # between notes: a sanitized part never holds "<hr/>"
LINK_REL = "noopener noreferrer nofollow"
URL_SCHEMES = frozenset({"http", "https", "mailto"})  # src: http(s) only, see _attribute
IMAGE_SCHEMES = frozenset({"http", "https"})
ALIGNMENTS = frozenset({"left", "right", "center", "justify"})
ALIGNED = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th")
CELLS = ("td", "th")
UNREAD = frozenset({"script", "style", "template"})  # dropped with all they hold

TAGS = frozenset(
    {
        *("p", "br", "hr", "blockquote", "pre", "code", "span", "div"),
        *("em", "strong", "i", "b", "u", "s", "strike", "del", "ins", "sub", "sup", "small"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "abbr", "cite", "q", "mark", "center"),
        *("ul", "ol", "li", "dl", "dt", "dd"),
        *("table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "colgroup", "col"),
        *("a", "img", "figure", "figcaption", "details", "summary"),
        # elements that break a line (fields.BREAKING): dropping one would join two words
        *("address", "article", "aside", "footer", "header", "main", "nav", "section"),
    }
)
ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "div": {"class", "data-caption"},  # a spoiler box: its class and button text
    "ol": {"start"},
    **{tag: {"style"} for tag in ALIGNED if tag not in CELLS},
    **{cell: {"style", "colspan", "rowspan"} for cell in CELLS},
}
ALIGN_VALUES = {tag: {"align": set(ALIGNMENTS)} for tag in ALIGNED}
# Spoiler boxes, the only classes that mean something off the site: Royal Road's
# (div.spoiler-new, data-caption) and Scribble Hub's (div.sp-wrap > .sp-head + .sp-body).
SPOILER_CLASSES = ("spoiler-new", "spoiler", "sp-wrap", "sp-head", "sp-body")


def _alignment(style: str) -> str | None:
    """ "text-align: <keyword>" if `style` states one, else None (the attribute goes)."""
    kept = None
    for declaration in style.split(";"):
        name, _, value = declaration.partition(":")
        if name.strip().lower() == "text-align" and value.strip().lower() in ALIGNMENTS:
            kept = f"text-align:{value.strip().lower()}"  # as nh3 writes it
    return kept


def _scheme(url: str) -> str:
    try:
        return urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return ""


def _attribute(tag: str, name: str, value: str) -> str | None:
    """nh3's attribute filter: what the allow-list cannot say by tag and name alone."""
    if name == "style":
        return _alignment(value)
    if name == "class":
        kept = dict.fromkeys(c for c in value.split() if c in SPOILER_CLASSES)
        return " ".join(kept) or None
    if name == "src" and _scheme(value) not in IMAGE_SCHEMES | {""}:
        return None  # an image from mailto: is no image
    return value


@lru_cache(maxsize=64)
def _cleaner(base: str | None) -> nh3.Cleaner:
    """The sanitizer for a page (`base`: its URL); built once per page, not once per
    fragment: a chapter's text and its notes share one, and every store check the one
    of no base. A Cleaner holds only its settings, so one serves any number of calls."""
    relative: tuple[Literal["rewrite_with_base"], str] | Literal["deny"] = (
        ("rewrite_with_base", base) if base and http_url(base) else "deny"
    )
    return nh3.Cleaner(
        tags=set(TAGS),
        clean_content_tags=set(UNREAD),
        attributes=ATTRIBUTES,
        attribute_filter=_attribute,
        strip_comments=True,
        link_rel=LINK_REL,
        tag_attribute_values=ALIGN_VALUES,
        url_schemes=set(URL_SCHEMES),
        filter_style_properties={"text-align"},
        url_relative=relative,
    )


def _once(cleaner: nh3.Cleaner, html: str) -> str:
    # U+00A0 as the character, as lxml writes it: the same text, the same hash as before
    return cleaner.clean(clean_text(html)).replace("&nbsp;", "\xa0")


def clean_html(html: str, *, base: str | None) -> str:
    """`html` with only what the allow-list keeps; relative URLs made absolute on `base`
    (the page's URL; dropped without one). Cleaned until cleaning changes nothing, so the
    result is what `is_clean` accepts."""
    cleaner, cleaned = _cleaner(base), html
    for _ in range(3):
        again = _once(cleaner, cleaned)
        if again == cleaned:
            break
        cleaned = again
    return cleaned


def clean_notes(parts: Iterable[str], *, base: str | None) -> str | None:
    """Notes, each cleaned, the empty ones dropped, joined by NOTES_SEPARATOR; or None.
    A part may be notes already joined (stored notes, the head notes before the end
    notes): each of its parts is cleaned on its own, so the separators stay."""
    split = (piece for part in parts for piece in part.split(NOTES_SEPARATOR))
    cleaned = [clean_html(piece, base=base) for piece in split]
    return NOTES_SEPARATOR.join(piece for piece in cleaned if piece.strip()) or None


def is_clean(html: str) -> bool:
    """Whether `html` is what clean_html gives: nothing to drop, no relative URL."""
    return _once(_cleaner(None), html) == html


def notes_are_clean(notes: str) -> bool:
    return all(part.strip() and is_clean(part) for part in notes.split(NOTES_SEPARATOR))


def http_url(url: str) -> str | None:
    """`url` if it is an absolute http(s) URL with a host (and a port that is a port)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port out of range or not a number
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None
