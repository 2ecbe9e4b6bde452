"""Write novels and chapters exactly once: upserts on their natural keys.

Running the same ingestion twice, or two at once, leaves one novel row and one row per
chapter. A chapter is written only when it is new or changed; chapters the site no longer
lists are marked removed (`removed_at`), never deleted.
Every value is checked against its column before it is sent (a number in range, a string
that fits, a required value present): a record the database would refuse ends the job
with a message naming the field, never with the database's error and the statement. An
optional text that does not fit its column is stored as null, with a note for the job.
Text is stored without NUL characters or lone surrogates, which PostgreSQL refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, fields, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Integer, String, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from changes import Changes, StoredChapter, stored_chapters, unlisted
from crawler.items import ChapterRecord, ChapterRef, NovelRecord
from crawler.sites.fields import INT_MAX
from crawler.sites.markup import http_url, is_clean, notes_are_clean
from errors import StoreError, clean_text
from models import Chapter, Novel
from models.base import utcnow

BATCH = 500
# Columns whose text a reader's browser renders or follows: each must hold what the
# adapters' sanitizer gives (crawler/sites/markup.py), or the record is refused.
HTML_CHECKS: dict[str, Callable[[str], bool]] = {
    "content_html": is_clean,
    "description": is_clean,
    "author_notes_html": notes_are_clean,
    "notes_html": notes_are_clean,
}
URL_COLUMNS = frozenset({"url", "cover_url"})


def _insert(session: Session, model: type) -> Any:
    return _insert_on(session.get_bind().dialect.name, model)


def _insert_on(dialect: str, target: Any) -> Any:
    """An INSERT of this dialect (one with ON CONFLICT) into a model or table."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(target)


def check_values(
    table: Table, values: dict[str, Any], *, what: str, notes: list[str] | None = None
) -> None:
    """Raise StoreError if a value cannot go into its column as it is: out of range, too
    long, missing, or (the one guard every row passes) HTML that is not sanitized or a URL
    that is not http(s).

    With `notes`, an optional text too long for its column is set to None instead, and a
    line saying so is added to `notes`.
    """
    for name, value in values.items():
        column = table.columns.get(name)
        if column is None:
            continue
        unsafe = _unsafe(name, value)
        if unsafe is not None:
            raise StoreError(f"could not store {what}: {name} {unsafe}")
        problem = _problem(column.type, value, nullable=column.nullable)
        if problem is None:
            continue
        if notes is not None and column.nullable and isinstance(value, str):
            values[name] = None
            notes.append(f"{what}: {name} {problem}; stored as null")
            continue
        raise StoreError(f"could not store {what}: {name} {problem}")


def _unsafe(name: str, value: Any) -> str | None:
    """What makes a value unsafe to serve again (the value itself is never echoed)."""
    if not isinstance(value, str):
        return None
    if name in URL_COLUMNS and http_url(value) is None:
        return "is not an http(s) URL"
    check = HTML_CHECKS.get(name)
    if check is not None and not check(value):
        return "is not sanitized HTML"
    return None


def _problem(kind: Any, value: Any, *, nullable: bool | None) -> str | None:
    if value is None:
        return None if nullable else "missing"
    if (
        isinstance(kind, Integer)
        and isinstance(value, int)
        and not -INT_MAX - 1 <= value <= INT_MAX
    ):
        return f"out of range ({value})"
    if isinstance(kind, Float) and isinstance(value, float) and not math.isfinite(value):
        return f"not a number ({value})"
    length = getattr(kind, "length", None) if isinstance(kind, String) else None
    if length and isinstance(value, str) and len(value) > length:
        return f"too long ({len(value)} characters, at most {length})"
    return None


def save_novel(session: Session, novel: NovelRecord, *, notes: list[str] | None = None) -> int:
    values = _novel_values(novel)
    check_values(Novel.__table__, values, what="novel", notes=notes)  # type: ignore[arg-type]
    stmt = _insert(session, Novel).values(**values, created_at=values["updated_at"])
    stmt = stmt.on_conflict_do_update(index_elements=["site", "site_novel_id"], set_=values)
    session.execute(stmt)
    found = select(Novel.id).where(Novel.site == novel.site, Novel.site_novel_id == novel.site_id)
    return session.execute(found).scalar_one()


def _novel_values(novel: NovelRecord) -> dict[str, Any]:
    return _clean(
        {
            "site": novel.site,
            "site_novel_id": novel.site_id,
            "url": novel.url,
            "title": novel.title,
            "author": novel.author,
            "description": novel.description,
            "cover_url": novel.cover_url,
            "tags": list(novel.tags),
            "warnings": list(novel.content_warnings),
            "status": novel.status,
            "word_count": novel.word_count,
            "rating": novel.rating,
            "volumes": [asdict(v) for v in novel.volumes],
            "published_at": novel.published_at,
            "tag_groups": {kind: list(names) for kind, names in novel.tag_groups},
            "language": novel.language,
            "content_rating": novel.content_rating,
            "chapters_planned": novel.chapters_planned,
            "site_updated_at": novel.site_updated_at,
            "notes_html": novel.notes_html,
            "updated_at": utcnow(),
        }
    )


class ChapterWriter:
    """Write one novel's chapters inside the caller's transaction, and count the changes.

    Fetched chapters (`texts`) are written when new or changed; chapters listed but not
    fetched (`listings`: unchanged on the site, or locked) get their listing row updated
    where it differs, keeping the stored text; `remove_unlisted` marks the rest removed.
    """

    def __init__(
        self,
        session: Session,
        novel_id: int,
        stored: Mapping[str, StoredChapter],
        *,
        notes: list[str] | None = None,
    ) -> None:
        self.session, self.novel_id, self.stored, self.notes = session, novel_id, stored, notes
        self.changes = Changes()
        self.now = utcnow()

    def texts(self, records: Sequence[ChapterRecord]) -> None:
        rows = []
        for record in records:
            known = self.stored.get(record.site_chapter_id)
            if known is None or known.removed:
                self.changes.new += 1
            elif known.content_hash != record.content_hash or known.listing_differs(record):
                self.changes.updated += 1
            else:
                self.changes.unchanged += 1
                if not known.row_differs(record):
                    continue
            rows.append(self._row(record))
        _upsert_chapters(self.session, rows, keep=KEYS)

    def listings(self, refs: Sequence[ChapterRef]) -> None:
        rows = []
        for listed in refs:
            known = self.stored.get(listed.site_chapter_id)
            # an entry the site lists untitled keeps the title its page gave
            ref = replace(listed, title=known.title) if known and not listed.title else listed
            if known is None or known.removed:
                self.changes.new += 1
            elif known.listing_differs(ref):
                self.changes.updated += 1
            else:
                self.changes.unchanged += 1
                if not known.row_differs(ref):
                    continue
            record = ChapterRecord.locked_from(ref)
            rows.append(self._row(replace(record, locked=ref.locked)))
        _upsert_chapters(self.session, rows, keep=KEYS | TEXT)

    def remove_unlisted(self, listed: set[str]) -> None:
        gone = unlisted(self.stored, listed)
        self.changes.removed += len(gone)
        for start in range(0, len(gone), BATCH):
            self.session.execute(
                update(Chapter)
                .where(
                    Chapter.novel_id == self.novel_id,
                    Chapter.site_chapter_id.in_(gone[start : start + BATCH]),
                )
                .values(removed_at=self.now, updated_at=self.now)
                .execution_options(synchronize_session=False)
            )

    def _row(self, chapter: ChapterRecord) -> dict[str, Any]:
        row = _chapter_values(self.novel_id, chapter, self.now)
        what = f"chapter {row['site_chapter_id']}"
        check_values(Chapter.__table__, row, what=what, notes=self.notes)  # type: ignore[arg-type]
        return row


def store_chapters(
    session: Session,
    novel_id: int,
    listing: Sequence[ChapterRef],
    texts: Iterable[Sequence[ChapterRecord]],
    *,
    stored: Mapping[str, StoredChapter],
    notes: list[str] | None = None,
) -> Changes:
    """Bring a novel's chapters in line with the site's listing, in the caller's
    transaction: the fetched chapters (`texts`, in batches) written where new or changed,
    the other listed ones updated where their listing changed (their text kept), the
    chapters no longer listed marked removed. Returns what changed."""
    check_unique(c.site_chapter_id for c in listing)
    listed = {c.site_chapter_id for c in listing}
    writer = ChapterWriter(session, novel_id, stored, notes=notes)
    written: set[str] = set()
    for records in texts:
        batch = [
            r for r in records if r.site_chapter_id in listed and r.site_chapter_id not in written
        ]
        writer.texts(batch)
        written.update(r.site_chapter_id for r in batch)
    writer.listings([c for c in listing if c.site_chapter_id not in written])
    writer.remove_unlisted(listed)
    return writer.changes


def save_chapters(
    session: Session,
    novel_id: int,
    chapters: Sequence[ChapterRecord],
    *,
    notes: list[str] | None = None,
) -> Changes:
    """Store a novel's whole chapter list at once (records with text, or locked)."""
    novel = session.get(Novel, novel_id)
    stored = stored_chapters(session, novel.site, novel.site_novel_id) if novel else {}
    return store_chapters(
        session,
        novel_id,
        [_ref(c) for c in chapters],
        [[c for c in chapters if not c.locked]],
        stored=stored,
        notes=notes,
    )


def check_unique(chapter_ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for chapter_id in chapter_ids:
        if chapter_id in seen:
            raise StoreError("could not store chapters: a chapter id is listed twice")
        seen.add(chapter_id)


def _ref(chapter: ChapterRecord) -> ChapterRef:
    return ChapterRef(
        site_chapter_id=chapter.site_chapter_id,
        url=chapter.url,
        position=chapter.position,
        title=chapter.title,
        volume=chapter.volume,
        published_at=chapter.published_at,
        locked=chapter.locked,
    )


def mark_checked(
    session: Session, novel_id: int, *, changed: bool, next_refresh_at: datetime | None
) -> None:
    """A run read the site for this novel: when, whether it changed, when it is due."""
    now = utcnow()
    values: dict[str, Any] = {"last_checked_at": now, "next_refresh_at": next_refresh_at}
    if changed:
        values["last_changed_at"] = now
    session.execute(
        update(Novel)
        .where(Novel.id == novel_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


KEYS = frozenset({"created_at", "novel_id"})
# A chapter the site has locked since we stored it keeps the text we have: the listing
# (title, position, date) and the lock are updated, the stored text is not wiped. So
# does a chapter an update did not fetch (unchanged on the site).
TEXT = frozenset({"content_html", "author_notes_html", "word_count", "content_hash"})


def _upsert_chapters(session: Session, rows: list[dict[str, Any]], *, keep: frozenset[str]) -> None:
    """Insert or update these chapter rows (all with the same keys), `keep` columns left
    as stored on a conflict. One statement, executed for many rows (the driver's batched
    form: multi-row VALUES on PostgreSQL), so its SQL is compiled once and cached, not
    once per batch with a bind parameter per value."""
    if not rows:
        return
    stmt = _chapter_upsert(session.get_bind().dialect.name, tuple(rows[0]), keep)
    for start in range(0, len(rows), BATCH):  # bounded statements, whatever the fiction
        session.execute(stmt, rows[start : start + BATCH])


@lru_cache(maxsize=16)
def _chapter_upsert(dialect: str, columns: tuple[str, ...], keep: frozenset[str]) -> Any:
    """The chapters' upsert for rows of these columns, on this dialect (a Core statement
    on the table: executed with many rows, it is one executemany, not an ORM bulk insert)."""
    stmt = _insert_on(dialect, Chapter.__table__)
    updated = {k: stmt.excluded[k] for k in columns if k not in keep}
    return stmt.on_conflict_do_update(index_elements=["novel_id", "site_chapter_id"], set_=updated)


# A record's fields are plain values: read them as they are (asdict copies deeply)
CHAPTER_FIELDS = tuple(f.name for f in fields(ChapterRecord))


def _chapter_values(novel_id: int, chapter: ChapterRecord, now: Any) -> dict[str, Any]:
    values = {name: _clean(getattr(chapter, name)) for name in CHAPTER_FIELDS}
    return {
        **values,
        "novel_id": novel_id,
        "removed_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _clean(value: Any) -> Any:
    """Every string in `value` as the databases store it (errors.clean_text)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value
