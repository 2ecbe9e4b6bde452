"""What the fixture site serves, as data: the tests check stored rows against it.

All text is generated here (seeded), never copied from a real site.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache

WORDS = [
    "the",
    "lantern",
    "river",
    "shadow",
    "blade",
    "quiet",
    "ember",
    "hollow",
    "storm",
    "winter",
    "crown",
    "road",
    "whisper",
    "iron",
    "garden",
    "falling",
    "ash",
    "silver",
    "tide",
    "mountain",
    "echo",
    "veil",
    "thorn",
    "harbor",
    "café",
    "naïve",
    "façade",
    "über",
    "Zoë",
    "夜",
    "星",
    "물",
    "🐉",
    "“quoted”",
    "‘single’",
    "—",
    "…",
]
STATUSES = ("ongoing", "completed", "hiatus")
BASE_DATE = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FixtureChapter:
    chapter_id: int
    slug: str
    position: int
    title: str
    volume_id: int | None
    volume_title: str | None
    published_at: datetime
    paragraphs: tuple[str, ...]
    hidden_text: str
    notes_before: str | None
    notes_after: str | None
    # "open"; "premium" (window.chapters: subscriptionTiers, isUnlocked false); "scheduled"
    # (visible 0): the site lists the last two but does not serve them.
    access: str = "open"

    @property
    def locked(self) -> bool:
        return self.access != "open"


@dataclass(frozen=True)
class FixtureFiction:
    fiction_id: int
    slug: str
    title: str
    author: str
    author_id: int
    description_html: str
    tags: tuple[str, ...]
    status: str | None  # None: the page shows no status label
    rating: float | None  # None: the page has no rating
    word_count: int | None  # what the adapter must read off `story_length`; None: nothing
    warnings: tuple[str, ...]
    cover_path: str
    volumes: tuple[tuple[int, str, int], ...]  # (id, title, order)
    chapters: tuple[FixtureChapter, ...] = field(default=())
    # The "Pages" popover's text (i[title="Story Length"] data-content); None: no popover.
    story_length: str | None = None


def paperback_popover(words: int, *, comma: bool = True) -> str:
    """The popover text in the site's own wording."""
    pages, count = max(1, words // 275), f"{words:,}" if comma else str(words)
    return (
        f"This story would be {pages:,} pages long as a published paperback book. This is an"
        f" estimate based on an average of 275 words per page, calculated from {count} words."
    )


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _paragraphs(rng: random.Random, count: int, length: int) -> tuple[str, ...]:
    return tuple(
        " ".join(_sentence(rng, rng.randint(6, 16)) for _ in range(length)) for _ in range(count)
    )


def _chapter(
    rng: random.Random,
    fiction_id: int,
    position: int,
    volume: tuple[int, str, int] | None,
    paragraphs: int,
) -> FixtureChapter:
    chapter_id = 100_000 + fiction_id * 1000 + (position * 7919) % 1000
    title = f"{position}. {_sentence(rng, 3)[:-1]}"
    notes = rng.random()
    return FixtureChapter(
        chapter_id=chapter_id,
        slug=f"{position}-chapter",
        position=position,
        title=title,
        volume_id=volume[0] if volume else None,
        volume_title=volume[1] if volume else None,
        published_at=BASE_DATE + timedelta(days=position, hours=rng.randint(0, 23)),
        paragraphs=_paragraphs(rng, paragraphs, 4),
        hidden_text=f"If you read this on another site, it was stolen (marker {chapter_id}).",
        notes_before=f"Before-note {chapter_id}: thanks for reading ♥" if notes < 0.3 else None,
        notes_after=f"After-note {chapter_id}: see you next time" if 0.2 < notes < 0.6 else None,
    )


def _build(fiction_id: int, *, chapters: int, volumes: int, paragraphs: int) -> FixtureFiction:
    rng = random.Random(fiction_id)
    vols = tuple(
        (9000 + fiction_id * 10 + n, f"Volume {n}: {_sentence(rng, 2)[:-1]}", n)
        for n in range(1, volumes + 1)
    )
    per_volume = -(-chapters // max(volumes, 1))
    items = tuple(
        _chapter(rng, fiction_id, p, vols[(p - 1) // per_volume] if vols else None, paragraphs)
        for p in range(1, chapters + 1)
    )
    if chapters > 3:  # a re-posted chapter: reading order is not date order
        moved = items[2]
        early = BASE_DATE - timedelta(days=30)
        items = (*items[:2], _replace_date(moved, early), *items[3:])
    title = f"The {_sentence(rng, 2)[:-1].title()} — Ünïcode Saga {fiction_id}"
    words = sum(len(" ".join(c.paragraphs).split()) for c in items)
    return FixtureFiction(
        fiction_id=fiction_id,
        slug=f"fixture-fiction-{fiction_id}",
        title=title,
        author=f"Author Ñame {fiction_id}",
        author_id=50_000 + fiction_id,
        description_html=f"<p>{_sentence(rng, 20)}</p>\n<p>{_sentence(rng, 12)}</p>",
        tags=("Fantasy", "Adventure", "Magic")[: 1 + fiction_id % 3],
        status=STATUSES[fiction_id % 3],
        rating=round(3.5 + (fiction_id % 15) / 10, 6),
        word_count=words,
        story_length=paperback_popover(words),
        warnings=("Profanity", "Gore") if fiction_id % 2 else (),
        cover_path=f"/covers/{fiction_id}.jpg",
        volumes=vols,
        chapters=items,
    )


def _replace_date(chapter: FixtureChapter, when: datetime) -> FixtureChapter:
    return replace(chapter, published_at=when)


MISBEHAVING = range(2001, 2013)


def _unreadable(fiction_id: int) -> FixtureFiction:
    """A fiction whose page lacks or words differently what the adapter reads."""
    built = _build(fiction_id, chapters=3, volumes=0, paragraphs=2)
    return replace(
        built,
        status=None,
        rating=None,
        word_count=None,
        story_length="Roughly 9 pages as a paperback; we could not count its words.",
    )


def _with_locked(fiction_id: int) -> FixtureFiction:
    """Eight chapters served, then a premium one and a scheduled one the site does not serve."""
    built = _build(fiction_id, chapters=10, volumes=2, paragraphs=2)
    chapters = (
        *built.chapters[:8],
        replace(built.chapters[8], access="premium"),
        replace(built.chapters[9], access="scheduled"),
    )
    return replace(built, chapters=chapters)


def _one_chapter(fiction_id: int) -> FixtureFiction:
    """One chapter, no volumes, a count printed without a thousands separator."""
    built = _build(fiction_id, chapters=1, volumes=0, paragraphs=40)
    assert built.word_count is not None and built.word_count > 1000
    return replace(built, story_length=paperback_popover(built.word_count, comma=False))


SPECIAL = {1005: _unreadable, 1006: _with_locked, 1007: _one_chapter}


@lru_cache(maxsize=2048)
def fiction(fiction_id: int) -> FixtureFiction | None:
    """The fiction the site serves under this id, or None (the site answers 404)."""
    if fiction_id in SPECIAL:
        return SPECIAL[fiction_id](fiction_id)
    if fiction_id == 1001:
        return _build(1001, chapters=48, volumes=3, paragraphs=6)
    if fiction_id == 1002:
        return _build(1002, chapters=5, volumes=0, paragraphs=3)
    if fiction_id == 1003:
        return _build(1003, chapters=160, volumes=2, paragraphs=36)
    if fiction_id == 1004 or 6000 <= fiction_id <= 6999:  # stubs: no chapter yet
        return _build(fiction_id, chapters=0, volumes=0, paragraphs=0)
    if fiction_id in MISBEHAVING:
        return _build(fiction_id, chapters=4, volumes=0, paragraphs=2)
    if 5000 <= fiction_id <= 5999:
        return _build(fiction_id, chapters=fiction_id % 7 + 3, volumes=1, paragraphs=2)
    return None


def chapter(fiction_id: int, chapter_id: int) -> FixtureChapter | None:
    found = fiction(fiction_id)
    if found is None:
        return None
    return next((c for c in found.chapters if c.chapter_id == chapter_id), None)
