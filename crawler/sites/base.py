"""What a site adapter is: the steps of a crawl, and pure functions from pages to records.

The spider (crawler/spiders/fiction.py) is generic: it asks the adapter for the first page
of a fiction, hands every answer back to the adapter's `read_listing` until the listing
is whole (a fiction page, then a table of contents that may need more requests, or a
consent page to get past), then fetches the `chapter_fetches` and, in the PARSING phase,
turns each of those pages into chapter records with `parse_chapters`. Adapters do no I/O:
every method is a function of page text, testable without Scrapy.

Adding a site is one module under crawler/sites/ with an `ADAPTER` (the package finds it)
and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from crawler.items import ChapterRecord, ChapterRef, FictionRef, NovelRecord


@dataclass(frozen=True)
class Politeness:
    """A site's own pace, used unless the operator sets CRAWLER_DOWNLOAD_DELAY etc."""

    download_delay: float  # seconds between requests to the site
    concurrent_requests: int  # requests in flight to the site at once


@dataclass(frozen=True)
class Fetch:
    """One request of a crawl, and which adapter step reads its answer."""

    url: str
    step: str  # "listing" (read by read_listing) or "chapters" (read by parse_chapters)
    method: str = "GET"
    form: tuple[tuple[str, str], ...] = ()  # POST form fields, in order
    refs: tuple[ChapterRef, ...] = ()  # the chapters a "chapters" page holds
    label: str = ""  # the adapter's own name for the page ("fiction", "toc", ...)


@dataclass(frozen=True)
class ListingStep:
    """What one listing page gave: the novel as known so far, and what to fetch next.

    The listing is whole when `follow` is empty; `novel` must then be set. A listing is a
    chain: `follow` holds at most one page, never one asked for before, and the chain ends
    within the spider's MAX_LISTING_PAGES.
    """

    novel: NovelRecord | None
    follow: tuple[Fetch, ...] = field(default=())


class SiteAdapter(Protocol):
    name: str  # the site id stored in the database: "royalroad", "scribblehub", "ao3"
    display_name: str
    hosts: tuple[str, ...]  # the site's own hosts; hosts[0] is canonical
    url_patterns: tuple[str, ...]  # the fiction URL forms it takes, for people to read
    example_url: str
    politeness: Politeness

    def fiction_ref(self, url: str, *, base: str) -> FictionRef:
        """Normalize any URL of a fiction on this site (fiction or chapter page, with or
        without slug, query, fragment) to one canonical fiction URL on `base`.

        Raises errors.InvalidURLError when the path names no fiction.
        """
        ...

    def first_fetch(self, ref: FictionRef) -> Fetch:
        """The first page of a crawl (step "listing")."""
        ...

    def check_page(self, html: str, url: str) -> None:
        """Raise a RetryableFailure if this page (HTTP 200) is the site's error page, e.g.
        AO3's "Error 503 - Service unavailable"; do nothing for a real page."""
        ...

    def read_listing(
        self, html: str, url: str, fetch: Fetch, known: NovelRecord | None
    ) -> ListingStep:
        """Read one listing page; `known` is the novel from the previous listing step.

        Raises errors.ParseError for a page without the expected structure, a
        RetryableFailure for an error page served with HTTP 200, a PermanentFailure for a
        gate it cannot pass (a login).
        """
        ...

    def chapter_fetches(self, novel: NovelRecord) -> tuple[Fetch, ...]:
        """The pages that hold the text of the novel's served (not locked) chapters."""
        ...

    def parse_chapters(self, html: str, fetch: Fetch) -> list[ChapterRecord]:
        """The chapter records of one "chapters" page, one per ref of `fetch`.

        Raises errors.ParseError when the page lacks a chapter's text.
        """
        ...
