"""An Archive of Our Own look-alike: works in AO3's real markup, with our own text.

`route(asked)` answers as AO3 does (see the shared fixtures' README and otwarchive's
templates): `/works/<id>` is the work page of a one-chapter work and a 302 to the first
chapter's page for a work in chapters; `/works/<id>/chapters/<cid>` a chapter page (the
work's end notes on its last chapter's); `/works/<id>?view_full_work=true` every chapter
in one page; `/works/<id>/navigate` the chapter index; `/chapters/<cid>` a 302 to its
work's chapter page. Links are relative, as AO3 writes them; so are redirects (AO3's are
absolute on its own host, which a test server cannot be).

Works (`work(id)`; the dataclass holds every value a test compares with):
- NORMAL 7001: 4 chapters, complete, two creators (one writing under a pseud), a series,
  work head notes with a gift line, work end notes (on the last chapter's page), chapter
  notes on chapters 1-3 (a chapter summary on 2), an untitled chapter, an image.
- ONE_SHOT 7002: one chapter (1/1): the single-chapter layout, no chapter id on the
  page, Anonymous, head and end notes on the same page, no Updated date.
- EXPLICIT 7003: Explicit, 3 chapters, by orphan_account: the "Adult Content Warning"
  page unless `view_adult=true` is in the query, on the work page and on every chapter
  page (`/works/7003?view_adult=true` redirects to chapter 1 without it, as AO3 does: it
  remembers the choice in a cookie, which a crawl never sends back).
- RESTRICTED 7004: registered users only: every page of it is a 302 to
  `/users/login?restricted=true&return_to=...` (the login page is served).
- FLAKY 7005 (2 chapters): the work page answers HTTP 200 with AO3's "Error 503 -
  Service unavailable" page the first 2 times (`serve_error_pages` to change; `reset()`).
- DOWN 7006: the work page always answers the error page.
- UNFINISHED 7007: "Chapters: 2/?", ongoing, an "Updated:" date.
- FULL_PAGE_FLAKY 7008 (3 chapters): the whole-work page answers the error page once.
- ODD_WORDS 7009: "Words: 12.345" (a locale's separator: not a plain count).
- 7100-7199: plain works of 1-5 chapters, for bulk runs.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from html import escape, unescape
from urllib.parse import quote

from tests.fixture_site.answer import Answer, Asked
from tests.fixture_site.content import WORDS

NORMAL, ONE_SHOT, EXPLICIT, RESTRICTED = 7001, 7002, 7003, 7004
FLAKY, DOWN, UNFINISHED, FULL_PAGE_FLAKY, ODD_WORDS = 7005, 7006, 7007, 7008, 7009
PLAIN = range(7100, 7200)
ALWAYS = 10**9  # error pages "left" for a page that never recovers
DEFAULT_ERROR_PAGES = {(FLAKY, "work"): 2, (DOWN, "work"): ALWAYS, (FULL_PAGE_FLAKY, "full"): 1}
NOTES_SEPARATOR = "\n<hr/>\n"  # how the adapter joins notes (crawler/sites/ao3.py)
BASE_DAY = datetime(2024, 3, 1, tzinfo=UTC)
SELECTED = 'selected="selected" '


@dataclass(frozen=True)
class Ao3Chapter:
    chapter_id: int
    position: int
    title: str | None  # the author's; None: untitled (AO3 shows "Chapter <n>")
    published_at: datetime  # a day, midnight UTC (AO3 shows dates only)
    body_html: str  # the chapter text as the page holds it
    summary_html: str | None = None
    notes_html: str | None = None  # before the text
    end_notes_html: str | None = None  # after the text

    @property
    def display_title(self) -> str:
        """What AO3 calls the chapter (navigate shows "<n>. " before it)."""
        return self.title or f"Chapter {self.position}"

    @property
    def author_notes_html(self) -> str | None:
        """The chapter's notes as the adapter keeps them: summary, head notes, end notes."""
        parts = [p for p in (self.summary_html, self.notes_html, self.end_notes_html) if p]
        return NOTES_SEPARATOR.join(parts) or None

    @property
    def words(self) -> int:
        """This chapter's share of the work's "Words:" figure (the page's own count)."""
        return len(unescape(re.sub(r"<[^>]+>", " ", self.body_html)).split())


@dataclass(frozen=True)
class Ao3Work:
    work_id: int
    title: str
    creators: tuple[tuple[str, str], ...]  # (user, pseud); () is "Anonymous"
    rating: str
    warnings: tuple[str, ...]
    categories: tuple[str, ...]
    fandoms: tuple[str, ...]
    relationships: tuple[str, ...]
    characters: tuple[str, ...]
    freeforms: tuple[str, ...]
    chapters: tuple[Ao3Chapter, ...]
    planned: int | None  # the y of "Chapters: x/y"; None is "?"
    summary_html: str | None = None
    notes_html: str | None = None  # the work's head notes
    end_notes_html: str | None = None
    gift_to: str | None = None  # "For <user>." in the notes module: AO3's line, no note
    series: tuple[tuple[int, str, int], ...] = ()  # (series id, title, part)
    language: tuple[str, str] = ("en", "English")
    access: str = "open"  # "open", "adult" (the warning page), "restricted" (login)
    words_shown: str | None = None  # the Words figure as printed, if not the count's own

    @property
    def chaptered(self) -> bool:
        """AO3 shows a work "in chapters" unless it is planned as one chapter."""
        return self.planned != 1

    @property
    def author(self) -> str:
        return ", ".join(_creator_label(u, p) for u, p in self.creators) or "Anonymous"

    @property
    def tags(self) -> tuple[str, ...]:
        return (*self.fandoms, *self.relationships, *self.characters, *self.freeforms)

    @property
    def series_positions(self) -> tuple[str, ...]:
        return tuple(f"Part {part} of {title}" for _, title, part in self.series)

    @property
    def tag_groups(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        groups = (
            ("rating", (self.rating,)),
            ("warning", self.warnings),
            ("category", self.categories),
            ("fandom", self.fandoms),
            ("relationship", self.relationships),
            ("character", self.characters),
            ("freeform", self.freeforms),
            ("series", self.series_positions),
        )
        return tuple((kind, tags) for kind, tags in groups if tags)

    @property
    def status(self) -> str:
        return "completed" if len(self.chapters) == self.planned else "ongoing"

    @property
    def published_at(self) -> datetime:
        return self.chapters[0].published_at

    @property
    def updated_at(self) -> datetime | None:
        """The Updated/Completed date; AO3 states none for a one-chapter work."""
        return max(c.published_at for c in self.chapters) if self.chaptered else None

    @property
    def word_count(self) -> int:
        return sum(c.words for c in self.chapters)

    @property
    def chapters_stat(self) -> str:
        return f"{len(self.chapters):,}/{'?' if self.planned is None else f'{self.planned:,}'}"

    @property
    def expected_notes_html(self) -> str | None:
        """The novel's notes_html: head notes, then end notes."""
        parts = [p for p in (self.notes_html, self.end_notes_html) if p]
        return NOTES_SEPARATOR.join(parts) or None


# --- content --------------------------------------------------------------------------


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng, rng.randint(5, 14)) for _ in range(rng.randint(2, 5)))


def _body(rng: random.Random, paragraphs: int, *, image: bool = False) -> str:
    """Paragraphs, one in italics, a scene break, and maybe an image: as the page has them."""
    parts = [f"<p>{escape(_paragraph(rng), quote=False)}</p>" for _ in range(paragraphs)]
    parts.insert(1, f"<p><em>{escape(_sentence(rng, 6), quote=False)}</em> Ünïcode & “quotes”.</p>")
    parts.insert(len(parts) // 2, "<hr>")
    if image:
        parts.insert(2, '<p><img src="https://example.org/art/lantern.png" alt="a lantern"></p>')
    return "\n".join(p.replace(" & ", " &amp; ") for p in parts)


def _note(rng: random.Random, label: str) -> str:
    return f"<p>{label}: {escape(_sentence(rng, 9), quote=False)}</p>"


def _chapter_id(work_id: int, position: int) -> int:
    """AO3-sized ids, not in step with positions; the work is (id - 80M) // 1000."""
    return 80_000_000 + work_id * 1000 + position * 7


def _chapters(
    rng: random.Random, work_id: int, titles: list[str | None], *, paragraphs: int = 4
) -> tuple[Ao3Chapter, ...]:
    first = BASE_DAY + timedelta(days=work_id % 97)
    return tuple(
        Ao3Chapter(
            chapter_id=_chapter_id(work_id, n),
            position=n,
            title=title,
            published_at=first + timedelta(days=9 * (n - 1)),
            body_html=_body(rng, paragraphs, image=(work_id == NORMAL and n == 1)),
        )
        for n, title in enumerate(titles, start=1)
    )


def _base(work_id: int, titles: list[str | None], planned: int | None) -> Ao3Work:
    rng = random.Random(work_id)
    return Ao3Work(
        work_id=work_id,
        title=f"Ember & Tide — Ünïcode Work {work_id}",
        creators=((f"writer{work_id}", f"writer{work_id}"),),
        rating="Teen And Up Audiences",
        warnings=("No Archive Warnings Apply",),
        categories=("Gen",),
        fandoms=("Lantern Saga (Web Serial)",),
        relationships=(),
        characters=("Zoë Hollow", "The Iron Crown"),
        freeforms=("Found Family", "Slow Burn"),
        chapters=_chapters(rng, work_id, titles),
        planned=planned,
        summary_html=f"<p>{escape(_sentence(rng, 14), quote=False)}</p>",
    )


def _normal() -> Ao3Work:
    rng = random.Random(NORMAL * 31)
    work = _base(NORMAL, ["夜 and the Lantern", None, "1984", "Ash & “Embers”"], planned=4)
    chapters = list(work.chapters)
    chapters[0] = replace(chapters[0], notes_html=_note(rng, "Chapter one note ♥"))
    chapters[1] = replace(
        chapters[1],
        summary_html=_note(rng, "Chapter two summary"),
        notes_html=_note(rng, "Chapter two note"),
        end_notes_html=_note(rng, "Chapter two end note"),
    )
    chapters[2] = replace(chapters[2], end_notes_html=_note(rng, "Chapter three end note"))
    return replace(
        work,
        creators=(("river_writer", "Rivière"), ("ashfall", "ashfall")),
        categories=("F/F", "Gen"),
        fandoms=("Lantern Saga (Web Serial)", "星 Chronicles"),
        relationships=("Zoë Hollow/The Iron Crown", "Zoë Hollow & Ember"),
        summary_html="<p>A lantern, a river, and <em>one</em> long winter.</p>\n<p>Second line.</p>",
        notes_html=_note(rng, "Work note"),
        end_notes_html=_note(rng, "Work end note"),
        gift_to="lanternfan",
        series=((4401, "The Lantern Cycle", 2),),
        chapters=tuple(chapters),
    )


def _one_shot() -> Ao3Work:
    rng = random.Random(ONE_SHOT * 31)
    work = _base(ONE_SHOT, [None], planned=1)
    long_text = _chapters(rng, ONE_SHOT, [None], paragraphs=60)
    assert long_text[0].words > 1000  # a count printed with a thousands separator
    return replace(
        work,
        creators=(),
        rating="General Audiences",
        chapters=long_text,
        notes_html=_note(rng, "One-shot note"),
        end_notes_html=_note(rng, "One-shot end note"),
    )


def _explicit() -> Ao3Work:
    work = _base(EXPLICIT, ["Dusk", "Night", "Dawn"], planned=3)
    return replace(
        work,
        creators=(("orphan_account", "orphan_account"),),
        rating="Explicit",
        warnings=("Graphic Depictions Of Violence", "Major Character Death"),
        categories=("M/M",),
        access="adult",
    )


SPECIAL = {
    NORMAL: _normal,
    ONE_SHOT: _one_shot,
    EXPLICIT: _explicit,
    RESTRICTED: lambda: replace(_base(RESTRICTED, ["Locked"], planned=1), access="restricted"),
    FLAKY: lambda: _base(FLAKY, ["First", "Second"], planned=2),
    DOWN: lambda: _base(DOWN, ["Only"], planned=1),
    UNFINISHED: lambda: _base(UNFINISHED, ["Begun", "Continued"], planned=None),
    FULL_PAGE_FLAKY: lambda: _base(FULL_PAGE_FLAKY, ["One", "Two", "Three"], planned=3),
    ODD_WORDS: lambda: replace(_base(ODD_WORDS, ["Solo"], planned=1), words_shown="12.345"),
}


@lru_cache(maxsize=512)
def work(work_id: int) -> Ao3Work | None:
    """The work the site serves under this id, or None (the site answers 404)."""
    if work_id in SPECIAL:
        built = SPECIAL[work_id]()
        assert isinstance(built, Ao3Work)
        return built
    if work_id in PLAIN:
        count = work_id % 5 + 1
        return _base(work_id, [f"Part {n}" for n in range(1, count + 1)], planned=count)
    return None


def chapter_work(chapter_id: int) -> Ao3Work | None:
    """The work a chapter id belongs to (ids encode it, see `_chapter_id`)."""
    found = work((chapter_id - 80_000_000) // 1000)
    if found is None or not any(c.chapter_id == chapter_id for c in found.chapters):
        return None
    return found


# --- error pages to serve (tests change and reset these) --------------------------------

_lock = threading.Lock()
_error_pages: dict[tuple[int, str], int] = dict(DEFAULT_ERROR_PAGES)


def serve_error_pages(work_id: int, count: int, page: str = "work") -> None:
    """The next `count` answers for that page of the work ("work", "full", "navigate",
    "chapter") are AO3's error page with HTTP 200; ALWAYS for every answer."""
    with _lock:
        _error_pages[(work_id, page)] = count


def reset() -> None:
    """Back to the documented defaults (FLAKY twice, DOWN always, FULL_PAGE_FLAKY once)."""
    with _lock:
        _error_pages.clear()
        _error_pages.update(DEFAULT_ERROR_PAGES)


def _error_due(work_id: int, page: str) -> bool:
    with _lock:
        left = _error_pages.get((work_id, page), 0)
        if left > 0:
            _error_pages[(work_id, page)] = left - 1
        return left > 0


# --- pages in AO3's markup --------------------------------------------------------------


def _creator_label(user: str, pseud: str) -> str:
    return pseud if pseud == user else f"{pseud} ({user})"


def _byline(w: Ao3Work) -> str:
    links = [
        f'<a rel="author" href="/users/{quote(u)}/pseuds/{quote(p)}">{escape(_creator_label(u, p))}</a>'
        for u, p in w.creators
    ]
    return ", ".join(links) or "Anonymous"


def _tag_href(tag: str) -> str:
    """AO3's tag URLs: "/" is "*s*", "&" is "*a*", "." is "*d*"."""
    coded = tag.replace("/", "*s*").replace("&", "*a*").replace(".", "*d*")
    return f"/tags/{quote(coded, safe='*()')}/works"


def _tag_dd(kind: str, label: str, tags: tuple[str, ...]) -> str:
    if not tags:
        return ""
    items = "".join(f'<li><a class="tag" href="{_tag_href(t)}">{escape(t)}</a></li>' for t in tags)
    head = f'<a href="/tos_faq#tags">{label}</a>:' if kind == "warning" else f"{label}:"
    return f"""
          <dt class="{kind} tags">
              {head}
          </dt>
          <dd class="{kind} tags">
            <ul class="commas">
               {items}
            </ul>
          </dd>"""


def _plural(word: str, count: int) -> str:
    if count == 1:
        return word
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


def _series_dd(w: Ao3Work) -> str:
    if not w.series:
        return ""
    spans = "".join(
        f'<span class="series"><a class="previous" href="/works/{w.work_id - 1}">&#8592; Previous Work</a>'
        f'<span class="divider"> </span><span class="position">Part {part} of '
        f'<a href="/series/{sid}">{escape(title)}</a></span></span>'
        for sid, title, part in w.series
    )
    return f'\n      <dt class="series">Series:</dt>\n      <dd class="series">{spans}</dd>'


def _stats(w: Ao3Work) -> str:
    rows = [("Published:", "published", w.published_at.date().isoformat())]
    if w.updated_at is not None:
        label = "Completed:" if w.status == "completed" else "Updated:"
        rows.append((label, "status", w.updated_at.date().isoformat()))
    rows += [
        ("Words:", "words", f"{w.word_count:,}" if w.words_shown is None else w.words_shown),
        ("Chapters:", "chapters", w.chapters_stat),
        ("Comments:", "comments", f"{w.work_id % 90 + 3:,}"),
        ("Kudos:", "kudos", f"{w.work_id * 3:,}"),
        ("Hits:", "hits", f"{w.work_id * 41:,}"),
    ]
    return "".join(f'<dt class="{c}">{label}</dt><dd class="{c}">{v}</dd>' for label, c, v in rows)


def _meta(w: Ao3Work) -> str:
    tags = "".join(
        _tag_dd(kind, _plural(label, len(tags)) if plural else label, tags)
        for kind, label, tags, plural in (
            ("rating", "Rating", (w.rating,), False),
            ("warning", "Archive Warning", w.warnings, True),
            ("category", "Category", w.categories, True),
            ("fandom", "Fandom", w.fandoms, True),
            ("relationship", "Relationship", w.relationships, True),
            ("character", "Character", w.characters, True),
            ("freeform", "Additional Tags", w.freeforms, False),
        )
    )
    lang, language = w.language
    return f"""
    <h3 class="landmark heading">Work Header</h3>
<div class="wrapper">
  <dl class="work meta group">{tags}
      <dt class="language">
        Language:
      </dt>
      <dd class="language" lang="{lang}">
        {language}
      </dd>{_series_dd(w)}
    <dt class="stats">Stats:</dt>
    <dd class="stats">
<!-- end of cache -->
      <dl class="stats">{_stats(w)}</dl>
      </dd>
  </dl>
</div>
"""


def _head_notes(w: Ao3Work, endnotes_href: str) -> str:
    """The work's notes module: gift line, the author's notes, the jump to the end notes."""
    if not (w.notes_html or w.end_notes_html or w.gift_to):
        return ""
    gift = (
        f'<ul class="associations"><li>For <a href="/users/{w.gift_to}/gifts">{w.gift_to}</a>.</li></ul>'
        if w.gift_to
        else ""
    )
    notes = (
        f'<blockquote class="userstuff">\n      {w.notes_html}\n    </blockquote>'
        if w.notes_html
        else ""
    )
    jump = ""
    if w.end_notes_html:
        words = "more notes" if w.notes_html else "notes"
        jump = f'<p class="jump">\n        (See the end of the work for <a href="{endnotes_href}">{words}</a>.)\n    </p>'
    return f"""
      <div class="notes module">
  <h3 class="heading">Notes:</h3>
    {gift}
    {notes}
    {jump}
</div>
"""


def _preface(w: Ao3Work, *, first: bool, endnotes_href: str) -> str:
    summary = ""
    if first and w.summary_html:
        summary = f"""
      <div class="summary module">
        <h3 class="heading">Summary:</h3>
          <blockquote class="userstuff">
            {w.summary_html}
          </blockquote>
      </div>"""
    return f"""
        <div class="preface group">
  <h2 class="title heading">
    {escape(w.title)}
  </h2>
  <h3 class="byline heading">
    {_byline(w)}
  </h3>
{summary}
{_head_notes(w, endnotes_href) if first else ""}
</div>
"""


def _chapter_block(w: Ao3Work, c: Ao3Chapter) -> str:
    title = f": {escape(c.title)}" if c.title else ""
    summary = notes = end = ""
    if c.summary_html:
        summary = f"""
      <div id="summary" class="summary module">
        <h3 class="heading">Summary:</h3>
        <blockquote class="userstuff">
          {c.summary_html}
        </blockquote>
      </div>"""
    if c.notes_html or c.end_notes_html:
        jump = (
            f'<p>\n  (See the end of the chapter for  <a href="#chapter_{c.position}_endnotes">'
            f"{'more notes' if c.notes_html else 'notes'}</a>.)\n</p>"
            if c.end_notes_html
            else ""
        )
        quote_ = (
            f'<blockquote class="userstuff">{c.notes_html}</blockquote>' if c.notes_html else ""
        )
        notes = f"""
      <div id="notes" class="notes module">
        <h3 class="heading">Notes:</h3>
        {quote_}
        {jump}
      </div>"""
    if c.end_notes_html:
        end = f"""
  <div class="chapter preface group">
    <div class="end notes module" id="chapter_{c.position}_endnotes">
      <h3 class="heading">Notes:</h3>
      <blockquote class="userstuff">
        {c.end_notes_html}
      </blockquote>
    </div>
  </div>"""
    return f"""<!-- This partial requires local variable 'chapter' -->
<div class="chapter" id="chapter-{c.position}">
  <!-- chapter management -->
  <div class="chapter preface group">
    <h3 class="title">
      <a href="/works/{w.work_id}/chapters/{c.chapter_id}">Chapter {c.position}</a>{title}
    </h3>
    <!-- only display byline if different from the main byline -->
{summary}{notes}
  </div>

  <!--main content-->
  <div class="userstuff module" role="article">
    <h3 class="landmark heading" id="work">Chapter Text</h3>
{c.body_html}
  </div>
  <!--/main-->
{end}
</div>
<!-- end of cache -->
"""


def _afterword(w: Ao3Work) -> str:
    if not (w.end_notes_html or w.series):
        return ""
    notes = ""
    if w.end_notes_html:
        notes = f"""<!--work endnotes-->
<div id="work_endnotes" class="end notes module">
  <h3 class="heading">Notes:</h3>
  <blockquote class="userstuff">{w.end_notes_html}</blockquote>
</div>
<!--/work endnotes-->"""
    series = ""
    if w.series:
        items = "".join(
            f'<li>Part {p} of <a href="/series/{s}">{escape(t)}</a></li>' for s, t, p in w.series
        )
        series = f'<div id="series" class="series module"><h3 class="heading">Series this work belongs to:</h3><ul>{items}</ul></div>'
    return f"""
    <!--afterword-->
    <div class="afterword preface group">
        {notes}
        {series}
    </div>
    <!--/afterword-->
"""


def _navigation(w: Ao3Work, current: Ao3Chapter | None) -> str:
    items = [
        f'<li class="chapter entire"><a href="/works/{w.work_id}?view_full_work=true">Entire Work</a></li>'
    ]
    if current is not None:
        at = current.position - 1
        if at > 0:
            prev = w.chapters[at - 1].chapter_id
            items.append(
                f'<li class="chapter previous"><a href="/works/{w.work_id}/chapters/{prev}#workskin">&#8592; Previous Chapter</a></li>'
            )
        if at + 1 < len(w.chapters):
            nxt = w.chapters[at + 1].chapter_id
            items.append(
                f'<li class="chapter next"><a href="/works/{w.work_id}/chapters/{nxt}#workskin">Next Chapter &#8594;</a></li>'
            )
        options = "".join(
            f'<option {SELECTED if c is current else ""}value="{c.chapter_id}">{c.position}. {escape(c.display_title)}</option>'
            for c in w.chapters
        )
        items.append(f"""<li class="chapter" aria-haspopup="true">
      <noscript><a href="/works/{w.work_id}/navigate">Chapter Index</a></noscript>
      <a class="hidden" href="#">Chapter Index</a>
      <ul id="chapter_index" class="expandable secondary hidden">
        <li><form action="/works/{w.work_id}/chapters/{current.chapter_id}" accept-charset="UTF-8" method="get"><p>
          <select name="selected_id" id="selected_id">{options}</select>
          <span class="submit actions"><input type="submit" name="commit" value="Go" /></span>
        </p></form></li>
        <li><a href="/works/{w.work_id}/navigate">Full-page index</a></li>
      </ul>
    </li>""")
    items.append(
        f'<li class="download"><a href="#">Download</a><ul class="expandable secondary"><li><a href="/downloads/{w.work_id}/work.epub">EPUB</a></li></ul></li>'
    )
    return (
        '<h3 class="landmark heading">Actions</h3>\n<ul class="work navigation actions" role="menu">\n'
        + "\n".join(items)
        + "\n</ul>\n"
    )


def _layout(title: str, main_class: str, main: str) -> str:
    """AO3's page around `div#main`: header with the logged-out login dropdown, footer."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>{escape(title)} [Archive of Our Own]</title>
</head>
<body>
<div id="outer" class="wrapper">
  <ul id="skiplinks"><li><a href="#main">Main Content</a></li></ul>
  <header id="header" class="region">
    <h1 class="heading"><a href="/"><span>Archive of Our Own</span></a></h1>
    <div id="login" class="dropdown">
      <p class="user actions"><a id="login-dropdown" href="/users/login">Log In</a></p>
      <div id="small_login" class="simple login">
        <form class="new_user" id="new_user_session_small" action="/users/login" accept-charset="UTF-8" method="post">
          <dl><dt><label for="user_session_login_small">Username or email:</label></dt>
          <dd><input id="user_session_login_small" type="text" name="user[login]" /></dd></dl>
        </form>
      </div>
    </div>
  </header>
  <div id="inner" class="wrapper">
    <div id="main" class="{main_class} region" role="main">
      <div class="flash"></div>
{main}
    </div>
  </div>
  <div id="footer" role="contentinfo" class="region">
    <h3 class="landmark heading">Footer</h3>
    <ul class="navigation actions"><li class="module group"><h4 class="heading">About the Archive</h4></li></ul>
  </div>
</div>
</body>
</html>
"""


def _feedback(w: Ao3Work) -> str:
    return f"""
<div id="feedback" class="feedback">
  <h3 class="landmark heading">Actions</h3>
  <ul class="actions" role="navigation"><li><a href="#main">&#8593; Top</a></li></ul>
  <form id="new_kudo" action="/kudos" accept-charset="UTF-8" method="post">
    <input value="{w.work_id}" type="hidden" name="kudo[commentable_id]" id="kudo_commentable_id" />
    <input type="submit" name="commit" value="Kudos ♥" id="kudo_submit" />
  </form>
</div>
"""


def _work_frame(
    w: Ao3Work, current: Ao3Chapter | None, preface: str, chapters: str, after: str
) -> str:
    return f"""
  <div class="work">
    {_navigation(w, current)}
    {_meta(w)}
    <div id="work-skin" class="wrapper">
      <!-- BEGIN section where work skin applies -->
      <div id="workskin">
{preface}
      <!--/descriptions-->
        <div id="chapters" role="article">
{chapters}
        </div>
        <!--/chapter-->
{after}
      </div>
      <!-- END work skin -->
    </div>
  </div>
  <!-- END work -->
{_feedback(w)}"""


def one_shot_page(w: Ao3Work) -> str:
    """`/works/<id>` of a work not in chapters: its text in `div.userstuff`, no chapter id."""
    text = f"""          <h3 class="landmark heading" id="work">Work Text:</h3>
          <div class="userstuff">{w.chapters[0].body_html}
        <!-- end cache -->
    </div>"""
    preface = _preface(w, first=True, endnotes_href="#work_endnotes")
    main = _work_frame(w, None, preface, text, _afterword(w))
    return _layout(f"{w.title} - {w.author}", "works-show", main)


def chapter_page(w: Ao3Work, c: Ao3Chapter) -> str:
    """`/works/<id>/chapters/<cid>`: summary and work notes on the first chapter, the end
    notes (afterword) on the last."""
    last = c is w.chapters[-1]
    preface = _preface(
        w,
        first=c is w.chapters[0],
        endnotes_href=f"/chapters/{w.chapters[-1].chapter_id}#work_endnotes",
    )
    main = _work_frame(w, c, preface, _chapter_block(w, c), _afterword(w) if last else "")
    return _layout(f"{w.title} - Chapter {c.position} - {w.author}", "chapters-show", main)


def full_work_page(w: Ao3Work) -> str:
    """`/works/<id>?view_full_work=true`: every chapter block in one page."""
    if not w.chaptered:
        return one_shot_page(w)
    blocks = "\n".join(_chapter_block(w, c) for c in w.chapters)
    preface = _preface(w, first=True, endnotes_href="#work_endnotes")
    main = _work_frame(w, None, preface, blocks, _afterword(w))
    return _layout(f"{w.title} - {w.author}", "works-show", main)


def navigate_page(w: Ao3Work) -> str:
    rows = "\n".join(
        f'  <li><a href="/works/{w.work_id}/chapters/{c.chapter_id}">{c.position}. {escape(c.display_title)}</a>'
        f' <span class="datetime">({c.published_at.date().isoformat()})</span></li>'
        for c in w.chapters
    )
    main = f"""<h2 class="heading">Chapter Index for <a href="/works/{w.work_id}">{escape(w.title)}</a> by {_byline(w)}</h2>

<ol class="chapter index group" role="navigation">
{rows}
</ol>
"""
    return _layout(f"{w.title} - Chapter Index", "works-navigate", main)


def adult_page(w: Ao3Work, path: str) -> str:
    """The "Adult Content Warning" page a logged-out reader gets instead of the work."""
    main = f"""<h2 class="landmark heading">Adult Content Warning</h2>
<p class="caution">
This work could have adult content. If you continue, you have agreed that you are willing to see such content.
</p>
<ul class="actions" role="navigation">
<li><a href="{path}?view_adult=true">Yes, Continue</a></li>
<li><a href="javascript:history.back()">No, Go Back</a></li>
</ul>
<p class="message footnote">
If you accept cookies from our site and you choose &quot;Yes, Continue&quot;, you will not be asked again during this session.
</p>
<div class="clear"></div>
<ol class="work index group">
<li id="work_{w.work_id}" class="work blurb group work-{w.work_id}" role="article">
<div class="header module">
<h4 class="heading"><a href="/works/{w.work_id}">{escape(w.title)}</a> by {_byline(w)}</h4>
<ul class="required-tags"><li><span class="rating-explicit rating" title="{w.rating}"><span class="text">{w.rating}</span></span></li></ul>
</div>
<blockquote class="userstuff summary">{w.summary_html or ""}</blockquote>
<dl class="stats"><dt class="words">Words:</dt><dd class="words">{w.word_count:,}</dd><dt class="chapters">Chapters:</dt><dd class="chapters">{w.chapters_stat}</dd></dl>
</li>
</ol>
"""
    return _layout(f"{w.title} - {w.author}", "works-show", main)


def login_page(*, restricted: bool, return_to: str) -> str:
    """`/users/login`; `restricted=true` adds why a work sent the reader here."""
    sorry = (
        '<h3 class="heading">Sorry!</h3>\n<p>This work is only available to registered users of the Archive. '
        "If you already have an Archive of Our Own account, log in now. "
        '<a href="/signup">Or join us for free - it&#39;s easy.</a></p>'
        if restricted
        else '<h3 class="heading">Log in</h3>'
    )
    main = f"""{sorry}
<div id="loginform">
<form class="new_user" id="new_user" action="/users/login?return_to={quote(return_to, safe="")}" accept-charset="UTF-8" method="post">
  <dl>
    <dt><label for="user_login">Username or email:</label></dt>
    <dd><input type="text" name="user[login]" id="user_login" /></dd>
    <dt><label for="user_password">Password:</label></dt>
    <dd><input type="password" name="user[password]" id="user_password" /></dd>
    <dt class="landmark">Submit</dt>
    <dd class="submit actions"><input type="submit" name="commit" value="Log in" class="submit" /></dd>
  </dl>
</form>
</div>
<p>Forgot your password or username? <a href="/users/password/new">Reset your password</a>.</p>
"""
    return _layout("Log In", "sessions-new", main)


def error_page() -> str:
    """What AO3 sometimes answers with HTTP 200 when it is overloaded."""
    main = """<h2 class="heading">Error 503 - Service unavailable</h2>
<h3 class="heading">Retry later</h3>
<p>The Archive is under heavy load. Check our <a href="https://www.otwstatus.org">status page</a> for updates if this keeps happening.</p>"""
    return _layout("Page Responding Too Slowly", "system errors error-503", main)


# --- routes -----------------------------------------------------------------------------


def _html(body: str) -> Answer:
    return Answer(200, body)


def _redirect(location: str) -> Answer:
    return Answer(
        302,
        f'<html><body>You are being <a href="{escape(location)}">redirected</a>.</body></html>',
        headers={"Location": location},
    )


def _gate(w: Ao3Work, asked: Asked, *, adult_gated: bool = True) -> Answer | None:
    """The login redirect of a restricted work, or the adult warning (unless asked past)."""
    if w.access == "restricted":
        return _redirect(f"/users/login?restricted=true&return_to={quote(asked.path, safe='')}")
    if adult_gated and w.access == "adult" and asked.query.get("view_adult") != ["true"]:
        return _html(adult_page(w, asked.path))
    return None


def _work_route(w: Ao3Work, asked: Asked) -> Answer:
    full = asked.query.get("view_full_work") == ["true"]
    if _error_due(w.work_id, "full" if full else "work"):
        return _html(error_page())
    gate = _gate(w, asked)
    if gate is not None:
        return gate
    if full:
        return _html(full_work_page(w))
    if w.chaptered:  # AO3 keeps no query here: view_adult lives on in its cookie
        return _redirect(f"/works/{w.work_id}/chapters/{w.chapters[0].chapter_id}")
    return _html(one_shot_page(w))


def _chapter_route(w: Ao3Work, chapter_id: int, asked: Asked) -> Answer | None:
    c = next((c for c in w.chapters if c.chapter_id == chapter_id), None)
    if c is None:
        return None
    if _error_due(w.work_id, "chapter"):
        return _html(error_page())
    return _gate(w, asked) or _html(chapter_page(w, c))


def _navigate_route(w: Ao3Work, asked: Asked) -> Answer:
    if _error_due(w.work_id, "navigate"):
        return _html(error_page())
    return _gate(w, asked, adult_gated=False) or _html(navigate_page(w))


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None


def route(asked: Asked) -> Answer | None:
    """AO3's answer to one request; None for a page it does not have (404)."""
    parts = asked.path.rstrip("/").split("/")[1:]
    if asked.method != "GET":
        return None
    if parts == ["users", "login"]:
        return_to = (asked.query.get("return_to") or ["/"])[0]
        return _html(
            login_page(restricted=asked.query.get("restricted") == ["true"], return_to=return_to)
        )
    if len(parts) == 2 and parts[0] == "chapters" and (cid := _number(parts[1])) is not None:
        owner = chapter_work(cid)
        return _redirect(f"/works/{owner.work_id}/chapters/{cid}") if owner else None
    if len(parts) < 2 or parts[0] != "works" or (work_id := _number(parts[1])) is None:
        return None
    w = work(work_id)
    if w is None:
        return None
    if len(parts) == 2:
        return _work_route(w, asked)
    if parts[2:] == ["navigate"]:
        return _navigate_route(w, asked)
    if len(parts) == 4 and parts[2] == "chapters" and (cid := _number(parts[3])) is not None:
        return _chapter_route(w, cid, asked)
    return None
