"""What the fixture site serves, as data: the tests check stored rows against it.

All text is generated here (seeded), never copied from a real site.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import overload

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
BIG_BASE_DATE = datetime(2012, 1, 1, 12, 0, tzinfo=UTC)  # 10,000 chapters, 6 h apart


@dataclass(frozen=True)
class FixtureChapter:
    chapter_id: int
    slug: str
    position: int
    title: str
    volume_id: int | None
    volume_title: str | None
    published_at: datetime
    paragraphs: Sequence[str]  # a tuple, or SeededText (big fictions: generated when read)
    hidden_text: str
    notes_before: str | None
    notes_after: str | None
    # "open"; "premium" (window.chapters: subscriptionTiers, isUnlocked false); "scheduled"
    # (visible 0): the site lists the last two but does not serve them.
    access: str = "open"
    # Raw HTML served as is (not escaped): after the text, and in an author note of its own
    # (the hostile fiction, HOSTILE_MARKUP).
    markup: str = ""
    notes_markup: str = ""

    @property
    def locked(self) -> bool:
        return self.access != "open"

    @property
    def words(self) -> int:
        """Its text's words (whitespace-separated), as the site counts them."""
        if isinstance(self.paragraphs, SeededText):
            return self.paragraphs.words
        return len(" ".join(self.paragraphs).split())


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
    # Revisions (FixtureSite.revise): the fiction page lists only the first `toc_limit`
    # chapters (a truncated page) while every chapter page still answers; `removed`: the
    # chapters revisions took out (their pages answer 404), at their last positions;
    # `revision`: how many revisions made this (0: the fiction as built).
    toc_limit: int | None = None
    removed: tuple[FixtureChapter, ...] = ()
    revision: int = 0

    @property
    def listed(self) -> tuple[FixtureChapter, ...]:
        """The chapters the fiction page lists (all of them unless `toc_limit`)."""
        return self.chapters if self.toc_limit is None else self.chapters[: self.toc_limit]

    def chapter(self, chapter_id: int) -> FixtureChapter | None:
        """The served chapter with this id (a removed one is not served)."""
        return self._by_id.get(chapter_id)

    @cached_property
    def _by_id(self) -> dict[int, FixtureChapter]:
        """Chapters by id: a 10,000-chapter fiction is not scanned for each of its pages."""
        return {c.chapter_id: c for c in self.chapters}


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


@lru_cache(maxsize=256)
def _seeded_paragraphs(seed: int, count: int, sentences: int) -> tuple[str, ...]:
    rng = random.Random(seed)
    lengths = [rng.randint(6, 16) for _ in range(count * sentences)]  # first: see _seeded_words
    said = [_sentence(rng, n) for n in lengths]
    return tuple(" ".join(said[n : n + sentences]) for n in range(0, len(said), sentences))


@lru_cache(maxsize=65_536)
def _seeded_words(seed: int, sentences: int) -> int:
    """The words _seeded_paragraphs will write: its sentence lengths come first."""
    rng = random.Random(seed)
    return sum(rng.randint(6, 16) for _ in range(sentences))


@dataclass(frozen=True)
class SeededText(Sequence[str]):
    """Paragraphs generated from a seed when read (and again when read again, past a cache).

    What big fictions' chapters hold: 10,000 chapters of text take seconds to generate and
    tens of MB to keep; their word counts come from the sentence lengths alone.
    """

    seed: int
    paragraphs: int
    sentences: int = 4  # a paragraph's

    @property
    def words(self) -> int:
        return _seeded_words(self.seed, self.paragraphs * self.sentences)

    def _text(self) -> tuple[str, ...]:
        return _seeded_paragraphs(self.seed, self.paragraphs, self.sentences)

    def __len__(self) -> int:
        return self.paragraphs

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._text()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._text())


def _old_id(fiction_id: int, position: int) -> int:
    """The first fictions' scheme: repeats after 1000 chapters, kept for what tests know."""
    return 100_000 + fiction_id * 1000 + (position * 7919) % 1000


def big_chapter_id(fiction_id: int, position: int) -> int:
    """Big fictions' (BIG) chapter ids: unique for up to 50,000 chapters."""
    return fiction_id * 100_000 + position


def added_chapter_id(fiction_id: int, n: int) -> int:
    """The id of the n-th chapter (from 1) that revisions added to this fiction.

    Above both schemes of built chapters: unique within the site (and never an id that a
    built or removed chapter of the fiction had).
    """
    return fiction_id * 100_000 + 50_000 + n


def _chapter(
    rng: random.Random,
    fiction_id: int,
    position: int,
    volume: tuple[int, str, int] | None,
    paragraphs: int,
    *,
    big: bool = False,
) -> FixtureChapter:
    chapter_id = big_chapter_id(fiction_id, position) if big else _old_id(fiction_id, position)
    title = f"{position}. {_sentence(rng, 3)[:-1]}"
    notes = rng.random()
    published_at = BASE_DATE + timedelta(days=position, hours=rng.randint(0, 23))
    if big:  # 10,000 chapters span years; a day apart would run into the future
        published_at = BIG_BASE_DATE + timedelta(hours=6 * position + rng.randint(0, 5))
    text = SeededText(chapter_id, paragraphs) if big else _paragraphs(rng, paragraphs, 4)
    return FixtureChapter(
        chapter_id=chapter_id,
        slug=f"{position}-chapter",
        position=position,
        title=title,
        volume_id=volume[0] if volume else None,
        volume_title=volume[1] if volume else None,
        published_at=published_at,
        paragraphs=text,
        hidden_text=f"If you read this on another site, it was stolen (marker {chapter_id}).",
        notes_before=f"Before-note {chapter_id}: thanks for reading ♥" if notes < 0.3 else None,
        notes_after=f"After-note {chapter_id}: see you next time" if 0.2 < notes < 0.6 else None,
    )


def _build(
    fiction_id: int, *, chapters: int, volumes: int, paragraphs: int, big: bool = False
) -> FixtureFiction:
    rng = random.Random(fiction_id)
    vols = tuple(
        (9000 + fiction_id * 10 + n, f"Volume {n}: {_sentence(rng, 2)[:-1]}", n)
        for n in range(1, volumes + 1)
    )
    per_volume = -(-chapters // max(volumes, 1))
    items = tuple(
        _chapter(
            rng, fiction_id, p, vols[(p - 1) // per_volume] if vols else None, paragraphs, big=big
        )
        for p in range(1, chapters + 1)
    )
    if chapters > 3:  # a re-posted chapter: reading order is not date order
        moved = items[2]
        early = BASE_DATE - timedelta(days=30)
        items = (*items[:2], _replace_date(moved, early), *items[3:])
    title = f"The {_sentence(rng, 2)[:-1].title()} — Ünïcode Saga {fiction_id}"
    words = sum(c.words for c in items)
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


# Hostile fictions (Royal Road markup): what a page may do to the crawler, and what the
# crawler must never do for it. The server (FixtureSite) answers them; "the internal
# service" is `FixtureSite.internal`, a listener on another loopback port that the tests
# start (tests/conftest.py `internal_service`) and that must see no connection.
HOSTILE = {
    2101: "fiction page answers 302 to the internal service (another loopback port)",
    2102: "chapter 2 answers 302 to another host (localhost, at the internal service's port)",
    2103: "fiction page carries <meta http-equiv=refresh> to the internal service",
    2104: "fiction page answers 302 to a private address (http://10.0.0.1/)",
    2105: "fiction page answers 302 to a numeric host form of 127.0.0.1 (http://2130706433:...)",
    2106: "fiction page answers 302 to an IPv4-mapped IPv6 loopback ([::ffff:127.0.0.1])",
    2107: "8 chapter pages of FixtureSite.chapter_padding bytes each: for CRAWLER_MAX_JOB_BYTES",
    2108: "hostile markup in description, chapter text and author notes; cover javascript:",
    2109: "the listing links chapter 2 to the internal service (data-url, window.chapters)",
    2110: "the listing links chapter 2 to Redis (FixtureSite.redis)",
    2111: "the listing links chapter 2 to file:///etc/passwd",
}
# What 2108 serves where a page holds the author's HTML: every trick a sanitizer must undo.
HOSTILE_MARKUP = (
    '<p>Before the traps.</p><script>document.title = "pwned"</script>'
    '<p><img src="/x.png" onerror="alert(1)">An image with a handler.</p>'
    '<p><a href="javascript:alert(2)">a javascript: link</a>'
    ' <a href="JaVaScRiPt:alert(3)">mixed case</a></p>'
    '<iframe src="http://127.0.0.1:9/frame"></iframe>'
    '<svg onload="alert(4)"><circle r="1"></circle></svg>'
    '<form action="http://127.0.0.1:9/steal" method="post"><input type="password" name="p">'
    "</form>"
    '<base href="http://127.0.0.1:9/">'
    "<style>body { background: url(javascript:alert(5)) }</style>"
    '<object data="http://127.0.0.1:9/x.swf"></object>'
    '<p><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCg2KTwvc2NyaXB0Pg==">a data: link</a>'
    ' <img src="data:image/svg+xml,&lt;svg onload=alert(7)&gt;"></p>'
    '<p onclick="alert(8)" style="position:fixed;top:0">After the traps.</p>'
)
HOSTILE_NOTES = (
    '<p onmouseover="alert(9)">Thanks for reading!</p><script>alert(10)</script>'
    '<a href="javascript:alert(11)">vote</a>'
)
HOSTILE_COVER = "javascript:alert(1)"
HOSTILE_OFFSITE_CHAPTER = 2  # the position of the chapter 2109-2111 link elsewhere


def _hostile(fiction_id: int) -> FixtureFiction:
    built = _build(fiction_id, chapters=8 if fiction_id == 2107 else 4, volumes=0, paragraphs=2)
    if fiction_id != 2108:
        return built
    chapters = tuple(
        replace(c, markup=HOSTILE_MARKUP, notes_markup=HOSTILE_NOTES) for c in built.chapters
    )
    return replace(
        built,
        description_html=f"{built.description_html}\n{HOSTILE_MARKUP}",
        cover_path=HOSTILE_COVER,
        chapters=chapters,
    )


SPECIAL = {1005: _unreadable, 1006: _with_locked, 1007: _one_chapter}
SPECIAL.update(dict.fromkeys(HOSTILE, _hostile))
# Big fictions, to measure memory against size: id -> (chapters, volumes). Chapters of
# 8 paragraphs of 4 sentences (~350 words), like 1001's, generated when read.
BIG = {1010: (10, 1), 1011: (2_000, 4), 1012: (10_000, 10)}
BIG_PARAGRAPHS = 8


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
    if fiction_id in BIG:
        chapters, volumes = BIG[fiction_id]
        return _build(
            fiction_id, chapters=chapters, volumes=volumes, paragraphs=BIG_PARAGRAPHS, big=True
        )
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
    return found.chapter(chapter_id)


def _positions(name: str, positions: Iterable[int], count: int) -> list[int]:
    chosen = list(positions)
    if len(set(chosen)) != len(chosen) or not all(1 <= p <= count for p in chosen):
        raise ValueError(f"{name}: positions must be distinct, in 1..{count}: {chosen}")
    return chosen


def _new_text(chapter: FixtureChapter, revision: int) -> tuple[str, ...]:
    """Other text of the same shape, seeded by the chapter and the revision."""
    rng = random.Random(f"{chapter.chapter_id}/{revision}")
    text = _paragraphs(rng, max(len(chapter.paragraphs), 1), 4)
    if tuple(chapter.paragraphs) == text:  # never seen; but an edit must change the text
        return (f"Revised in revision {revision}.", *text[1:])
    return text


def _popover(built: FixtureFiction, words: int) -> str | None:
    """The popover for `words`, in the wording the fiction's page already used."""
    if built.story_length is None or built.word_count is None:
        return built.story_length
    for comma in (True, False):
        if built.story_length == paperback_popover(built.word_count, comma=comma):
            return paperback_popover(words, comma=comma)
    return built.story_length  # a wording of its own (1005): not a count to follow


def revise(
    f: FixtureFiction,
    *,
    add: int = 0,
    remove: Sequence[int] = (),
    redate: Sequence[int] = (),
    edit: Sequence[int] = (),
    move: Sequence[tuple[int, int]] = (),
    toc_limit: int | None = None,
    full_toc: bool = False,
) -> FixtureFiction:
    """`f` after one more revision; FixtureSite.revise documents the arguments."""
    count, revision = len(f.chapters), f.revision + 1
    removing = set(_positions("remove", remove, count))
    changing = _positions("redate", redate, count) + _positions("edit", edit, count)
    if removing & set(changing) or len(set(changing)) != len(changing):
        raise ValueError("a chapter is removed, redated or edited at most once per revision")
    if add < 0 or (toc_limit is not None and toc_limit < 0):
        raise ValueError("add and toc_limit cannot be negative")
    chapters = list(f.chapters)
    for p in changing:
        old = chapters[p - 1]
        later = old.published_at + timedelta(days=1) if p in redate else old.published_at
        chapters[p - 1] = replace(old, published_at=later, paragraphs=_new_text(old, revision))
    kept = [c for n, c in enumerate(chapters, 1) if n not in removing]
    for start, end in move:
        _positions("move", {start, end}, len(kept))
        kept.insert(end - 1, kept.pop(start - 1))
    kept.extend(_added(f, kept, add))
    served = tuple(replace(c, position=n) for n, c in enumerate(kept, 1))
    words = sum(c.words for c in served)
    return replace(
        f,
        chapters=served,
        removed=(*f.removed, *(c for n, c in enumerate(f.chapters, 1) if n in removing)),
        word_count=None if f.word_count is None else words,
        story_length=_popover(f, words),
        toc_limit=None if full_toc else (f.toc_limit if toc_limit is None else toc_limit),
        revision=revision,
    )


def _added(f: FixtureFiction, kept: list[FixtureChapter], count: int) -> list[FixtureChapter]:
    """`count` new chapters after `kept`: new ids, dated a day apart after the latest."""
    base = added_chapter_id(f.fiction_id, 0)
    ids = (c.chapter_id - base for c in (*f.chapters, *f.removed))
    before = max((n for n in ids if n > 0), default=0)  # chapters added by earlier revisions
    latest = max((c.published_at for c in kept), default=BASE_DATE)
    volume = f.volumes[-1] if f.volumes else None
    paragraphs = len(kept[-1].paragraphs) if kept else 4
    added = []
    for k in range(1, count + 1):
        chapter_id = added_chapter_id(f.fiction_id, before + k)
        rng = random.Random(f"{chapter_id}/added")
        added.append(
            FixtureChapter(
                chapter_id=chapter_id,
                slug=f"new-chapter-{before + k}",
                position=len(kept) + k,
                title=f"{len(kept) + k}. {_sentence(rng, 3)[:-1]}",
                volume_id=volume[0] if volume else None,
                volume_title=volume[1] if volume else None,
                published_at=latest + timedelta(days=k, minutes=rng.randint(0, 59)),
                paragraphs=_paragraphs(rng, paragraphs, 4),
                hidden_text=f"If you read this on another site, it was stolen (marker {chapter_id}).",
                notes_before=None,
                notes_after=f"After-note {chapter_id}: a new chapter" if k % 2 else None,
            )
        )
    return added
