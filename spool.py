"""A job's fetched pages, kept in the database until the job is DONE.

The crawl writes each chapter page here as it arrives (compressed, committed within
moments by a writer thread), so a run that dies, times out or meets a site error leaves
them behind: the retry fetches
only pages the spool lacks, whichever worker host it runs on. Parsing reads the pages
back in batches and stores the chapter records beside them, and saving reads those in
batches: no phase holds a whole fiction in memory. The DONE transition deletes a job's
rows in its own transaction; a failed job's rows expire after SPOOL_RETENTION.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.orm import Session

from crawler.items import ChapterRecord
from crawler.sites.base import Fetch
from db import get_engine
from models import IngestionJob, JobStatus, SpooledPage
from models.base import utcnow

BATCH = 100  # pages or records read back at once
LEVEL = 1  # zlib: a page compresses about 4:1 at level 1, at a fraction of level 6's cost


def fetch_key(fetch: Fetch) -> str:
    """One request's identity: its method, URL and form, and the chapters it is to hold
    (AO3's whole-work page has one URL whatever chapters the work has: a page kept from
    before a chapter was posted must not stand in for one that holds it)."""
    form = "&".join(f"{name}={value}" for name, value in fetch.form)
    chapters = ",".join(sorted(ref.site_chapter_id for ref in fetch.refs))
    identity = f"{fetch.method}\n{fetch.url}\n{form}\n{chapters}"
    return hashlib.sha256(identity.encode()).hexdigest()


def pack(value: str) -> bytes:
    return zlib.compress(value.encode("utf-8", "surrogatepass"), LEVEL)


def unpack(blob: bytes) -> str:
    return zlib.decompress(blob).decode("utf-8", "surrogatepass")


def pack_records(records: list[ChapterRecord]) -> bytes:
    return pack(json.dumps([asdict(r) for r in records], default=_iso, ensure_ascii=False))


def unpack_records(blob: bytes) -> list[ChapterRecord]:
    return [_record(values) for values in json.loads(unpack(blob))]


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _record(values: dict[str, Any]) -> ChapterRecord:
    published = values.get("published_at")
    if published is not None:
        values["published_at"] = datetime.fromisoformat(published)
    return ChapterRecord(**values)


QUEUED_MAX = 200  # pages waiting for the writer at most
# Seconds the writer gathers pages before a write: fewer, larger writes take less of the
# interpreter the crawl shares; a killed horse loses at most this long's pages.
LINGER = 0.02


def _put_sql(paramstyle: str) -> str:
    """The spool's insert, in the driver's parameter style; a page already there (a run
    taken over, still finishing) stays."""
    mark = "%s" if paramstyle in ("format", "pyformat") else "?"
    return (
        f"INSERT INTO {SpooledPage.__tablename__} (job_id, fetch_key, page, fetched_at)"
        f" VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (job_id, fetch_key) DO NOTHING"
    )


_KEEP = (
    update(SpooledPage)
    .where(SpooledPage.id == bindparam("row"))
    .values(records=bindparam("records"))
    .execution_options(synchronize_session=False)
)


class _Writer(threading.Thread):
    """Writes pages on a thread of its own, so the crawl's reactor never waits for the
    database: what has arrived since the last write goes in one statement and commit.
    A killed work-horse loses only the pages still queued here, as it loses those in
    flight on the network. The first error stops it; `check` raises it."""

    def __init__(self, job_id: int) -> None:
        super().__init__(name=f"spool-{job_id}", daemon=True)
        self.job_id = job_id
        # bounded: a database slower than the site holds the crawl back, not the memory
        self.pending: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=QUEUED_MAX)
        self.error: BaseException | None = None
        self.closed = False  # the end of the queue has been taken

    def run(self) -> None:
        try:
            with get_engine().connect() as connection:
                while self._write(connection):
                    pass
        except BaseException as error:  # kept for the crawl to raise
            self.error = error
            while not self.closed:  # a full queue must not block the crawl
                self.closed = self.pending.get() is None

    def _write(self, connection: Connection) -> bool:
        """Write what is queued (at least one page); False once closed."""
        batch: list[tuple[str, str]] = []
        item = self.pending.get()
        gathered_by = time.monotonic() + LINGER
        while item is not None:
            batch.append(item)
            wait = gathered_by - time.monotonic()
            if len(batch) >= BATCH or wait <= 0:
                break
            try:  # gather what arrives meanwhile: one write for several pages
                item = self.pending.get(timeout=wait)
            except queue.Empty:
                break
        self.closed = item is None
        if batch:
            now = utcnow().replace(tzinfo=None)  # the column's form: naive UTC
            rows = [(self.job_id, key, pack(page), now) for key, page in batch]
            if connection.dialect.name == "postgresql":
                # A page is worth keeping, not worth an fsync: a crashed horse loses none
                # (the server has it), a crashed server a few pages to refetch. LOCAL:
                # the pooled connection's later transactions commit as usual.
                connection.exec_driver_sql("SET LOCAL synchronous_commit TO off")
            # the driver's own statement: a page costs no SQL compilation in this thread,
            # which shares the interpreter with the crawl
            connection.exec_driver_sql(_put_sql(connection.dialect.paramstyle), rows)
            connection.commit()
        return not self.closed

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class Spool:
    """The pages of one job, written as they arrive (on a writer thread), read back in
    batches."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._writer: _Writer | None = None
        self._kept: set[str] | None = None  # keys of the pages here, read once

    def keys(self) -> set[str]:
        """The requests whose pages are here (an earlier run of this job left them)."""
        if self._kept is None:
            with get_engine().connect() as connection:
                stmt = select(SpooledPage.fetch_key).where(SpooledPage.job_id == self.job_id)
                self._kept = set(connection.execute(stmt).scalars())
        return self._kept

    def has(self, fetch: Fetch) -> bool:
        return fetch_key(fetch) in self.keys()

    def put(self, fetch: Fetch, page: str) -> None:
        """Queue a page for writing; raises the writer's error if it has failed."""
        key, kept = fetch_key(fetch), self.keys()
        if key in kept:
            return  # the same request twice in one crawl: the first page stands
        if self._writer is None:
            self._writer = _Writer(self.job_id)
            self._writer.start()
        self._writer.check()
        self._writer.pending.put((key, page))
        kept.add(key)

    def flush(self) -> None:
        """Wait until every page queued is written; raise the writer's error if any."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.pending.put(None)
        writer.join()
        writer.check()

    def close(self) -> None:
        """Stop the writer without waiting for its error (the run has failed already)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.pending.put(None)
            writer.join(timeout=60)

    def pages(self, wanted: Mapping[str, Fetch]) -> Iterator[list[tuple[int, Fetch, str]]]:
        """This run's pages, in batches of (row id, its request, its text). Pages of
        requests this run did not make (the listing changed since) are left out."""
        last = 0
        while True:
            with get_engine().connect() as connection:
                rows = connection.execute(
                    select(SpooledPage.id, SpooledPage.fetch_key, SpooledPage.page)
                    .where(SpooledPage.job_id == self.job_id, SpooledPage.id > last)
                    .order_by(SpooledPage.id)
                    .limit(BATCH)
                ).all()
            if not rows:
                return
            last = rows[-1].id
            batch = [
                (r.id, wanted[r.fetch_key], unpack(r.page)) for r in rows if r.fetch_key in wanted
            ]
            if batch:
                yield batch

    def keep_records(self, parsed: list[tuple[int, list[ChapterRecord]]]) -> None:
        """Store the records parsed from each page (by the page's row id)."""
        rows = [{"row": row_id, "records": pack_records(records)} for row_id, records in parsed]
        if rows:
            with get_engine().begin() as connection:
                connection.execute(_KEEP, rows)

    def records(self, session: Session, row_ids: list[int]) -> Iterator[list[ChapterRecord]]:
        """The records parsed from these pages, a batch of pages at a time, read through
        the saving transaction's session."""
        for start in range(0, len(row_ids), BATCH):
            chunk = row_ids[start : start + BATCH]
            blobs = session.execute(
                select(SpooledPage.records).where(SpooledPage.id.in_(chunk))
            ).scalars()
            yield [record for blob in blobs if blob is not None for record in unpack_records(blob)]

    def drop(self, session: Session) -> None:
        """Remove this job's pages, in the caller's transaction (the DONE one)."""
        session.execute(delete(SpooledPage).where(SpooledPage.job_id == self.job_id))


def expire(session: Session, *, retention: int, now: datetime | None = None) -> int:
    """Delete the pages of jobs that ended more than `retention` seconds ago (a failed
    job's pages are kept that long for a retry by hand); returns the rows deleted."""
    cutoff = (now or utcnow()) - timedelta(seconds=retention)
    spooled = select(SpooledPage.job_id).distinct()  # few jobs: the spool is small
    ended = select(IngestionJob.id).where(
        IngestionJob.id.in_(spooled),
        IngestionJob.status.in_([JobStatus.DONE.value, JobStatus.ERROR.value]),
        IngestionJob.finished_at < cutoff,
    )
    result = session.execute(delete(SpooledPage).where(SpooledPage.job_id.in_(ended)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
