"""A stored novel as an EPUB 3 book, built on request and cached until the novel changes.

The book holds what the store knows and nothing made up: title, author, description,
tags (as subjects), the source URL (as identifier and source), the cover's URL (in the
metadata and on the title page: the API never fetches from a site) and the language only
when the site states it as a language tag ("und", undetermined, otherwise). Then the
chapters in reading order, grouped under a page per volume where the novel has volumes
(the table of contents nested the same way), each chapter's author notes after its text
in boxes of their own, styled apart.

Chapters the site no longer lists (removed) are left out: the book is the novel as the
site shows it now. A locked chapter is kept in its place: with the text stored before it
was locked, or as a short page saying the site does not serve it, with its link.

Stored HTML is already sanitized (crawler/sites/markup.py); here it is made valid EPUB
XHTML: obsolete elements and attributes (center, strike, align) become their CSS, remote
images (which an EPUB may not load) become links to them, and characters XML forbids go.

Memory: only the chapters' listings are read up front; their text is read in batches of
TEXT_BATCH while ebooklib writes the book, each chapter's text dropped once written.

The file is named by the novel's id and a fingerprint of everything the book is made of
(FORMAT, the novel's fields, every chapter's id and updated_at), written to a temporary
file and moved into place (os.replace), so a reader never gets half a book; the older
books of the same novel are removed then.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ebooklib import epub
from lxml import etree, html
from sqlalchemy import select
from sqlalchemy.orm import Session

import novels
from config import Settings
from crawler.sites.markup import NOTES_SEPARATOR
from models import Chapter, Novel
from models.base import utcnow

FORMAT = "1"  # the book's layout: a change here makes every cached book stale
MEDIA_TYPE = "application/epub+zip"
TEXT_BATCH = 200  # chapters' text read from the database at once while writing
TEMP_GRACE = 3600.0  # s: a temporary file older than this is left from a crashed build
STALE_GRACE = 600  # seconds an older book of a novel is kept after a newer one is built
UNDETERMINED = "und"  # BCP 47: the language is not known
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
# Characters XML 1.0 does not allow (tab, newline and carriage return it does).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
UNSAFE_IN_NAME = re.compile(r"[^\w.]+")  # a run of them, hyphens too, is one "-"
WRITE_OPTIONS = {
    "epub3_pages": False,  # a page list would parse every chapter up front
    "raise_exceptions": True,
}
STYLE = """\
body { line-height: 1.5; }
h1.novel-title { text-align: center; margin-top: 2em; }
p.byline { text-align: center; font-style: italic; }
h1.volume-title { text-align: center; margin-top: 30%; }
h2.chapter-title { margin-bottom: 1em; }
div.author-note {
  margin: 1.5em 0; padding: 0.5em 1em; border-left: 0.25em solid #888;
  background: #f2f2f2; font-size: 0.9em;
}
p.author-note-label { font-weight: bold; margin: 0 0 0.5em 0; }
p.unavailable { font-style: italic; }
dl.about dt { font-weight: bold; }
"""


@dataclass(frozen=True)
class Listed:
    """A chapter's place in the book, without its text."""

    id: int
    position: int
    title: str
    volume: str | None
    url: str
    locked: bool


@dataclass(frozen=True)
class Book:
    """A built book on disk."""

    path: Path
    version: str  # the fingerprint: also the HTTP ETag
    filename: str  # what a download is called


def version(session: Session, novel: Novel) -> str:
    """The fingerprint of what a book of `novel` holds now: equal while nothing in it
    changed (a refresh that finds nothing new keeps it)."""
    digest = hashlib.sha256(FORMAT.encode())
    digest.update(json.dumps(_book_fields(novel), sort_keys=True, default=str).encode())
    stamps = select(Chapter.id, Chapter.updated_at).where(Chapter.novel_id == novel.id)
    for chapter_id, updated_at in session.execute(stamps.order_by(Chapter.id)):
        digest.update(f"{chapter_id}:{updated_at.isoformat()};".encode())
    return digest.hexdigest()[:32]


def etag(current: str) -> str:
    return f'"{current}"'


def names_version(if_none_match: str | None, current: str) -> bool:
    """Whether an If-None-Match header names this version of the book (or any: "*")."""
    tags = [tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")]
    return "*" in tags or etag(current) in tags


def _book_fields(novel: Novel) -> dict[str, Any]:
    names = ("id", "site", "site_novel_id", "url", "title", "author", "description")
    more = ("cover_url", "tags", "status", "language", "notes_html", "published_at")
    return {name: getattr(novel, name) for name in names + more}


def export_novel(session: Session, novel_id: int, *, settings: Settings) -> Book:
    """The book of a stored novel, built unless the cache has it (NotFoundError if there
    is no such novel)."""
    novel = novels.get_novel(session, novel_id)
    return cached_book(session, novel, current=version(session, novel), settings=settings)


def cached_book(session: Session, novel: Novel, *, current: str, settings: Settings) -> Book:
    """The book of `novel` at version `current`: from the cache, or built into it."""
    path = Path(settings.export_cache_dir) / f"{novel.id}-{current}.epub"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(session, novel, path)
        _remove_stale(path, novel_id=novel.id)
    return Book(path=path, version=current, filename=download_name(novel))


def _write_atomically(session: Session, novel: Novel, path: Path) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{novel.id}-", suffix=".tmp")
    os.close(handle)
    try:
        write_book(session, novel, Path(temporary))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _remove_stale(current: Path, *, novel_id: int) -> None:
    """Older books of the novel, once no download can still be about to send them (a
    request that found one a moment ago opens it after this build), and temporary files
    left by builds that crashed."""
    for other in current.parent.glob(f"{novel_id}-*.epub"):
        if other != current and time.time() - other.stat().st_mtime > STALE_GRACE:
            other.unlink(missing_ok=True)
    for temporary in current.parent.glob(f".{novel_id}-*.tmp"):
        if time.time() - temporary.stat().st_mtime > TEMP_GRACE:
            temporary.unlink(missing_ok=True)


def download_name(novel: Novel) -> str:
    """A file name from the title: letters, digits, '.', '-' and '_' only."""
    stem = UNSAFE_IN_NAME.sub("-", novel.title).strip("-.")[:100].rstrip("-.")
    return f"{stem or f'novel-{novel.id}'}.epub"


def language_tag(novel: Novel) -> str:
    """The site's language if it states it as a BCP 47 tag; "und" otherwise (a site's
    language name, such as AO3's "English", is not one)."""
    stated = (novel.language or "").strip()
    return stated if LANGUAGE_TAG.fullmatch(stated) else UNDETERMINED


def write_book(session: Session, novel: Novel, target: Path) -> None:
    """Write the EPUB of `novel` to `target`."""
    book = _book(novel)
    style = epub.EpubItem(uid="style", file_name="style.css", media_type="text/css", content=STYLE)
    book.add_item(style)
    title_page = _page(book, style, uid="title", file_name="title.xhtml", title=novel.title)
    title_page.content = _title_document(novel)
    listing = _listing(session, novel.id)
    texts = Texts(session, [c.id for c in listing])
    toc, spine = _chapters(book, style, listing, texts, site=novel.site)
    book.toc = [title_page, *toc]
    book.add_item(epub.EpubNcx())
    nav = epub.EpubNav(title="Contents")
    nav.add_item(style)
    book.add_item(nav)
    book.spine = [title_page, nav, *spine]
    epub.write_epub(str(target), book, {**WRITE_OPTIONS, "mtime": utcnow()})


def _book(novel: Novel) -> epub.EpubBook:
    book = epub.EpubBook()
    book.set_identifier(novel.url)
    book.set_title(xml_text(novel.title))
    book.set_language(language_tag(novel))
    if novel.author:
        book.add_author(xml_text(novel.author))
    if novel.description:
        summary = _plain(novel.description)
        if summary:
            book.add_metadata("DC", "description", summary)
    book.add_metadata("DC", "source", novel.url)
    for tag in novel.tags or []:
        book.add_metadata("DC", "subject", xml_text(tag))
    if novel.published_at is not None:
        book.add_metadata("DC", "date", novel.published_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if novel.cover_url:
        book.add_metadata(None, "meta", novel.cover_url, {"property": "schema:image"})
    return book


def _page(
    book: epub.EpubBook, style: epub.EpubItem, *, uid: str, file_name: str, title: str
) -> epub.EpubHtml:
    page = epub.EpubHtml(uid=uid, file_name=file_name, title=xml_text(title))
    page.add_item(style)
    book.add_item(page)
    return page


def _listing(session: Session, novel_id: int) -> list[Listed]:
    """The novel's current chapters in reading order, without their text."""
    columns = (Chapter.id, Chapter.position, Chapter.title, Chapter.volume, Chapter.url)
    query = select(*columns, Chapter.locked).where(
        Chapter.novel_id == novel_id, Chapter.removed_at.is_(None)
    )
    rows = session.execute(query.order_by(Chapter.position, Chapter.id))
    return [Listed(*row) for row in rows]


def _chapters(
    book: epub.EpubBook,
    style: epub.EpubItem,
    listing: Sequence[Listed],
    texts: Texts,
    *,
    site: str,
) -> tuple[list[Any], list[epub.EpubHtml]]:
    """Pages for the chapters, and for each run of chapters in one volume a page of its
    own: the table of contents (volumes as sections) and the reading order."""
    toc: list[Any] = []
    spine: list[epub.EpubHtml] = []
    for number, (volume, chapters) in enumerate(_runs(listing), start=1):
        pages = [ChapterPage(c, texts, site=site) for c in chapters]
        for page in pages:
            page.add_item(style)
            book.add_item(page)
        if volume is None:
            toc.extend(pages)
            spine.extend(pages)
            continue
        file_name = f"volume-{number:05d}.xhtml"
        heading = _page(book, style, uid=f"volume-{number}", file_name=file_name, title=volume)
        heading.content = _document(_element("h1", volume, cls="volume-title"))
        toc.append((heading, pages))
        spine.extend([heading, *pages])
    return toc, spine


def _runs(listing: Sequence[Listed]) -> Iterator[tuple[str | None, list[Listed]]]:
    """Consecutive chapters of the same volume (None: outside any volume)."""
    run: list[Listed] = []
    for chapter in listing:
        if run and chapter.volume != run[0].volume:
            yield run[0].volume, run
            run = []
        run.append(chapter)
    if run:
        yield run[0].volume, run


class Texts:
    """Chapters' stored text, read in batches in book order as ebooklib asks for it."""

    def __init__(self, session: Session, order: Sequence[int]) -> None:
        self.session = session
        self.order = list(order)
        self.index = {chapter_id: i for i, chapter_id in enumerate(self.order)}
        self.loaded: dict[int, tuple[str | None, str | None]] = {}

    def take(self, chapter_id: int) -> tuple[str | None, str | None]:
        """(content_html, author_notes_html) of a chapter, forgotten once taken."""
        if chapter_id not in self.loaded:
            start = self.index[chapter_id]
            self._load(self.order[start : start + TEXT_BATCH])
        return self.loaded.pop(chapter_id)

    def _load(self, ids: list[int]) -> None:
        query = select(Chapter.id, Chapter.content_html, Chapter.author_notes_html)
        for chapter_id, content, notes in self.session.execute(query.where(Chapter.id.in_(ids))):
            self.loaded[chapter_id] = (content, notes)


class ChapterPage(epub.EpubHtml):
    """A chapter's page; its text is read only when ebooklib writes the page."""

    def __init__(self, chapter: Listed, texts: Texts, *, site: str) -> None:
        title = xml_text(chapter.title) or f"Chapter {chapter.position}"
        super().__init__(
            uid=f"chapter-{chapter.id}", file_name=f"chapter-{chapter.id}.xhtml", title=title
        )
        self.chapter, self.texts, self.site = chapter, texts, site

    def get_content(self, default: bytes | None = None) -> bytes:
        content, notes = self.texts.take(self.chapter.id)
        self.content = _chapter_document(self.chapter, self.title, content, notes, site=self.site)
        try:
            return bytes(super().get_content(default))
        finally:
            self.content = b""  # the text goes once written


def _chapter_document(
    chapter: Listed, title: str, content: str | None, notes: str | None, *, site: str
) -> bytes:
    parts = [_element("h2", title, cls="chapter-title")]
    if content is None:
        parts.append(_unavailable(chapter, site=site))
    else:
        parts.append(_fragment(content, cls="chapter-text"))
    parts.extend(_notes(notes, label="Author's note"))
    return _document(*parts)


def _unavailable(chapter: Listed, *, site: str) -> etree._Element:
    why = "is locked on" if chapter.locked else "has no text stored from"
    line = _element("p", f"This chapter {why} {site}: ", cls="unavailable")
    link = etree.SubElement(line, "a", href=chapter.url)
    link.text = "read it on the site"
    link.tail = "."
    return line


def _notes(notes: str | None, *, label: str) -> list[etree._Element]:
    """Each part of stored notes in a box of its own, labelled."""
    boxes = []
    for part in (notes or "").split(NOTES_SEPARATOR):
        if not part.strip():
            continue
        box = _fragment(part, cls="author-note")
        heading = _element("p", label, cls="author-note-label")
        heading.tail, box.text = box.text, None  # the note's leading text follows its label
        box.insert(0, heading)
        boxes.append(box)
    return boxes


def _title_document(novel: Novel) -> bytes:
    parts = [_element("h1", novel.title, cls="novel-title")]
    if novel.author:
        parts.append(_element("p", f"by {novel.author}", cls="byline"))
    parts.append(_about(novel))
    if novel.description:
        parts.append(_fragment(novel.description, cls="description"))
    parts.extend(_notes(novel.notes_html, label="Notes"))
    return _document(*parts)


def _about(novel: Novel) -> etree._Element:
    """What the store knows of the novel besides its text, as a definition list."""
    about = _element("dl", None, cls="about")
    facts: list[tuple[str, str, str | None]] = [("Source", novel.url, novel.url)]
    if novel.status:
        facts.append(("Status", novel.status, None))
    if novel.tags:
        facts.append(("Tags", ", ".join(novel.tags), None))
    if novel.language:
        facts.append(("Language", novel.language, None))
    if novel.cover_url:
        facts.append(("Cover", novel.cover_url, novel.cover_url))
    for name, value, link in facts:
        about.append(_element("dt", name))
        definition = etree.SubElement(about, "dd")
        target = etree.SubElement(definition, "a", href=link) if link else definition
        target.text = xml_text(value)
    return about


def _element(tag: str, text: str | None, *, cls: str | None = None) -> etree._Element:
    element = etree.Element(tag)
    if cls:
        element.set("class", cls)
    element.text = xml_text(text) if text is not None else None
    return element


def _fragment(stored: str, *, cls: str) -> etree._Element:
    """Stored (sanitized) HTML in a div of class `cls`, made valid EPUB XHTML."""
    div = html.fragment_fromstring(xml_text(stored), create_parent="div")
    div.set("class", cls)
    for element in list(div.iter()):
        _modernize(element)
    return div


def _modernize(element: Any) -> None:
    """One element as EPUB 3 (HTML5) allows it: obsolete markup as its CSS, a remote
    image (which a book may not load) as a link to it, a link without a URL as text."""
    align = element.attrib.pop("align", None)
    if align and "style" not in element.attrib:
        element.set("style", f"text-align:{align.lower()}")
    if element.tag == "center":
        element.tag = "div"
        element.set("style", "text-align:center")
    elif element.tag == "strike":
        element.tag = "s"
    elif element.tag == "img":
        _image_as_link(element)
    elif element.tag == "a" and not element.get("href"):  # its URL was refused: no link
        element.tag = "span"
        element.attrib.pop("rel", None)


def _image_as_link(image: Any) -> None:
    source, alt = image.get("src"), (image.get("alt") or "").strip()
    image.attrib.clear()
    image.text = f"[image: {alt}]" if alt else "[image]"
    inside_link = any(ancestor.tag == "a" for ancestor in image.iterancestors())
    if source and not inside_link:
        image.tag = "a"
        image.set("href", source)
    else:
        image.tag = "span"


def _document(*parts: etree._Element) -> bytes:
    """An HTML document of these parts, for ebooklib (which writes it as XHTML)."""
    body = etree.Element("body")
    body.extend(parts)
    root = etree.Element("html")
    root.append(body)
    return bytes(html.tostring(root, encoding="utf-8"))


def _plain(stored: str) -> str:
    text = html.fragment_fromstring(xml_text(stored), create_parent="div").text_content()
    return " ".join(text.split())


def xml_text(text: str) -> str:
    """`text` without the characters XML forbids."""
    return NOT_XML.sub("", text)
