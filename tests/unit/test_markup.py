"""The sanitizer (crawler/sites/markup.py): what stored HTML may hold."""

from __future__ import annotations

import pytest

from crawler.sites.fields import count_words
from crawler.sites.markup import NOTES_SEPARATOR, clean_html, clean_notes, http_url, is_clean

PAGE = "https://www.royalroad.com/fiction/1/f/chapter/2/c"
REL = 'rel="noopener noreferrer nofollow"'

HOSTILE = [
    ("<p>a</p><script>alert(1)</script>", "<p>a</p>"),
    ('<p onclick="x()" onmouseover="y()">a</p>', "<p>a</p>"),
    ('<iframe src="https://evil.example/">fallback</iframe>', "fallback"),
    ('<form action="https://evil.example/"><input name="q">go</form>', "go"),
    ('<object data="x.swf"><embed src="x.swf"></object>', ""),
    ('<base href="https://evil.example/"><p>a</p>', "<p>a</p>"),
    ("<style>p{background:url(https://evil.example/t)}</style><p>a</p>", "<p>a</p>"),
    ('<p style="background: url(https://evil.example/t)">a</p>', "<p>a</p>"),
    ('<p style="position: fixed; text-align: center">a</p>', '<p style="text-align:center">a</p>'),
    ('<span style="text-align: center">a</span>', "<span>a</span>"),
    ('<a href="javascript:alert(1)">a</a>', '<a rel="noopener noreferrer nofollow">a</a>'),
    ('<a href=" JaVaScRiPt:alert(1)">a</a>', '<a rel="noopener noreferrer nofollow">a</a>'),
    ('<img src="data:image/png;base64,AAAA" alt="x">', '<img alt="x">'),
    ('<img src="mailto:a@b.example">', "<img>"),
    (
        '<a href="mailto:a@b.example">mail</a>',
        '<a href="mailto:a@b.example" rel="noopener noreferrer nofollow">mail</a>',
    ),
    ('<p class="cnMzZTg3MTBk" id="top">a</p>', "<p>a</p>"),
    ('<div class="wi_news x">a</div>', "<div>a</div>"),
    (
        '<div class="spoiler-new" data-caption="Spoiler" data-class="spoiler">s</div>',
        '<div class="spoiler-new" data-caption="Spoiler">s</div>',
    ),
    (
        '<a href="/fiction/1/next">n</a>',
        f'<a href="https://www.royalroad.com/fiction/1/next" {REL}>n</a>',
    ),
    ("<p>a<!-- tracking --></p>", "<p>a</p>"),
    ("<svg><script>alert(1)</script></svg><p>a</p>", "<p>a</p>"),
]


@pytest.mark.parametrize(("raw", "clean"), HOSTILE)
def test_what_a_reader_s_browser_could_run_or_load_is_dropped(raw: str, clean: str) -> None:
    assert clean_html(raw, base=PAGE) == clean
    assert is_clean(clean)


FICTION = [
    "<p>Plain <em>em</em> <strong>strong</strong> <i>i</i> <b>b</b> <u>u</u> <s>s</s>"
    " H<sub>2</sub>O x<sup>2</sup> <small>small</small><br>next</p>",
    "<h2>Chapter</h2><blockquote><p>quoted</p></blockquote><hr><ul><li>one</li></ul><ol><li>two</li></ol>",
    '<table><thead><tr><th colspan="2">Status</th></tr></thead><tbody><tr><td rowspan="2">STR</td>'
    "<td>10</td></tr></tbody></table>",
    '<p><img src="https://i.imgur.com/a.png" alt="art" title="t" width="300" height="200"></p>',
    '<p align="center">centred</p><p style="text-align:right">right</p>',
    "<p>non\xa0breaking &amp; “quotes” &lt;tag&gt;</p>",
    "<details><summary>Spoiler</summary><p>inside</p></details>",
]


@pytest.mark.parametrize("html", FICTION)
def test_fiction_markup_is_kept_byte_for_byte(html: str) -> None:
    assert clean_html(html, base=PAGE) == html
    assert is_clean(html)


def test_no_two_words_run_together_where_a_block_is_dropped_or_kept() -> None:
    raw = (
        "<section>one</section><article>two</article><p>th<span>ree</span></p><center>four</center>"
    )
    assert count_words(clean_html(raw, base=PAGE)) == 4


def test_notes_are_cleaned_part_by_part_and_keep_their_separator() -> None:
    notes = clean_notes(
        ["<p onclick='x'>a</p>", "<script>x</script>", f"<p>b</p>{NOTES_SEPARATOR}<p>c</p>"],
        base=PAGE,
    )
    assert notes == NOTES_SEPARATOR.join(["<p>a</p>", "<p>b</p>", "<p>c</p>"])
    assert clean_notes(["<script>x</script>", " "], base=PAGE) is None


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://i.imgur.com/a.png", True),
        ("http://127.0.0.1:8765/c.png", True),
        ("javascript:alert(1)", False),
        ("data:image/png;base64,AAAA", False),
        ("file:///etc/passwd", False),
        ("//cdn.example/a.png", False),
        ("https://x.example:99999/a.png", False),
    ],
)
def test_only_absolute_http_urls_are_urls_to_store(url: str, kept: bool) -> None:
    assert (http_url(url) == url) is kept


def test_a_lone_surrogate_is_no_crash() -> None:
    assert clean_html("<p>broken \ud83d emoji</p>", base=None) == "<p>broken ? emoji</p>"
