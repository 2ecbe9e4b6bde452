"""HTML in Royal Road's real structure (see shared/fixtures/README.md), with our own text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from html import escape

from tests.fixture_site.content import FixtureChapter, FixtureFiction

HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8"/>
    <title>{title} | Royal Road</title>
    {meta}
    <style>
        #cover-lightbox.modal {{ text-align: center; }}
        .nav-buttons .btn {{ display: inline-block; }}
    </style>
    {extra_head}
</head>
<body class="page-container-bg-solid light-theme">
<div class="page-container"><div class="page-content-wrapper"><div class="page-content">
"""
FOOT = """</div></div></div>
</body>
</html>
"""


def fiction_page(
    f: FixtureFiction, *, links: Mapping[int, str] | None = None, extra_head: str = ""
) -> str:
    """The fiction page; its table of contents lists `f.listed` (all, or a truncated list).

    `links`: chapter id -> the URL the table and window.chapters give for that chapter
    instead of its own (a hostile listing); `extra_head`: raw HTML at the end of <head>.
    """
    listed, links = f.listed, links or {}
    meta = "\n    ".join(
        [
            f'<meta property="og:url" content="/fiction/{f.fiction_id}/{f.slug}">',
            f'<meta property="og:image" content="{f.cover_path}">',
            *(
                [f'<meta property="books:rating:value" content="{f.rating}"/>']
                if f.rating is not None
                else []
            ),
            '<meta property="books:rating:scale" content="5"/>',
            f'<meta property="books:author" content="{escape(f.author)}"/>',
            f'<script type="application/ld+json">{_json_ld(f)}</script>',
        ]
    )
    head = HEAD.format(title=escape(f.title), meta=meta, extra_head=extra_head)
    body = f"""<div class="container fiction-page">
<div class="row fic-header">
    <div class="col-md-3 text-center cover-col">
        <div class="cover-art-container">
            <img class="thumbnail inline-block" data-type="cover" alt="{escape(f.title)}" src="{f.cover_path}">
        </div>
    </div>
    <div class="col-md-5 col-lg-6 text-center md-text-left fic-title">
        <div class="col">
            <h1 class="font-white">{escape(f.title)}</h1>
            <h4 class="font-white">
                <span class="small font-white">by </span>
                <span><a href="/profile/{f.author_id}" class="font-white">{escape(f.author)}</a></span>
            </h4>
        </div>
    </div>
</div>
<div class="fiction row"><div class="col-sm-12"><div class="fiction-info">
<div class="portlet light row">
    <div class="col-md-8">
        <div class="margin-bottom-10">
            <span class="label label-default label-sm bg-blue-hoki">Original</span>
            {f'<span class="label label-default label-sm bg-blue-hoki">{f.status.upper()}</span>' if f.status else ""}
        </div>
        <span class="tags">
            {"".join(f'<a href="/fictions/search?tagsAdd={t.lower()}" class="label label-default label-sm bg-blue-dark fiction-tag">{t}</a>' for t in f.tags)}
        </span>
        {_warnings(f)}
        <div class="description">
            <input type="checkbox" value="" id="showMore"/>
            <div class="hidden-content">
                {f.description_html}
            </div>
            <label for="showMore" class="bold uppercase small"></label>
        </div>
    </div>
</div>
{_stats(f)}
<div class="portlet light">
    <div class="portlet-title"><div class="caption"><span class="label label-default">{len(listed)} Chapters</span></div></div>
    <div class="portlet-body">
        <table class="table no-border" id="chapters" data-chapters="{len(listed)}">
            <thead><tr><th>Chapter Name</th><th class="text-right">Release Date</th></tr></thead>
            <tbody>
{"".join(_row(f, c, links.get(c.chapter_id)) for c in listed)}
            </tbody>
        </table>
    </div>
</div>
</div></div></div>
<script type="text/javascript">
    window.fictionId = {f.fiction_id};
    window.chapters = {json.dumps([_script_chapter(f, c, links.get(c.chapter_id)) for c in listed])};
    window.volumes = {json.dumps([{"id": v[0], "title": v[1], "cover": None, "order": v[2]} for v in f.volumes])};
</script>
</div>
"""
    return head + body + FOOT


def _stats(f: FixtureFiction) -> str:
    """The statistics portlet; its "Pages" line carries the Story Length popover."""
    pages = f"{max(1, (f.word_count or 0) // 275):,}"
    popover = (
        f'<i title="Story Length" data-toggle="popover" data-trigger="hover" data-placement="top" data-content="{escape(f.story_length)}" class="fa fa-info-circle popovers"></i>'
        if f.story_length is not None
        else ""
    )
    views = 1_234 * f.fiction_id
    return f"""<div class="portlet light">
    <div class="fiction-stats">
        <div class="stats-content">
            <div class="col-sm-6">
                <ul class="list-unstyled">
                    <li class="bold uppercase">Total Views :</li>
                    <li class="bold uppercase font-red-sunglo">{views:,}</li>
                    <li class="bold uppercase">Average Views :</li>
                    <li class="bold uppercase font-red-sunglo">{views // 7:,}</li>
                    <li class="bold uppercase">Followers :</li>
                    <li class="bold uppercase font-red-sunglo">{f.fiction_id * 3:,}</li>
                    <li class="bold uppercase">Ratings :</li>
                    <li class="bold uppercase font-red-sunglo">{f.fiction_id // 4:,}</li>
                    <li class="bold uppercase">Pages</li>
                    <li class="bold uppercase font-red-sunglo">{pages}{popover}</li>
                </ul>
            </div>
        </div>
    </div>
</div>"""


def _json_ld(f: FixtureFiction) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "Book",
        "name": f.title,
        "description": f.description_html,
        "author": {"@type": "Person", "name": f.author},
    }
    # "</script" in a description would end the script element early: escaped, as sites do
    return json.dumps(data, ensure_ascii=False).replace("</script", "<\\/script")


def _warnings(f: FixtureFiction) -> str:
    if not f.warnings:
        return ""
    items = "".join(f"<li>{w}</li>" for w in f.warnings)
    return f'<div class="text-center font-red-thunderbird"><strong>Warning</strong> This fiction contains:<ul class="list-inline">{items}</ul></div>'


def chapter_url(f: FixtureFiction, c: FixtureChapter) -> str:
    return f"/fiction/{f.fiction_id}/{f.slug}/chapter/{c.chapter_id}/{c.slug}"


def _row(f: FixtureFiction, c: FixtureChapter, link: str | None = None) -> str:
    url = escape(link or chapter_url(f, c))
    volume = c.volume_id if c.volume_id is not None else "null"
    unix = int(c.published_at.timestamp())
    iso = c.published_at.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00")
    lock = ' <i class="fa fa-lock" title="Locked"></i>' if c.locked else ""
    return f"""                <tr style="cursor: pointer" data-url="{url}" data-volume-id="{volume}" class="chapter-row">
                    <td>
                        <a href="{url}">
                            {escape(c.title)}{lock}
                        </a>
                    </td>
                    <td data-content="{c.position - 1}" class="text-right">
                        <a href="{url}" data-content="{c.position - 1}">
                            <time unixtime="{unix}" title="{iso}" datetime="{iso}" format="agoshort">a while </time> ago
                        </a>
                    </td>
                </tr>
"""


def _script_chapter(
    f: FixtureFiction, c: FixtureChapter, link: str | None = None
) -> dict[str, object]:
    return {
        "id": c.chapter_id,
        "volumeId": c.volume_id,
        "title": c.title,
        "slug": c.slug,
        "date": c.published_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "order": c.position - 1,
        "visible": 0 if c.access == "scheduled" else 1,
        "subscriptionTiers": [1] if c.access == "premium" else None,
        "doesNotRollOver": False,
        "isUnlocked": c.access == "open",
        "url": link or chapter_url(f, c),
    }


def hidden_class(c: FixtureChapter) -> str:
    """A per-page random-looking class, like the real anti-piracy one."""
    return "cm" + hashlib.sha256(str(c.chapter_id).encode()).hexdigest()[:30]


def _paragraph_class(c: FixtureChapter, n: int) -> str:
    return "cn" + hashlib.md5(f"{c.chapter_id}-{n}".encode()).hexdigest()[:28]


def chapter_page(f: FixtureFiction, c: FixtureChapter, *, with_body: bool = True) -> str:
    hidden = hidden_class(c)
    extra = f"<style>\n        .{hidden}{{\n            display: none;\n            speak: never;\n        }}\n    </style>"
    links = _nav_links(f, c)
    head = HEAD.format(title=escape(c.title), meta=links, extra_head=extra)
    paragraphs = [
        f'<p class="{_paragraph_class(c, n)}">{escape(p)}</p>' for n, p in enumerate(c.paragraphs)
    ]
    middle = len(paragraphs) // 2
    paragraphs.insert(middle, f'<span class="{hidden}"><br/>{escape(c.hidden_text)}<br/></span>')
    paragraphs.append(c.markup)  # raw: a hostile chapter's own HTML
    body = f"""<div class="fic-header">
    <h1 class="font-white break-word">{escape(c.title)}</h1>
    <h2 class="font-white inline-block">{escape(f.title)}</h2>
</div>
<div class="portlet light">
{_note(c.notes_before)}
    {'<div class="chapter-inner chapter-content">' + "".join(paragraphs) + "</div>" if with_body else '<div class="chapter-missing">Chapter unavailable.</div>'}
{_note(c.notes_after)}
{_note(c.notes_markup, raw=True)}
</div>
"""
    return head + body + FOOT


def _note(text: str | None, *, raw: bool = False) -> str:
    if not text:
        return ""
    return f"""    <div class="portlet solid author-note-portlet">
        <div class="portlet-title"><div class="caption"><span class="caption-subject bold uppercase">A note from the author</span></div></div>
        <div class="portlet-body author-note">{text if raw else f"<p>{escape(text)}</p>"}</div>
    </div>"""


def _nav_links(f: FixtureFiction, c: FixtureChapter) -> str:
    chapters = f.chapters
    links = []
    if c.position > 1:
        links.append(f'<link rel="prev" href="{chapter_url(f, chapters[c.position - 2])}">')
    if c.position < len(chapters):
        links.append(f'<link rel="next" href="{chapter_url(f, chapters[c.position])}">')
    return "\n    ".join(links)


def locked_chapter_page(f: FixtureFiction, c: FixtureChapter) -> str:
    """What a reader who has not unlocked the chapter gets: no chapter text."""
    head = HEAD.format(title=escape(c.title), meta="", extra_head="")
    body = f"""<div class="fic-header"><h1 class="font-white break-word">{escape(c.title)}</h1></div>
<div class="portlet light"><div class="locked-chapter"><h3>This chapter is locked.</h3><p>Support the author to read it now.</p></div></div>
"""
    return head + body + FOOT


def not_found_page() -> str:
    return HEAD.format(title="Not Found", meta="", extra_head="") + "<h1>Not Found</h1>" + FOOT


def maintenance_page() -> str:
    body = "<div class='maintenance'><h3>We are down for maintenance.</h3><p>Back soon.</p></div>"
    return HEAD.format(title="Maintenance", meta="", extra_head="") + body + FOOT
