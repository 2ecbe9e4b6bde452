"""What a site adapter is: pure functions from URLs and HTML to records (no I/O)."""

from __future__ import annotations

from typing import Protocol

from crawler.items import ChapterRecord, ChapterRef, FictionRef, NovelRecord


class SiteAdapter(Protocol):
    name: str  # short id stored in the database, e.g. "royalroad"
    display_name: str  # e.g. "Royal Road"
    hosts: tuple[str, ...]  # hosts the adapter serves, e.g. ("www.royalroad.com", "royalroad.com")
    example_url: str

    def fiction_ref(self, url: str, *, base: str) -> FictionRef:
        """Normalize a fiction (or chapter) URL on this site to its fiction.

        `base` is scheme://host[:port] to build the normalized URL on (the real site, or
        an aliased mirror). Raises errors.InvalidURLError when the path names no fiction.
        """
        ...

    def parse_fiction(self, html: str, url: str) -> NovelRecord:
        """Turn a fiction page into metadata and its ordered chapter list.

        Raises errors.ParseError when the page lacks the structure of a fiction page.
        """
        ...

    def parse_chapter(self, html: str, ref: ChapterRef) -> ChapterRecord:
        """Turn a chapter page into the chapter's story text and author notes.

        Raises errors.ParseError when the page has no chapter body.
        """
        ...
