"""Which chapters an update fetches, and when a listing is too short to trust."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from changes import StoredChapter, UpdatePlan
from crawler.items import ChapterRef, NovelRecord
from errors import PermanentFailure

WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def _ref(n: int, **changes: object) -> ChapterRef:
    ref = ChapterRef(str(n), f"https://x/ch/{n}", n, f"Chapter {n}", None, WHEN)
    return replace(ref, **changes)  # type: ignore[arg-type]


def _stored(n: int, **changes: object) -> StoredChapter:
    row = StoredChapter(
        site_chapter_id=str(n),
        position=n,
        title=f"Chapter {n}",
        volume=None,
        url=f"https://x/ch/{n}",
        published_at=WHEN,
        locked=False,
        content_hash="h" * 64,
        removed=False,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def _novel(*refs: ChapterRef) -> NovelRecord:
    return NovelRecord(
        site="royalroad", site_id="1", url="https://x", title="t", author=None,
        description=None, cover_url=None, tags=(), status=None, word_count=None, rating=None,
        volumes=(), chapters=refs,
    )  # fmt: skip


def _fetched(plan: UpdatePlan, novel: NovelRecord) -> list[str]:
    return [c.site_chapter_id for c in plan.to_fetch(novel).chapters]


def test_a_first_ingest_fetches_every_served_chapter() -> None:
    novel = _novel(_ref(1), _ref(2), _ref(3, locked=True))
    assert _fetched(UpdatePlan({}), novel) == ["1", "2"]


def test_an_update_fetches_only_new_redated_textless_and_returning_chapters() -> None:
    stored = {
        "1": _stored(1),
        "2": _stored(2),
        "3": _stored(3, content_hash=None, locked=True),  # was locked, now served
        "4": _stored(4, removed=True),  # was removed, listed again
        "5": _stored(5),
    }
    novel = _novel(
        _ref(1),
        _ref(2, published_at=WHEN + timedelta(days=1)),  # re-dated
        _ref(3),
        _ref(4),
        _ref(5, title="Renamed", position=9),  # a new title or place needs no fetch
        _ref(6),  # new
        _ref(7, locked=True),  # new but not served
    )
    assert _fetched(UpdatePlan(stored), novel) == ["2", "3", "4", "6"]


def test_full_fetches_every_served_chapter() -> None:
    stored = {str(n): _stored(n) for n in (1, 2)}
    novel = _novel(_ref(1), _ref(2), _ref(3, locked=True))
    assert _fetched(UpdatePlan(stored, full=True), novel) == ["1", "2"]


def test_a_listing_that_would_remove_more_than_the_limit_is_refused() -> None:
    stored = {str(n): _stored(n) for n in range(1, 11)}
    with pytest.raises(PermanentFailure, match="lists 4 chapters of the 10 stored: 6 would"):
        UpdatePlan(stored, removal_limit=0.5).to_fetch(_novel(*(_ref(n) for n in range(1, 5))))
    # half of them may go, one of two, but not the only one
    assert _fetched(UpdatePlan(stored), _novel(*(_ref(n) for n in range(1, 6)))) == []
    assert _fetched(UpdatePlan({"1": _stored(1), "2": _stored(2)}), _novel(_ref(2))) == []
    with pytest.raises(PermanentFailure, match="lists 0 chapters of the 1 stored"):
        UpdatePlan({"1": _stored(1)}).to_fetch(_novel())
    # chapters already removed do not count as stored
    stored |= {str(n): _stored(n, removed=True) for n in range(11, 40)}
    assert _fetched(UpdatePlan(stored), _novel(*(_ref(n) for n in range(1, 6)))) == []
    with pytest.raises(PermanentFailure):
        UpdatePlan(stored, removal_limit=0.0).to_fetch(_novel(*(_ref(n) for n in range(1, 9))))
