"""EPUB export of novels stored through novel_store: the book (checked with epubcheck and
read back with ebooklib), its cache, the API route and the CLI command."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ebooklib import epub
from fastapi.testclient import TestClient
from lxml import etree

import export
from config import get_settings
from crawler.items import ChapterRecord, ChapterRef, NovelRecord, VolumeRecord
from crawler.sites.markup import clean_html, clean_notes
from db import session_scope
from models import Chapter
from novel_store import save_chapters, save_novel
from tests.utils import services
from tests.utils.services import ROOT

pytestmark = pytest.mark.usefixtures("pg_db")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SITE = "https://www.royalroad.com"
# Debian's /usr/bin/epubcheck is the jar itself (run through binfmt_misc where set up)
EPUBCHECK = shutil.which("epubcheck")
JAVA = shutil.which("java")
XHTML = "{http://www.w3.org/1999/xhtml}"
TRICKY = (
    "<p>Caf&eacute; &nbsp;au lait<br>next line<p>unclosed paragraph"
    "<center>The End?</center><p align=right>right</p><strike>gone</strike>"
    "<p>a <img src='https://img.example/x.png' alt='a map'> here</p>"
    "<table><tr><td colspan=2>HP 10/10</td></tr></table>"
    "<p>物語 — naïve\x0c text</p><p><a href='javascript:alert(1)'>vote</a></p>"
)


@pytest.fixture
def export_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Books cached under the test's own directory."""
    monkeypatch.setenv("EXPORT_CACHE_DIR", str(tmp_path / "exports"))
    services.clear_settings_caches()
    yield tmp_path / "exports"
    monkeypatch.undo()
    services.clear_settings_caches()


def _ref(n: int, volume: str | None, *, locked: bool = False) -> ChapterRef:
    url = f"{SITE}/fiction/42/x/chapter/{900 + n}/c"
    return ChapterRef(str(900 + n), url, n, f"Chapter {n}", volume, WHEN, locked)


def _novel(refs: tuple[ChapterRef, ...], **changes: Any) -> NovelRecord:
    novel = NovelRecord(
        site="royalroad",
        site_id="42",
        url=f"{SITE}/fiction/42",
        title="Ünïcode <Tales> & Co",
        author="A. Writer",
        description=clean_html("<p>A <b>story</b> of things.</p>", base=None),
        cover_url="https://www.royalroadcdn.com/covers/42.jpg",
        tags=("Fantasy", "LitRPG"),
        status="ongoing",
        word_count=1000,
        rating=4.5,
        volumes=(VolumeRecord("1", "Book One", 1), VolumeRecord("2", "Book Two", 2)),
        chapters=refs,
        published_at=WHEN,
    )
    return replace(novel, **changes)


def _record(ref: ChapterRef, text: str, notes: tuple[str, ...] = ()) -> ChapterRecord:
    if ref.locked:
        return ChapterRecord.locked_from(ref)
    content = clean_html(text, base=ref.url)
    return ChapterRecord(
        site_chapter_id=ref.site_chapter_id,
        url=ref.url,
        position=ref.position,
        title=ref.title,
        volume=ref.volume,
        published_at=ref.published_at,
        content_html=content,
        author_notes_html=clean_notes(notes, base=ref.url),
        word_count=len(content.split()),
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
    )


def _store(novel: NovelRecord, records: list[ChapterRecord]) -> int:
    with session_scope() as session:
        novel_id = save_novel(session, novel)
        save_chapters(session, novel_id, records)
    return novel_id


def _sample() -> tuple[NovelRecord, list[ChapterRecord]]:
    """Two volumes, author notes, tricky HTML, a locked chapter and a title with < & >."""
    refs = (
        _ref(1, "Book One"),
        replace(_ref(2, "Book One"), title="Fight <at> the Inn & after"),
        _ref(3, "Book Two"),
        _ref(4, "Book Two", locked=True),
    )
    notes = ("<p>Thanks for reading!</p>", "<p>Next week: more.</p>")
    records = [
        _record(refs[0], "<p>It began.</p>", notes),
        _record(refs[1], TRICKY),
        _record(refs[2], "<p>Book two starts.</p>", ("<p>A short note.</p>",)),
        _record(refs[3], ""),
    ]
    return _novel(refs), records


def _build(novel_id: int) -> export.Book:
    with session_scope() as session:
        return export.export_novel(session, novel_id, settings=get_settings())


def _toc(items: list[Any]) -> list[Any]:
    """ebooklib's read-back table of contents as titles: volumes as (title, [titles])."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, tuple):
            out.append((item[0].title, _toc(item[1])))
        else:
            out.append(item.title)
    return out


def _words(element: etree._Element) -> str:
    return " ".join(etree.tostring(element, method="text", encoding="unicode").split())


def _texts(book: epub.EpubBook) -> dict[str, etree._Element]:
    """Every chapter document, parsed as XML (so each is well-formed XHTML)."""
    parsed = {}
    for item in book.get_items_of_type(9):  # ebooklib.ITEM_DOCUMENT
        parsed[item.get_name()] = etree.fromstring(item.get_content())
    return parsed


@pytest.mark.usefixtures("export_dir")
def test_book_has_chapters_in_order_with_volumes_notes_and_metadata() -> None:
    novel_id = _store(*_sample())
    built = _build(novel_id)
    book = epub.read_epub(str(built.path))
    assert book.get_metadata("DC", "title")[0][0] == "Ünïcode <Tales> & Co"
    assert book.get_metadata("DC", "creator")[0][0] == "A. Writer"
    assert book.get_metadata("DC", "identifier")[0][0] == f"{SITE}/fiction/42"
    assert book.get_metadata("DC", "source")[0][0] == f"{SITE}/fiction/42"
    assert book.get_metadata("DC", "language")[0][0] == "und"  # the store knows none
    assert [s for s, _ in book.get_metadata("DC", "subject")] == ["Fantasy", "LitRPG"]
    assert book.get_metadata("DC", "description")[0][0] == "A story of things."
    cover = [v for v, attrs in book.get_metadata("OPF", "meta") if attrs.get("property")]
    assert "https://www.royalroadcdn.com/covers/42.jpg" in cover
    assert _toc(book.toc) == [
        "Ünïcode <Tales> & Co",
        ("Book One", ["Chapter 1", "Fight <at> the Inn & after"]),
        ("Book Two", ["Chapter 3", "Chapter 4"]),
    ]
    spine = [book.get_item_with_id(uid).get_name() for uid, _ in book.spine]
    chapters = [name for name in spine if name.startswith("chapter-")]
    with session_scope() as session:
        ids = session.query(Chapter.id).order_by(Chapter.position).all()
    assert chapters == [f"chapter-{chapter_id}.xhtml" for (chapter_id,) in ids]
    documents = _texts(book)
    first = documents[chapters[0]]
    notes = first.findall(f".//{XHTML}div[@class='author-note']")
    assert [_words(n) for n in notes] == [
        "Author's note Thanks for reading!",
        "Author's note Next week: more.",
    ]
    tricky = _words(documents[chapters[1]])
    assert "Café au lait" in tricky and "物語 — naïve text" in tricky
    assert "[image: a map]" in tricky
    locked = _words(documents[chapters[3]])
    assert "This chapter is locked on royalroad" in locked
    title_page = etree.tostring(documents["title.xhtml"], encoding="unicode")
    assert "https://www.royalroadcdn.com/covers/42.jpg" in title_page
    assert "<img" not in title_page


@pytest.mark.skipif(
    EPUBCHECK is None or JAVA is None, reason="epubcheck is not installed (Debian: epubcheck)"
)
@pytest.mark.usefixtures("export_dir")
def test_book_passes_epubcheck_without_errors(tmp_path: Path) -> None:
    novel, records = _sample()
    novel = replace(novel, notes_html=clean_notes(["<p>Work notes.</p>"], base=novel.url))
    built = _build(_store(novel, records))
    checked = subprocess.run(
        [str(JAVA), "-jar", os.path.realpath(str(EPUBCHECK)), str(built.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No errors or warnings detected" in checked.stdout + checked.stderr


@pytest.mark.usefixtures("export_dir")
def test_removed_chapters_are_left_out_and_a_novel_without_volumes_is_flat() -> None:
    refs = tuple(_ref(n, None) for n in (1, 2, 3))
    novel = _novel(refs, volumes=())
    _store(novel, [_record(r, f"<p>text {r.position}</p>") for r in refs])
    shorter = replace(novel, chapters=refs[:2])
    novel_id = _store(shorter, [_record(r, f"<p>text {r.position}</p>") for r in refs[:2]])
    book = epub.read_epub(str(_build(novel_id).path))
    assert _toc(book.toc) == ["Ünïcode <Tales> & Co", "Chapter 1", "Chapter 2"]


def test_second_build_is_the_cached_file_until_a_chapter_changes(export_dir: Path) -> None:
    novel, records = _sample()
    novel_id = _store(novel, records)
    first = _build(novel_id)
    stamp = first.path.stat()
    again = _build(novel_id)
    assert again.path == first.path and again.version == first.version
    assert (again.path.stat().st_mtime_ns, again.path.stat().st_ino) == (
        stamp.st_mtime_ns,
        stamp.st_ino,
    )
    _store(novel, records)  # a refresh that finds nothing new
    assert _build(novel_id).version == first.version
    edited = [replace(records[0], content_html="<p>Edited.</p>", content_hash="e" * 64)]
    _store(novel, edited + records[1:])
    changed = _build(novel_id)
    assert changed.version != first.version
    # the old book stays a while (a download may be about to send it), then goes
    assert sorted(p.name for p in export_dir.iterdir()) == sorted(
        [first.path.name, changed.path.name]
    )
    long_ago = time.time() - export.STALE_GRACE - 1
    os.utime(first.path, (long_ago, long_ago))
    edited = [replace(records[0], content_html="<p>Edited again.</p>", content_hash="f" * 64)]
    _store(novel, edited + records[1:])
    changed = _build(novel_id)
    assert first.path.name not in [p.name for p in export_dir.iterdir()]
    added_ref = _ref(5, "Book Two")
    _store(
        replace(novel, chapters=(*novel.chapters, added_ref)),
        [*records, _record(added_ref, "<p>new</p>")],
    )
    assert _build(novel_id).version not in (first.version, changed.version)


def test_two_builds_at_once_leave_one_whole_book(export_dir: Path) -> None:
    novel_id = _store(*_sample())
    with ThreadPoolExecutor(2) as pool:
        built = list(pool.map(_build, [novel_id, novel_id]))
    assert built[0].path == built[1].path
    with zipfile.ZipFile(built[0].path) as book:
        assert book.testzip() is None
    assert [p.name for p in export_dir.iterdir()] == [built[0].path.name]  # no temporary left


@pytest.mark.usefixtures("export_dir")
def test_route_serves_the_book_with_etag_and_304(api: TestClient) -> None:
    novel_id = _store(*_sample())
    response = api.get(f"/novels/{novel_id}/export.epub")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/epub+zip"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "Tales" in response.headers["content-disposition"]
    etag = response.headers["etag"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        assert book.read("mimetype") == b"application/epub+zip"
    again = api.get(f"/novels/{novel_id}/export.epub", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag
    assert not again.content
    assert api.get("/novels/999/export.epub").status_code == 404
    operation = api.get("/openapi.json").json()["paths"]["/novels/{novel_id}/export.epub"]["get"]
    assert "application/epub+zip" in operation["responses"]["200"]["content"]
    assert {"304", "404"} <= set(operation["responses"])


def test_cli_export_writes_the_book_and_exits_2_for_an_unknown_novel(
    export_dir: Path, tmp_path: Path
) -> None:
    novel_id = _store(*_sample())
    out = tmp_path / "book.epub"
    env = {**os.environ, "EXPORT_CACHE_DIR": str(export_dir)}
    command = [sys.executable, "cli.py", "export"]
    done = subprocess.run(
        [*command, str(novel_id), "-o", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes() == _build(novel_id).path.read_bytes()
    unknown = subprocess.run(
        [*command, "999", "-o", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "novel 999 not found" in unknown.stdout


def test_chapter_text_is_read_in_batches_while_the_book_is_written(
    export_dir: Path, figures: Callable[[str], None]
) -> None:
    """2,000 chapters of ~20 kB each: the peak of Python allocations during the build is
    a fraction of the text (it is never all in memory at once)."""
    refs = tuple(_ref(n, f"Volume {1 + (n - 1) // 500}") for n in range(1, 2001))
    paragraph = "<p>" + "word " * 200 + "</p>"
    records = [_record(r, paragraph * 20) for r in refs]
    novel_id = _store(_novel(refs), records)
    text = sum(len(r.content_html or "") for r in records)
    del records
    tracemalloc.start()
    built = _build(novel_id)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures(f"{text / 1e6:.0f} MB of text, build peak {peak / 1e6:.0f} MB (tracemalloc)")
    assert peak < text / 2
    assert len(epub.read_epub(str(built.path)).spine) == 2000 + 4 + 2  # + volumes, title, nav
