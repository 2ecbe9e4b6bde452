"""A Scribble Hub look-alike: series pages, the admin-ajax table of contents and chapter
pages in the real site's markup (see shared/fixtures/README.md), with our own text.

Links are absolute on https://www.scribblehub.com, as the real site writes them; the
server is reached through an alias, so the adapter must rebase them (`site_link`).
Redirects (a series URL without its slug, a chapter URL without the series slug) are
relative, so that they stay on the fixture server.

Fictions (`fiction(id)`; expected values are the dataclasses' fields):
- 3001 NORMAL: ongoing, 23 chapters (the series page shows the newest 15: the crawl must
  use the POST), genres, tags, content warnings, a rating; author notes before and/or
  after the story on some chapters, an announcement box (`div.wi_news`) on others;
  chapter 5 was re-posted: its id is the fiction's highest and its date the earliest,
  while the site's `order` keeps it fifth. The `order` attributes have a gap (a deleted
  chapter), as on the real site.
- 3002 COMPLETED: 8 chapters; the status line reads "Completed", the date in its tooltip.
- 3003 ONE_CHAPTER: one long chapter with a note after it; genres but no tags.
- 3004 ODD: the status line reads "On Hold - Updated 5 hours ago" (no status the site
  uses, a relative date), no cover image, rated by nobody, no tag block, the newest
  chapter dated only "5 hours ago", and the series page counts 2 chapters more than the
  table of contents lists.
- 3005 STUB: no chapters yet (the series page counts 0, the lists are empty).
- 3901 CHALLENGE: the series page is Cloudflare's "Just a moment..." page, HTTP 200.
- 3902 NO_TOC: the table-of-contents request answers "0" (WordPress's answer to an
  action it has no handler for).
- 3903 BAD_GATEWAY: chapter 2 answers "502 Bad Gateway" with HTTP 200, every time.
- 7000-7999 MANY: ongoing fictions of id % 9 + 3 chapters (for many jobs at once).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from html import escape
from urllib.parse import quote

from tests.fixture_site.answer import Answer, Asked

REAL = "https://www.scribblehub.com"
CDN = "https://cdn.scribblehub.com"
PER_PAGE = 15  # chapters a series page and a table-of-contents page show
TOC_ACTION = "wi_getreleases_pagination"
ROBOTS_TXT = "User-agent: *\nDisallow: /wp-admin/\nAllow: /wp-admin/admin-ajax.php\n"
NORMAL, COMPLETED, ONE_CHAPTER, ODD, STUB = 3001, 3002, 3003, 3004, 3005
CHALLENGE, NO_TOC, BAD_GATEWAY = 3901, 3902, 3903
MANY = range(7000, 8000)
BASE_DATE = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WORDS = (
    "lamp", "orchard", "kettle", "moth", "cinder", "brook", "meadow", "copper", "lantern",
    "spindle", "thistle", "quarry", "harp", "willow", "ferry", "glacier", "bramble", "wren",
    "crêpe", "jalapeño", "smörgåsbord", "déjà", "Ångström", "火", "月", "바람", "🦊",
    "«cited»", "“quoted”", "it’s", "well-worn", "—", "…", "&", "<tag>",
)  # fmt: skip
GENRES = ("Fantasy", "Slice of Life", "Adventure", "Comedy", "Sci-fi", "Drama")
TAGS = ("Alchemy", "Female Protagonist", "Found Family", "Magic School", "Slow Life", "Ünïcode Tag")
WARNINGS = ("Gore", "Strong Language")


@dataclass(frozen=True)
class ShChapter:
    chapter_id: int
    position: int  # 1-based reading order
    order: int  # the site's `order` attribute: reading order with gaps
    title: str
    published_at: datetime  # what the tooltip says, to the minute
    relative: str | None  # the site shows only this ("5 hours ago"): the adapter reads None
    paragraphs: tuple[str, ...]
    note_before: str | None = None  # author's note text before the story
    note_after: str | None = None
    news: str | None = None  # an announcement box (not story text) after the story

    @property
    def expected_date(self) -> datetime | None:
        return None if self.relative else self.published_at

    @property
    def story_html(self) -> str:
        """The chapter's content_html as the adapter must store it."""
        return "\n".join(f"<p>{escape(p, quote=False)}</p>" for p in self.paragraphs)

    @property
    def notes_html(self) -> str | None:
        """The chapter's author_notes_html as the adapter must store it."""
        notes = [
            f"<p>{escape(n, quote=False)}</p>" for n in (self.note_before, self.note_after) if n
        ]
        return "\n<hr/>\n".join(notes) if notes else None


@dataclass(frozen=True)
class ShFiction:
    fiction_id: int
    slug: str
    title: str
    author: str
    author_id: int
    description_html: str
    genres: tuple[str, ...]
    tags: tuple[str, ...]
    warnings: tuple[str, ...]
    status_line: str  # the sidebar's status word: "Ongoing", "Completed", "On Hold"
    status: str | None  # what the adapter must read off it
    updated_tooltip: str  # after "Last updated: "
    updated_at: datetime | None  # what the adapter must read off the tooltip
    rating: float  # the stars shown
    ratings: int  # how many rated; 0: not rated (the adapter reads None)
    cover: str | None  # None: the page has no cover image
    chapters: tuple[ShChapter, ...] = field(default=())
    counted: int | None = None  # "Table of Contents <n>"; None: len(chapters)

    @property
    def count(self) -> int:
        return len(self.chapters) if self.counted is None else self.counted

    @property
    def expected_rating(self) -> float | None:
        return self.rating if self.ratings else None

    def path(self) -> str:
        return f"/series/{self.fiction_id}/{self.slug}/"

    def chapter_path(self, chapter: ShChapter) -> str:
        return f"/read/{self.fiction_id}-{self.slug}/chapter/{chapter.chapter_id}/"

    def newest_first(self) -> tuple[ShChapter, ...]:
        return tuple(reversed(self.chapters))


def site_date(when: datetime) -> str:
    """As the site prints it in a tooltip: "Nov 19, 2022 06:00 PM"."""
    hour = when.hour % 12 or 12
    half = "AM" if when.hour < 12 else "PM"
    return f"{MONTHS[when.month - 1]} {when.day}, {when.year} {hour:02d}:{when.minute:02d} {half}"


def _short_date(when: datetime) -> str:
    return f"{MONTHS[when.month - 1]} {when.day}, {when.year}"


# --- content --------------------------------------------------------------------------


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _name(rng: random.Random) -> str:
    return rng.choice([w for w in WORDS if w.isalpha()]).capitalize()


def _paragraphs(rng: random.Random, count: int) -> tuple[str, ...]:
    return tuple(
        " ".join(_sentence(rng, rng.randint(5, 14)) for _ in range(rng.randint(2, 5)))
        for _ in range(count)
    )


def _chapter(rng: random.Random, fiction_id: int, position: int, paragraphs: int) -> ShChapter:
    roll = rng.random()
    return ShChapter(
        chapter_id=fiction_id * 1000 + position * 3,
        position=position,
        order=position if position < 10 else position + 1,  # chapter 10's slot was deleted
        title=f"Chapter {position} – {_sentence(rng, 3)[:-1]}",
        published_at=BASE_DATE
        + timedelta(days=2 * position, hours=rng.randint(0, 11), minutes=rng.choice((0, 5, 42))),
        relative=None,
        paragraphs=_paragraphs(rng, paragraphs),
        note_before=f"Before the chapter ♥ {position}: thanks for reading!" if roll < 0.3 else None,
        note_after=f"After-note {position}: the next one is on Friday."
        if 0.2 < roll < 0.6
        else None,
        news=f"Announcement {position}: the cover is being redrawn." if roll > 0.8 else None,
    )


def _build(fiction_id: int, *, chapters: int, paragraphs: int = 4) -> ShFiction:
    rng = random.Random(fiction_id * 7919)
    items = tuple(_chapter(rng, fiction_id, p, paragraphs) for p in range(1, chapters + 1))
    newest = items[-1].published_at if items else BASE_DATE
    return ShFiction(
        fiction_id=fiction_id,
        slug=f"fixture-series-{fiction_id}",
        title=f"The {_name(rng)} {_name(rng)} — Ünïcode Series {fiction_id} & Co.",
        author=f"Áuthor {fiction_id}",
        author_id=40_000 + fiction_id,
        description_html=f"<p>{escape(_sentence(rng, 18), quote=False)}</p>\n<p>{escape(_sentence(rng, 9), quote=False)}<br>\nsecond line ✧</p>",
        genres=GENRES[: 2 + fiction_id % 3],
        tags=TAGS[: 1 + fiction_id % 5],
        warnings=WARNINGS[: fiction_id % 3],
        status_line="Ongoing",
        status="ongoing",
        updated_tooltip=site_date(newest),
        updated_at=newest,
        rating=round(3.0 + (fiction_id % 20) / 10, 1),
        ratings=10 + fiction_id % 90,
        cover=f"{CDN}/images/{fiction_id % 100}/fixture-series-{fiction_id}_{fiction_id}_1700000000.jpg",
        chapters=items,
    )


def _normal(fiction_id: int) -> ShFiction:
    """23 chapters; chapter 5 re-posted (newest id, earliest date); notes and news boxes."""
    built = _build(fiction_id, chapters=23)
    chapters = list(built.chapters)
    chapters[0] = replace(
        chapters[0], note_before="Welcome, reader ♥", note_after="See you in chapter 2."
    )
    chapters[1] = replace(
        chapters[1], note_before=None, note_after=None, news="Announcement: a glossary is coming."
    )
    chapters[2] = replace(chapters[2], note_before=None, note_after=None, news=None)
    chapters[4] = replace(
        chapters[4],
        chapter_id=fiction_id * 1000 + 999,
        published_at=BASE_DATE - timedelta(days=40),
    )
    return replace(built, chapters=tuple(chapters), warnings=WARNINGS, tags=TAGS)


def _completed(fiction_id: int) -> ShFiction:
    built = _build(fiction_id, chapters=8)
    return replace(built, status_line="Completed", status="completed")


def _one_chapter(fiction_id: int) -> ShFiction:
    built = _build(fiction_id, chapters=1, paragraphs=30)
    only = replace(
        built.chapters[0], note_before=None, note_after="The end — thank you!", news=None
    )
    return replace(built, chapters=(only,), tags=())


def _odd(fiction_id: int) -> ShFiction:
    built = _build(fiction_id, chapters=4)
    newest = replace(built.chapters[-1], relative="5 hours ago")
    return replace(
        built,
        chapters=(*built.chapters[:-1], newest),
        counted=6,
        status_line="On Hold",
        status=None,
        updated_tooltip="5 hours ago",
        updated_at=None,
        rating=0.0,
        ratings=0,
        cover=None,
        tags=(),
        warnings=(),
    )


SPECIAL = {
    NORMAL: _normal,
    COMPLETED: _completed,
    ONE_CHAPTER: _one_chapter,
    ODD: _odd,
    STUB: lambda fiction_id: _build(fiction_id, chapters=0),
    CHALLENGE: lambda fiction_id: _build(fiction_id, chapters=3),
    NO_TOC: lambda fiction_id: _build(fiction_id, chapters=3),
    BAD_GATEWAY: lambda fiction_id: _build(fiction_id, chapters=3),
}


@lru_cache(maxsize=2048)
def fiction(fiction_id: int) -> ShFiction | None:
    """The series the site serves under this id, or None (the site answers 404)."""
    if fiction_id in SPECIAL:
        return SPECIAL[fiction_id](fiction_id)
    if fiction_id in MANY:
        return _build(fiction_id, chapters=fiction_id % 9 + 3, paragraphs=2)
    return None


def chapter(fiction_id: int, chapter_id: int) -> ShChapter | None:
    found = fiction(fiction_id)
    if found is None:
        return None
    return next((c for c in found.chapters if c.chapter_id == chapter_id), None)


# --- pages ----------------------------------------------------------------------------

HEAD = """<!DOCTYPE html>
<html lang="en-US" class="no-js no-svg">
<head>
<meta charset="UTF-8">
<title>{title} | Scribble Hub</title>
<meta property="og:site_name" content="Scribble Hub">
{meta}
<link rel="canonical" href="{canonical}">
<script src="/cdn-cgi/challenge-platform/scripts/precursor/main.js"></script></head>
<body class="{body_class}"><div id="page" class="site">
"""
FOOT = """</div>
</body>
</html>
"""


def series_page(f: ShFiction, *, toc_page: int = 1) -> str:
    """The series page: metadata and one page (15) of the newest chapters."""
    canonical = REAL + f.path()
    meta = "\n".join(
        [
            f'<meta property="og:url" content="{canonical}">',
            f'<script type="application/ld+json">{_book_json(f)}</script>',
            *(
                [f'<script type="application/ld+json">{_rating_json(f)}</script>']
                if f.ratings
                else []
            ),
        ]
    )
    head = HEAD.format(
        title=escape(f.title),
        meta=meta,
        canonical=canonical,
        body_class="fictionposts-template-default single single-fictionposts",
    )
    shown = f.newest_first()[PER_PAGE * (toc_page - 1) : PER_PAGE * toc_page]
    pages = max(1, -(-len(f.chapters) // PER_PAGE))
    body = f"""<div class="site-content-contain"><div id="content" class="site-content">
<div class="wi_fic_wrap bottom">
<div vocab="http://schema.org/" typeof="Book">
<div class="novel-container"><div class="fic_title" property="name" title="{escape(f.title)}">{escape(f.title, quote=False)}</div><div class="novel-cover">
	<div class="fic_image">
	{f'<img src="{f.cover}" alt="{escape(f.title)}" property="image">' if f.cover else ""}
	</div>
	</div><div class="fic_stats"><span class="st_item"><i class="fa fa-eye" aria-hidden="true"></i> {f.fiction_id * 13}k <span class="mb_stat">Views</span></span><span class="st_item"><i class="fa fa-heart" aria-hidden="true"></i> {f.fiction_id % 977} <span class="mb_stat">Favorites</span></span><span class="st_item"><i class="fa fa-list-alt" aria-hidden="true"></i> {f.count} <span class="mb_stat">Chapters</span></span><span class="st_item"><i class="fa fa-calendar fic" aria-hidden="true"></i> 3 <span class="mb_stat">Chapters/Week</span></span></div>{_rating_block(f)}<div class="cleardiv"></div>{_read_button(f)}</div>
<div class="wi-fic_l-content fic">
<div class="box_fictionpage details"><div class="fic_row details"><div class="wi_novel_title">Synopsis</div><div class="wi_fic_desc" property="description">{f.description_html}</div><div class="wi_novel_title">Genre</div><span class="wi_fic_genre">{"".join(_genre(g) for g in f.genres)}</span>{_tag_block(f)}</div></div>
<div class="wi_novel_title tags toc">Table of Contents <span class="cnt_toc">{f.count}</span></div>
<div id="review_new_tab"><div class="fic_toc_bar"><span class="show_results"><span class="show_list">Show</span><select id="show_chapters"><option value="15" selected="">15</option></select></span></div>{toc_list(f, shown, series_page=True)}<div style="overflow: auto;"><div style="float:right; padding: 10px;"><ul id="pagination-mesh-toc" class="pagination-sm light-theme simple-pagination">{"".join(f'<li><a href="?toc={n}#content1" class="page-link">{n}</a></li>' for n in range(1, pages + 1))}</ul></div></div></div>
<div class="wi_novel_title tags pedit_body nreview">Reviews <span class="cnt_toc">{f.fiction_id % 7}</span></div>
</div>
<div class="wi-fic_r-content">
<div class="sb_box"><div class="sb_content author"><div class="author_extra"></div><div style="text-align:center;" property="author" typeof="Person"><span property="name"><a href="{REAL}/profile/{f.author_id}/author-{f.author_id}/"><span class="auth_name_fic">{escape(f.author, quote=False)}</span></a></span></div></div></div>
<div class="sb_box"><div class="sb_content copyright"><ul class="widget_fic_similar">{_warnings(f)}<li><img class="copy_allrights" src="{REAL}/images/allrightsreversed.png"><span style="position: relative; top: -4px;">All Rights Reserved</span></li><li>{_status_line(f)}</li></ul></div></div>
</div>
</div>
<input type="hidden" id="mypostid" value="{f.fiction_id}"><input type="hidden" id="istranslation" value="0"><input type="hidden" id="chpcounter" value="{f.count}"><input type="hidden" id="mypostid_stats" value="{f.fiction_id}">
</div>
</div></div>
"""
    return head + body + FOOT


def _book_json(f: ShFiction) -> str:
    url = REAL + f.path()
    data: dict[str, object] = {
        "@context": "https://schema.org",
        "@type": "Book",
        "@id": url,
        "name": escape(f.title),
    }
    data |= {"url": url, "author": {"@type": "Person", "name": escape(f.author)}}
    return json.dumps(data, separators=(",", ":")).replace("/", "\\/")  # as WordPress writes it


def _rating_json(f: ShFiction) -> str:
    data: dict[str, object] = {
        "@context": "https://schema.org",
        "@type": "AggregateRating",
        "bestRating": "5",
    }
    data |= {"ratingValue": f"{f.rating:g}", "ratingCount": f.ratings}
    return json.dumps(data, separators=(",", ":")).replace("/", "\\/")


def _rating_block(f: ShFiction) -> str:
    stars = "".join(
        f'<i title="Rate this novel {n} stars" class="fa fa-star ficrate" data-rating="{n}"></i>'
        for n in range(1, 6)
    )
    return f"""<div class="fic_rate" id="chk_ficrate"><span id="ratefic_user">{stars}<span> <span>{f.rating:g}</span> <span style="font-size:14px;">(<span class="rate_more" dp="yes" onclick="show_ratings();">{f.ratings} ratings</span>)<span class="u_r_rate"></span></span></span></span></div>"""


def _read_button(f: ShFiction) -> str:
    if not f.chapters:
        return '<div class="read_buttons"></div>'
    first = REAL + f.chapter_path(f.chapters[0])
    return (
        f'<div class="read_buttons"><a href="{first}"><span class="btn_read">Read</span></a></div>'
    )


def _genre(name: str) -> str:
    slug = quote(name.lower().replace(" ", "-"))
    return f'<span property="genre"><a class="fic_genre" gid="{len(name)}" href="{REAL}/genre/{slug}/" title="View All {escape(name)} Related Series">{escape(name, quote=False)}</a></span>'


def _tag_block(f: ShFiction) -> str:
    if not f.tags:
        return ""
    links = " ".join(
        f'<a class="stag{" odd" if n % 2 == 0 else ""}" id="etagme" href="{REAL}/tag/{quote(t.lower().replace(" ", "-"))}/" title="View All {escape(t)} Related Series">{escape(t, quote=False)}</a>'
        for n, t in enumerate(f.tags)
    )
    return f'<div class="wi_novel_title tags">Tags</div><span class="wi_fic_showtags"><span class="wi_fic_showtags_inner">{links}</span></span>'


def _warnings(f: ShFiction) -> str:
    if not f.warnings:
        return ""
    items = "".join(
        f'<li class="mature_contains"><a href="{REAL}/content/{w.lower().replace(" ", "-")}/">{escape(w, quote=False)}</a></li>'
        for w in f.warnings
    )
    return f'<li><span title="This story may contain sexuality, strong language, violence and/or other mature themes" class="rnd_stats tooltip" style="color:#ffffff;"><i class="fa fa-exclamation fa-rotate-180" aria-hidden="true"></i></span>Content Warning<ul class="ul_rate_expand">{items}</ul></li>'


def _status_line(f: ShFiction) -> str:
    icon = '<span class="rnd_stats" style="padding: 1px 7px; color: #fff;"><i class="fa fa-question status" aria-hidden="true"></i></span>'
    tooltip = f"Last updated: {f.updated_tooltip}"
    if f.status_line == "Completed":  # the date only in the tooltip
        return f'{icon}<span title="{escape(tooltip)}">Completed</span>'
    shown = f.updated_tooltip if f.updated_at is None else _short_date(f.updated_at)
    return f'{icon}<span>{escape(f.status_line)} - Updated <span title="{escape(tooltip)}">{escape(shown)}</span></span>'


def toc_list(f: ShFiction, chapters: tuple[ShChapter, ...], *, series_page: bool = False) -> str:
    """The `ol.toc_ol` of a series page, or of the table-of-contents answer."""
    items = "".join(_toc_item(f, c, series_page=series_page) for c in chapters)
    return f'<div class="wi_fic_table main"><div class="wi_fic_table toc"><ol class="toc_ol">{items}</ol></div></div>'


def _toc_item(f: ShFiction, c: ShChapter, *, series_page: bool) -> str:
    tooltip = c.relative or site_date(c.published_at)
    shown = c.relative or _short_date(c.published_at)
    link = f'<a class="toc_a" href="{REAL + f.chapter_path(c)}">{escape(c.title, quote=False)}</a><span class="fic_date_pub" title="{escape(tooltip)}">{escape(shown)}</span>'
    if series_page:
        return f'<li title="Bookmark Chapter" class="toc_w" order="{c.order}">{link}</li>'
    bookmark = f'<span title="Bookmark chapter" onclick="rl_checkbox_main(this,\'{c.chapter_id}\');" id="rl_checkbox_main" value="0"><i class="fa fa-check icon-invisible" aria-hidden="true"></i></span>'
    return f'<li title="" class="toc_w newchp" order="{c.order}">{bookmark}{link}</li>'


def toc_answer(f: ShFiction, pagenum: int) -> str:
    """The admin-ajax answer: every chapter (pagenum -1) or a page of 15, newest first,
    then the "0" WordPress's admin-ajax.php prints after every answer."""
    newest = f.newest_first()
    shown = newest if pagenum == -1 else newest[PER_PAGE * (pagenum - 1) : PER_PAGE * pagenum]
    return toc_list(f, shown) + "0"


def chapter_page(f: ShFiction, c: ShChapter) -> str:
    canonical = REAL + f.chapter_path(c)
    head = HEAD.format(
        title=f"{escape(f.title)} - {escape(c.title)}",
        meta="",
        canonical=canonical,
        body_class=f"chapters-template-default single single-chapters postid-{c.chapter_id}",
    )
    raw = _note(f, c.note_before) + c.story_html + _news(c.news) + _note(f, c.note_after)
    body = f"""<div class="site-content-contain chapters"><div class="wi_fic_wrap chapter"><div class="wi-main">
<div class="wi_breadcrumb chapter"><a href="{REAL}"><i class="fa fa-home" aria-hidden="true"></i></a> <span class="vam"> &gt; </span> <a href="{REAL + f.path()}">{escape(f.title, quote=False)}</a></div>
<div id="primary" class="content-area chp"><main id="main read chapter" class="site-main" role="main">
<div class="chapter-title">{escape(c.title, quote=False)}</div><div class="chp_byauthor"><a href="{REAL + f.path()}">{escape(f.title, quote=False)}</a> by <a href="{REAL}/profile/{f.author_id}/author-{f.author_id}/">{escape(f.author, quote=False)}</a></div>
<div class="chapter_seperate"></div><div id="chp_contents"><div class="nav_chp_fi" dpmb="yes"><div class="prenext">{_nav(f, c)}</div></div><div class="chp_raw" id="chp_raw">{raw}</div></div>
</main></div>
</div></div></div>
<input type="hidden" id="mypostid" value="{c.chapter_id}"><input type="hidden" id="istranslation" value="0"><input type="hidden" id="mypostid_stats" value="{c.chapter_id}"><input type="hidden" id="mysid" value="{f.fiction_id}">
"""
    return head + body + FOOT


def _note(f: ShFiction, text: str | None) -> str:
    """An author's note as the site renders it inside `div#chp_raw`."""
    if text is None:
        return ""
    profile = f"{REAL}/profile/{f.author_id}/author-{f.author_id}/"
    return (
        f'<div class="wi_authornotes"><div class="wi_authornotes_top"><div class="p-avatar-wrap"><a class="avatar has-link" href="{profile}">'
        f'<img src="{CDN}/avatar/s/1/ava_{f.author_id}.jpg"></a></div><p><span class="an_username"><a href="{profile}">{escape(f.author, quote=False)}</a></span></p></div>'
        f'<div style="clear: both;"></div><div class="wi_authornotes_body"><p>{escape(text, quote=False)}</p></div></div>'
    )


def _news(text: str | None) -> str:
    if text is None:
        return ""
    return (
        '<div class="wi_news"><div class="wi_news_title"><i aria-hidden="true" class="fa fa-exclamation-triangle" style="padding-right:5px;"></i> Announcement</div>'
        f'<div class="wi_news_body"><p>{escape(text, quote=False)}</p></div></div>'
    )


def _nav(f: ShFiction, c: ShChapter) -> str:
    before = f.chapters[c.position - 2] if c.position > 1 else None
    after = f.chapters[c.position] if c.position < len(f.chapters) else None
    prev = f'href="{REAL + f.chapter_path(before)}"' if before else 'href="#"'
    following = f'href="{REAL + f.chapter_path(after)}"' if after else 'href="#"'
    return (
        f'<a title="Shortcut: [Ctrl] + [&lt;-]" {prev} class="btn-wi btn-prev{"" if before else " disabled"}" dpmb="yes">Previous</a>'
        f'<a title="Shortcut: [Ctrl] + [-&gt;]" {following} class="btn-wi btn-next{"" if after else " disabled"}" dpmb="yes">Next</a>'
    )


def challenge_page() -> str:
    """Cloudflare's browser check, as it arrives (HTTP 200 here)."""
    return """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"><meta name="robots" content="noindex,nofollow"></head><body><div class="main-wrapper" role="main"><div class="main-content"><noscript><div class="h2"><span id="challenge-error-text">Enable JavaScript and cookies to continue</span></div></noscript></div></div><script>(function(){window._cf_chl_opt = {cType: 'managed'};}());</script></body></html>"""


def bad_gateway_page() -> str:
    """nginx's 502 page."""
    return "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"


def not_found_page() -> str:
    head = HEAD.format(title="Page not found", meta="", canonical=REAL + "/", body_class="error404")
    return (
        head
        + '<div class="wi_fic_wrap"><h1 class="page-title">Oops! That page can&rsquo;t be found.</h1></div>'
        + FOOT
    )


# --- routes ---------------------------------------------------------------------------


def route(asked: Asked) -> Answer | None:
    """What the look-alike answers; None: 404."""
    if asked.path == "/robots.txt":
        return Answer(200, ROBOTS_TXT, content_type="text/plain")
    if asked.path == "/wp-admin/admin-ajax.php":
        return _admin_ajax(asked) if asked.method == "POST" else Answer(400, "0")
    parts = [p for p in asked.path.split("/") if p]
    if asked.method != "GET" or len(parts) < 2:
        return None
    if parts[0] == "series":
        return _series(parts, asked.query)
    if parts[0] == "read" and len(parts) == 4 and parts[2] == "chapter":
        return _chapter_answer(parts)
    return None


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _series(parts: list[str], query: dict[str, list[str]]) -> Answer | None:
    fiction_id = _number(parts[1])
    found = fiction(fiction_id) if fiction_id is not None else None
    if found is None or len(parts) > 3:
        return None
    if parts[2:] != [found.slug]:  # WordPress sends a series URL to its canonical form
        return Answer(301, headers={"Location": found.path()})
    if found.fiction_id == CHALLENGE:
        return Answer(200, challenge_page())
    page = _number((query.get("toc") or ["1"])[0]) or 1
    return Answer(200, series_page(found, toc_page=page))


def _chapter_answer(parts: list[str]) -> Answer | None:
    series, _, slug = parts[1].partition("-")
    fiction_id, chapter_id = _number(series), _number(parts[3])
    found = fiction(fiction_id) if fiction_id is not None else None
    wanted = chapter(found.fiction_id, chapter_id) if found and chapter_id is not None else None
    if found is None or wanted is None:
        return None
    if slug != found.slug:
        return Answer(301, headers={"Location": found.chapter_path(wanted)})
    if found.fiction_id == BAD_GATEWAY and wanted.position == 2:
        return Answer(200, bad_gateway_page())
    return Answer(200, chapter_page(found, wanted))


def _admin_ajax(asked: Asked) -> Answer | None:
    """The table-of-contents action; anything else gets WordPress's "0" and a 400."""
    form = {name: values[0] for name, values in asked.form.items() if values}
    if form.get("action") != TOC_ACTION or "mypostid" not in form:
        return Answer(400, "0")
    fiction_id = _number(form["mypostid"])
    found = fiction(fiction_id) if fiction_id is not None else None
    if found is None:
        return None
    if found.fiction_id == NO_TOC:
        return Answer(200, "0")
    raw = form.get("pagenum", "1")
    pagenum = -1 if raw == "-1" else _number(raw)
    if pagenum is None or pagenum == 0:
        return Answer(400, "0")
    return Answer(200, toc_answer(found, pagenum))
