"""The spool's encodings: request identity, compressed pages and records."""

from __future__ import annotations

from datetime import UTC, datetime

from crawler.items import ChapterRecord, ChapterRef
from crawler.sites.base import Fetch
from spool import fetch_key, pack, pack_records, unpack, unpack_records


def test_a_request_is_known_by_its_method_url_and_form() -> None:
    page = Fetch("https://x/toc", "listing")
    assert fetch_key(page) == fetch_key(Fetch("https://x/toc", "chapters", label="other"))
    assert fetch_key(page) != fetch_key(Fetch("https://x/toc", "listing", method="POST"))
    posted = Fetch("https://x/toc", "listing", method="POST", form=(("page", "1"),))
    assert fetch_key(posted) != fetch_key(
        Fetch("https://x/toc", "listing", method="POST", form=(("page", "2"),))
    )
    assert len(fetch_key(page)) == 64


def test_pages_and_records_come_back_as_they_went() -> None:
    text = "<p>Zoë 夜 🐉 \ud800 “quoted”</p>" * 200
    blob = pack(text)
    assert unpack(blob) == text and len(blob) < len(text.encode("utf-8", "surrogatepass")) / 5
    ref = ChapterRef(
        "7", "https://x/ch/7", 3, "Chapter 3", "Vol 1", datetime(2024, 5, 1, tzinfo=UTC)
    )
    records = [
        ChapterRecord(
            site_chapter_id="7", url=ref.url, position=3, title="Chapter 3", volume="Vol 1",
            published_at=ref.published_at, content_html="<p>x</p>", author_notes_html=None,
            word_count=1, content_hash="a" * 64,
        ),
        ChapterRecord.locked_from(ref),
        ChapterRecord.locked_from(ChapterRef("8", "https://x/ch/8", 4, "Undated")),
    ]  # fmt: skip
    assert unpack_records(pack_records(records)) == records
