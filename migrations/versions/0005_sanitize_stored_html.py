"""sanitize stored HTML and URLs

Rows stored before the adapters sanitized what they read hold the sites' raw HTML: this
cleans chapters' content and author notes and novels' descriptions and notes with the
same allow-list (crawler/sites/markup.py), recomputes each chapter's hash and word count
from the cleaned text (so an update compares like with like), and sets a cover URL that
is not http(s) to null. Keyset batches by id, each batch its own statements; the same on
PostgreSQL and SQLite. Nothing to undo: the raw HTML is not kept.

Revision ID: 0005
Revises: 0004
"""

import hashlib
from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import op

from crawler.sites.fields import count_words
from crawler.sites.markup import clean_html, clean_notes, http_url

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BATCH = 200

chapters = sa.table(
    "chapters",
    sa.column("id", sa.Integer),
    sa.column("url", sa.String),
    sa.column("content_html", sa.Text),
    sa.column("author_notes_html", sa.Text),
    sa.column("word_count", sa.Integer),
    sa.column("content_hash", sa.String),
)
novels = sa.table(
    "novels",
    sa.column("id", sa.Integer),
    sa.column("url", sa.String),
    sa.column("description", sa.Text),
    sa.column("notes_html", sa.Text),
    sa.column("cover_url", sa.String),
)


def _batches(table: Any, columns: list[Any]) -> Any:
    """The rows of `table`, BATCH at a time, by keyset pagination on id."""
    last = 0
    while True:
        query = sa.select(table.c.id, *columns).where(table.c.id > last)
        rows = op.get_bind().execute(query.order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _chapter(row: Any) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if row.content_html is not None:
        content = clean_html(row.content_html, base=row.url)
        cleaned["content_html"] = content
        cleaned["content_hash"] = hashlib.sha256(content.encode("utf-8")).hexdigest()
        cleaned["word_count"] = count_words(content)
    if row.author_notes_html is not None:
        cleaned["author_notes_html"] = clean_notes([row.author_notes_html], base=row.url)
    return {k: v for k, v in cleaned.items() if v != getattr(row, k)}


def _novel(row: Any) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if row.description is not None:
        cleaned["description"] = clean_html(row.description, base=row.url) or None
    if row.notes_html is not None:
        cleaned["notes_html"] = clean_notes([row.notes_html], base=row.url)
    if row.cover_url is not None:
        cleaned["cover_url"] = http_url(row.cover_url)
    return {k: v for k, v in cleaned.items() if v != getattr(row, k)}


def _clean(table: Any, columns: list[Any], clean: Any) -> None:
    for rows in _batches(table, columns):
        for row in rows:
            values = clean(row)
            if values:
                op.get_bind().execute(table.update().where(table.c.id == row.id).values(**values))


def upgrade() -> None:
    _clean(
        chapters,
        [
            chapters.c.url,
            chapters.c.content_html,
            chapters.c.author_notes_html,
            chapters.c.word_count,
            chapters.c.content_hash,
        ],
        _chapter,
    )
    _clean(
        novels,
        [novels.c.url, novels.c.description, novels.c.notes_html, novels.c.cover_url],
        _novel,
    )


def downgrade() -> None:
    """The raw HTML is gone: nothing to restore, and the schema did not change."""
