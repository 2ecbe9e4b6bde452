"""Values the database would refuse: caught before they are sent, or named without SQL.

Run on PostgreSQL and on SQLite: SQLite stores an out-of-range integer without a word,
so the store's own check is what keeps a wrong value out of it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import insert

from crawler.items import ChapterRecord
from db import session_scope
from errors import MESSAGE_LIMIT, StoreError, classify
from models import Chapter, Novel
from novel_store import save_chapters, save_novel
from tests.integration.test_novel_store import _novel, _records, _save
from tests.utils.jobs import counts

WORDS = 2_845_275_782_406  # every digit of the real page's Pages popover, joined


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_db" if request.param == "postgresql" else "sqlite_db"))


@pytest.mark.usefixtures("database")
def test_an_out_of_range_word_count_is_refused_with_the_field_named() -> None:
    novel = replace(_novel(), word_count=WORDS)
    with pytest.raises(StoreError) as refused:
        _save(novel, _records(novel))
    assert str(refused.value) == f"could not store novel: word_count out of range ({WORDS})"
    assert counts() == (0, 0, 0)  # nothing half-written


@pytest.mark.usefixtures("database")
def test_a_chapter_value_that_does_not_fit_is_refused() -> None:
    novel = _novel()
    chapters = _records(novel)
    chapters[1] = replace(chapters[1], title="x" * 600)
    with pytest.raises(StoreError) as refused:
        _save(novel, chapters)
    assert str(refused.value) == (
        "could not store chapter 7002: title too long (600 characters, at most 512)"
    )
    assert counts() == (0, 0, 0)


@pytest.mark.usefixtures("database")
def test_a_missing_required_value_is_refused() -> None:
    novel = _novel()
    chapters = _records(novel)
    chapters[0] = replace(chapters[0], title=None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="could not store chapter 7001: title missing"):
        _save(novel, chapters)


@pytest.mark.usefixtures("database")
def test_locked_chapters_are_stored_without_text() -> None:
    novel = _novel(3)
    refs = (*novel.chapters[:2], replace(novel.chapters[2], locked=True))
    novel = replace(novel, chapters=refs)
    chapters = [*_records(novel)[:2], ChapterRecord.locked_from(refs[2])]
    _save(novel, chapters)
    with session_scope() as session:
        stored = session.query(Chapter).order_by(Chapter.position).all()
        assert [c.locked for c in stored] == [False, False, True]
        last = stored[2]
        assert (last.title, last.published_at, last.volume) == (
            refs[2].title,
            refs[2].published_at,
            refs[2].volume,
        )
        assert (last.content_html, last.word_count, last.content_hash) == (None, None, None)


def _refused_by_the_database(values: dict[str, object]) -> BaseException:
    try:
        with session_scope() as session:
            session.execute(insert(Novel).values(**values))
    except Exception as error:
        return error
    raise AssertionError("the database took it")


@pytest.mark.usefixtures("database")
def test_a_database_refusal_is_one_short_line_without_sql_or_parameters() -> None:
    secret = "a description of several kB " * 300
    values = {
        "site": "royalroad",
        "site_novel_id": "42",
        "url": "https://www.royalroad.com/fiction/42",
        "title": None,  # NOT NULL on both databases
        "description": secret,
        "tags": ["Fantasy"],
        "warnings": [],
        "volumes": [],
    }
    failure = classify(_refused_by_the_database(values), doing="store novel")
    message = str(failure)
    assert isinstance(failure, StoreError) and not failure.retryable
    assert message.startswith("could not store novel: the database refused it (")
    assert "null" in message.lower() and "title" in message
    for leaked in ("INSERT", "VALUES", "description of several", "%(", "[SQL", "[parameters"):
        assert leaked not in message
    assert len(message) <= MESSAGE_LIMIT


def test_postgresql_integer_overflow_is_named_not_dumped(pg_db: str) -> None:
    values = {
        "site": "royalroad",
        "site_novel_id": "42",
        "url": "u",
        "title": "t",
        "word_count": WORDS,
        "description": "d" * 5000,
        "tags": [],
        "warnings": [],
        "volumes": [],
    }
    message = str(classify(_refused_by_the_database(values), doing="store novel"))
    assert message == "could not store novel: the database refused it (integer out of range)"


@pytest.mark.usefixtures("database")
def test_text_the_database_cannot_hold_is_cleaned_not_refused() -> None:
    novel = replace(_novel(), author="A.\x00 Writer", tags=("Fan\x00tasy", "\ud83d"))
    chapters = _records(novel)
    chapters[0] = replace(chapters[0], title="Chapter\x00 1")
    novel_id = _save(novel, chapters)
    with session_scope() as session:
        stored = session.get(Novel, novel_id)
        assert stored is not None
        assert (stored.author, stored.tags) == ("A. Writer", ["Fantasy", "?"])
        first = session.query(Chapter).filter_by(position=1).one()
        assert first.title == "Chapter 1"


@pytest.mark.usefixtures("database")
def test_an_optional_text_too_long_for_its_column_is_null_with_a_note() -> None:
    novel = replace(_novel(), author="a" * 300)
    notes: list[str] = []
    with session_scope() as session:
        novel_id = save_novel(session, novel, notes=notes)
        save_chapters(session, novel_id, _records(novel), notes=notes)
    with session_scope() as session:
        stored = session.get(Novel, novel_id)
        assert stored is not None and stored.author is None
    assert notes == ["novel: author too long (300 characters, at most 256); stored as null"]


@pytest.mark.usefixtures("database")
def test_a_chapter_locked_since_it_was_stored_keeps_its_text() -> None:
    novel = _novel(2)
    _save(novel, _records(novel))
    relocked = replace(novel.chapters[1], title="Chapter 2 (now premium)", locked=True)
    again = replace(novel, chapters=(novel.chapters[0], relocked))
    _save(again, [_records(again)[0], ChapterRecord.locked_from(relocked)])
    with session_scope() as session:
        second = session.query(Chapter).filter_by(position=2).one()
        assert (second.locked, second.title) == (True, "Chapter 2 (now premium)")
        assert second.content_html == "<p>story 2</p>" and second.word_count == 2


@pytest.mark.usefixtures("database")
def test_a_chapter_listed_twice_is_refused_in_words() -> None:
    novel = _novel(2)
    chapters = _records(novel)
    with pytest.raises(StoreError, match="a chapter id is listed twice"):
        _save(novel, [*chapters, chapters[0]])


# --- what is served again: sanitized HTML, http(s) URLs (novel_store's one guard) --------

UNSAFE_NOVELS = [
    ({"cover_url": "javascript:alert(1)"}, "novel: cover_url is not an http(s) URL"),
    ({"cover_url": "data:image/png;base64,AAAA"}, "novel: cover_url is not an http(s) URL"),
    ({"url": "file:///etc/passwd"}, "novel: url is not an http(s) URL"),
    ({"description": '<p onclick="steal()">Hi</p>'}, "novel: description is not sanitized HTML"),
    (
        {"notes_html": "<p>a</p>\n<hr/>\n<script>x()</script>"},
        "novel: notes_html is not sanitized HTML",
    ),
]


@pytest.mark.usefixtures("database")
@pytest.mark.parametrize(("change", "message"), UNSAFE_NOVELS)
def test_a_novel_with_unsafe_markup_or_url_never_reaches_a_row(
    change: dict[str, str], message: str
) -> None:
    novel = replace(_novel(), **change)  # type: ignore[arg-type]
    with pytest.raises(StoreError) as refused:
        _save(novel, _records(novel))
    assert str(refused.value) == f"could not store {message}"
    assert counts() == (0, 0, 0)


UNSAFE_CHAPTERS = [
    ({"url": "javascript:alert(1)"}, "url is not an http(s) URL"),
    (
        {"content_html": '<p>x</p><iframe src="https://evil.example/"></iframe>'},
        "content_html is not sanitized HTML",
    ),
    ({"content_html": '<p class="cnZmY2">x</p>'}, "content_html is not sanitized HTML"),
    ({"content_html": '<a href="/relative">x</a>'}, "content_html is not sanitized HTML"),
    (
        {"author_notes_html": '<img src="x" onerror="alert(1)">'},
        "author_notes_html is not sanitized HTML",
    ),
]


@pytest.mark.usefixtures("database")
@pytest.mark.parametrize(("change", "message"), UNSAFE_CHAPTERS)
def test_a_chapter_with_unsafe_markup_or_url_never_reaches_a_row(
    change: dict[str, str], message: str
) -> None:
    novel = _novel()
    chapters = _records(novel)
    chapters[1] = replace(chapters[1], **change)  # type: ignore[arg-type]
    with pytest.raises(StoreError) as refused:
        _save(novel, chapters)
    assert str(refused.value) == f"could not store chapter 7002: {message}"
    assert counts() == (0, 0, 0)


@pytest.mark.usefixtures("database")
def test_sanitized_markup_with_links_images_and_notes_is_stored_as_it_is() -> None:
    content = (
        '<p style="text-align:center">* * *</p><p><a href="https://example.org/" '
        'rel="noopener noreferrer nofollow">a link</a><img src="https://example.org/a.png" '
        'alt="art"></p><div class="spoiler-new" data-caption="Spoiler">hidden</div>'
    )
    notes = "<p>before</p>\n<hr/>\n<p>after</p>"
    novel = _novel()
    chapters = _records(novel)
    chapters[0] = replace(chapters[0], content_html=content, author_notes_html=notes)
    _save(novel, chapters)
    with session_scope() as session:
        stored = session.query(Chapter).filter_by(site_chapter_id="7001").one()
        assert (stored.content_html, stored.author_notes_html) == (content, notes)
