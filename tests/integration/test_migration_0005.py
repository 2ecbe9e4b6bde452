"""Migration 0005 cleans what was stored raw: chapters' text and notes, novels'
descriptions, notes and cover URLs, on PostgreSQL and SQLite, in batches."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, insert, select

from db import build_engine
from models import Chapter, Novel
from tests.utils import services

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
URL = "https://www.royalroad.com/fiction/77"
RAW = (
    '<p class="cnMzZTg3MTBk" style="margin-bottom: 0; text-align: center">* * *</p>'
    '<p onclick="steal()">Two words<script>document.cookie</script></p>'
    '<iframe src="https://evil.example/"></iframe><a href="/fiction/77/next">next</a>'
)
CLEAN = (
    '<p style="text-align:center">* * *</p><p>Two words</p>'
    '<a href="https://www.royalroad.com/fiction/77/next" rel="noopener noreferrer nofollow">'
    "next</a>"
)
NOTES = '<p>before</p>\n<hr/>\n<p style="color: red" id="x">after</p>'
CHAPTERS = 450  # more than two of the migration's batches


def _config(url: str) -> Config:
    config = Config(str(services.ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    config.attributes["database_url"] = url
    return config


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"novel_ingest_migration_{os.getpid()}"
    url = services.create_pg_database(name)
    yield url
    services.drop_pg_database(name)


def _old_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(Novel).values(
                id=1,
                site="royalroad",
                site_novel_id="77",
                url=URL,
                title="T",
                tags=[],
                warnings=[],
                volumes=[],
                description=RAW,
                notes_html=NOTES,
                cover_url="javascript:alert(1)",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        connection.execute(
            insert(Chapter),
            [
                {
                    "novel_id": 1,
                    "site_chapter_id": str(n),
                    "position": n,
                    "title": f"C{n}",
                    "url": f"{URL}/c/chapter/{n}/c",
                    "content_html": RAW,
                    "author_notes_html": NOTES if n == 1 else None,
                    "word_count": 99,
                    "content_hash": "0" * 64,
                    "created_at": NOW,
                    "updated_at": NOW,
                    "locked": False,
                }
                for n in range(1, CHAPTERS + 1)
            ],
        )
        connection.execute(
            insert(Chapter).values(
                novel_id=1,
                site_chapter_id="9999",
                position=CHAPTERS + 1,
                title="locked",
                url=f"{URL}/c/chapter/9999/c",
                locked=True,
                created_at=NOW,
                updated_at=NOW,
            )
        )


def test_rows_stored_raw_are_sanitized_and_rehashed(database: str) -> None:
    command.upgrade(_config(database), "0004")
    engine = build_engine(database)
    try:
        _old_rows(engine)
        command.upgrade(_config(database), "0005")
        with engine.connect() as connection:
            novel = connection.execute(select(Novel)).one()
            rows = connection.execute(select(Chapter).order_by(Chapter.position)).all()
    finally:
        engine.dispose()
    assert (novel.description, novel.cover_url) == (CLEAN, None)
    assert novel.notes_html == "<p>before</p>\n<hr/>\n<p>after</p>"
    texts = rows[:-1]
    assert len(texts) == CHAPTERS
    assert {r.content_html for r in texts} == {CLEAN}
    assert {r.content_hash for r in texts} == {hashlib.sha256(CLEAN.encode()).hexdigest()}
    assert {r.word_count for r in texts} == {3}  # "Two words", "next": not the script
    assert texts[0].author_notes_html == "<p>before</p>\n<hr/>\n<p>after</p>"
    assert texts[1].author_notes_html is None
    locked = rows[-1]
    assert (locked.content_html, locked.content_hash, locked.word_count) == (None, None, None)
