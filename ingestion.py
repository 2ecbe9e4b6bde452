"""One ingestion run: claim the job, crawl, parse, save; every step a real status.

This module knows nothing of RQ: it returns an `Outcome` and the queue decides what a
retry means. Status moves go through models.ingestion_job.transition only, guarded by
the run's id, so a run that lost its job (cancelled, recovered elsewhere) stops writing.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config import Settings, get_settings
from crawler import sites
from crawler.crawl import crawl
from crawler.items import ChapterRecord, FictionRef, NovelRecord
from crawler.sites.base import Fetch, SiteAdapter
from crawler.spiders.fiction import CrawlResult
from db import OUTAGE_ERRORS, riding_outages, session_scope
from errors import (
    IngestError,
    IngestFailure,
    ParseError,
    PermanentFailure,
    RetryableFailure,
    classify,
    safe_message,
)
from models import RUNNING, IngestionJob, JobStatus
from models.ingestion_job import claim, record_progress, transition
from novel_store import save_chapters, save_novel

log = logging.getLogger(__name__)


class RunLost(Exception):
    """Raised when a run's status move is refused: the job was cancelled or taken over."""


@dataclass(frozen=True)
class Outcome:
    status: JobStatus | None  # where the run left the job; None when it did not run it
    retry_in: float | None = None  # seconds until the queue should run it again


@riding_outages
def _claim(job_id: int) -> tuple[str | None, IngestionJob | None]:
    with session_scope() as session:
        run_id = claim(session, job_id)
        return run_id, session.get(IngestionJob, job_id) if run_id else None


def run_ingestion(
    job_id: int, *, settings: Settings, fatal: tuple[type[BaseException], ...] = ()
) -> Outcome:
    """Run one job. Exceptions of the `fatal` types (the queue's own timeout) propagate."""
    started = time.monotonic()
    run_id, job = _claim(job_id)
    if run_id is None or job is None:
        log.info("job %s is not queued; a duplicate or late run does nothing", job_id)
        return Outcome(status=None)
    run = Run(job_id, run_id, job.attempts, settings, started, fatal)
    try:
        return run.execute(job.source_url)
    except RunLost:
        log.info("job %s: run %s lost its job (cancelled or taken over)", job_id, run_id)
        return Outcome(status=None)
    except IngestFailure as failure:
        return run.fail(failure)
    except fatal:
        raise
    except Exception as error:  # an outage is retried, a bug is not; the trace is logged
        log.exception("job %s: unexpected error", job_id)
        return run.fail(classify(error, doing=f"ingest {job.source_url}"))


@dataclass
class Run:
    job_id: int
    run_id: str
    attempts: int
    settings: Settings
    started: float = field(default_factory=time.monotonic)
    fatal: tuple[type[BaseException], ...] = ()  # the queue's own: never classified here

    def deadline(self) -> float:
        return self.settings.job_timeout - (time.monotonic() - self.started)

    def execute(self, source_url: str) -> Outcome:
        try:
            adapter, ref = sites.resolve(source_url, aliases=self.settings.site_aliases)
        except IngestError as error:  # e.g. an alias the API had and this worker lacks
            raise PermanentFailure(str(error)) from error
        marks = [time.monotonic()]
        fetched = self._crawl(adapter, ref)
        marks.append(time.monotonic())
        self.move(JobStatus.PARSING, message=f"{len(fetched.chapter_pages)} pages fetched")
        assert fetched.novel is not None
        chapters = parse_chapters(adapter, fetched.novel, fetched.chapter_pages, fatal=self.fatal)
        marks.append(time.monotonic())
        self.move(JobStatus.SAVING, message=f"{len(chapters)} chapters parsed")
        try:
            self._save(fetched.novel, chapters)
        except SQLAlchemyError as error:  # outages were ridden out above: the data was refused
            log.exception("job %s: the database refused the novel", self.job_id)
            raise classify(error, doing="store novel") from error
        marks.append(time.monotonic())
        log.info(
            "job %s done: %s chapters; claim %.0f ms, crawl %.0f ms, parse %.0f ms, save %.0f ms;"
            " peak RSS %.0f MiB",
            self.job_id,
            len(chapters),
            *((b - a) * 1000 for a, b in zip([self.started, *marks], marks, strict=False)),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
        return Outcome(status=JobStatus.DONE)

    def _crawl(self, adapter: SiteAdapter, ref: FictionRef) -> CrawlResult:
        listener = ProgressListener(job_id=self.job_id, run_id=self.run_id)
        result = crawl(
            ref, adapter, settings=self.settings, listener=listener, timeout=self.deadline()
        )
        listener.flush()
        if result.failure is not None:
            raise result.failure
        if result.novel is None:
            raise RetryableFailure(f"crawl of {ref.url} ended without the fiction page")
        return result

    @riding_outages
    def _save(self, novel: NovelRecord, chapters: list[ChapterRecord]) -> None:
        locked = sum(c.locked for c in chapters)
        notes: list[str] = []  # optional values too long for the store: stored as null
        with session_scope() as session:
            novel_id = save_novel(session, novel, notes=notes)
            saved = save_chapters(session, novel_id, chapters, notes=notes)
            if not transition(
                session,
                self.job_id,
                JobStatus.DONE,
                owner=self.run_id,
                message=f"{saved} chapters saved"
                + (f", {locked} of them locked" if locked else ""),
                novel_id=novel_id,
                chapters_saved=saved,
                chapters_locked=locked,
                warnings=job_warnings(novel, locked, notes),
            ):
                raise RunLost  # rolls the writes back with the refused move

    @riding_outages
    def move(self, target: JobStatus, *, message: str | None = None) -> None:
        with session_scope() as session:
            if not transition(session, self.job_id, target, owner=self.run_id, message=message):
                raise RunLost

    def fail(self, failure: IngestFailure) -> Outcome:
        failure = self._within_backoff_max(failure)
        if isinstance(failure, RetryableFailure) and self.attempts < self.settings.job_max_attempts:
            delay = self.retry_delay(failure)
            message = f"attempt {self.attempts} failed, retrying in {delay:.0f} s: {failure}"
            if self._settle(JobStatus.QUEUED, message):
                return Outcome(status=JobStatus.QUEUED, retry_in=delay)
            return Outcome(status=None)
        final = isinstance(failure, PermanentFailure)
        message = _final_message(str(failure), self.attempts, final=final)
        return Outcome(status=JobStatus.ERROR if self._settle(JobStatus.ERROR, message) else None)

    def retry_delay(self, failure: RetryableFailure) -> float:
        backoff = self.settings.job_retry_backoff * 2 ** (self.attempts - 1)
        return max(min(backoff, self.settings.job_retry_backoff_max), failure.retry_after or 0.0)

    def _within_backoff_max(self, failure: IngestFailure) -> IngestFailure:
        """A site that asks for a longer wait than we are set to give is not retried early."""
        limit = self.settings.job_retry_backoff_max
        if not isinstance(failure, RetryableFailure) or (failure.retry_after or 0.0) <= limit:
            return failure
        wait = failure.retry_after or 0.0
        return PermanentFailure(
            f"{failure}; the site asks to wait {wait:.0f} s before trying again, longer than"
            f" JOB_RETRY_BACKOFF_MAX ({limit} s)"
        )

    @riding_outages
    def _settle(self, target: JobStatus, message: str) -> bool:
        log.warning("job %s -> %s: %s", self.job_id, target.value, message)
        with session_scope() as session:
            return transition(session, self.job_id, target, owner=self.run_id, message=message)


def _final_message(reason: str, attempts: int, *, final: bool) -> str:
    """What an ERROR row says: the reason, and for retryable ones how often it was tried."""
    return reason if final else f"gave up after {attempts} attempts: {reason}"


def parse_chapters(
    adapter: SiteAdapter,
    novel: NovelRecord,
    pages: list[tuple[Fetch, str]],
    *,
    fatal: tuple[type[BaseException], ...] = (),
) -> list[ChapterRecord]:
    """Every chapter of the listing, in reading order: parsed from the page that holds
    it, or locked without text."""
    parsed: dict[str, ChapterRecord] = {}
    for fetch, page in pages:
        for record in _parse_page(adapter, page, fetch, fatal):
            parsed[record.site_chapter_id] = record
    records: list[ChapterRecord] = []
    for ref in novel.chapters:
        found = ChapterRecord.locked_from(ref) if ref.locked else parsed.get(ref.site_chapter_id)
        if found is None:
            raise ParseError(f"chapter {ref.site_chapter_id} ({ref.url}) was not fetched")
        records.append(found)
    return records


def _parse_page(
    adapter: SiteAdapter, page: str, fetch: Fetch, fatal: tuple[type[BaseException], ...]
) -> list[ChapterRecord]:
    passing: tuple[type[BaseException], ...] = (IngestFailure, *fatal)
    try:
        return adapter.parse_chapters(page, fetch)
    except passing:
        raise
    except Exception as error:  # a parser bug: it fails the same way on every attempt
        log.exception("parser failed on %s", fetch.url)
        ids = ", ".join(ref.site_chapter_id for ref in fetch.refs[:3])
        raise classify(error, doing=f"parse chapter {ids} ({fetch.url})") from error


WARNINGS_MAX = 50  # lines kept per job; the rest is summed up in one line


def job_warnings(novel: NovelRecord, locked: int, stored: list[str]) -> list[str]:
    """What the job shows under `warnings`: fields not read, chapters not served."""
    lines = [*novel.parse_warnings, *stored]
    if locked:
        lines.append(
            f"{locked} chapters are locked on the site (premium, or not yet published):"
            " stored with their title and date, without text"
        )
    kept = [safe_message(line, limit=300) for line in lines[:WARNINGS_MAX]]
    if len(lines) > WARNINGS_MAX:
        kept.append(f"... and {len(lines) - WARNINGS_MAX} more")
    return kept


class ProgressListener:
    """Writes crawl progress to the job row, at most every `interval` seconds."""

    def __init__(self, *, job_id: int, run_id: str, interval: float = 0.25) -> None:
        self.job_id, self.run_id, self.interval = job_id, run_id, interval
        self.counts: dict[str, int] = {}  # not yet written
        self.written_at = 0.0

    def chapters_found(self, count: int) -> None:
        self.counts["chapters_found"] = count
        self.flush()

    def page_fetched(self, fetched: int) -> None:
        self.counts["chapters_fetched"] = fetched
        if time.monotonic() - self.written_at >= self.interval:
            self.flush()

    def flush(self) -> None:
        if not self.counts:
            return
        try:
            with session_scope() as session:
                record_progress(session, self.job_id, run_id=self.run_id, **self.counts)
            self.counts.clear()
        except OUTAGE_ERRORS:  # progress is advisory: never stall the crawl for it
            log.warning("job %s: progress not written (database unavailable)", self.job_id)
        self.written_at = time.monotonic()


@riding_outages
def abandon(
    job_id: int, *, reason: str, final: bool = False, run_id: str | None = None
) -> JobStatus | None:
    """Settle a job whose run died outside its own control (killed, lost, timed out).

    From whatever running state, the job goes back to QUEUED to be run again, or to ERROR
    when `final` or when its attempts are spent. With `run_id`, only that run is settled:
    a job that a newer run has claimed since is left alone. Returns the new status, None
    if nothing was moved.
    """
    settings = get_settings()
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        if job is None or job.status not in RUNNING:
            return None
        retry = not final and job.attempts < settings.job_max_attempts
        target = JobStatus.QUEUED if retry else JobStatus.ERROR
        message = (
            f"{reason}; retrying" if retry else _final_message(reason, job.attempts, final=final)
        )
        moved = transition(session, job_id, target, owner=run_id, expected=RUNNING, message=message)
    return target if moved else None


WARM_UP_NOVEL = NovelRecord(
    site="warm-up", site_id="0", url="", title="", author=None, description=None,
    cover_url=None, tags=(), status=None, word_count=None, rating=None, volumes=(), chapters=(),
)  # fmt: skip


def warm_up(session: Session) -> None:
    """Run the statements of a job against no job row (id 0), so they are compiled.

    The caller rolls the session back: the warm-up novel is never committed.
    """
    claim(session, 0)
    record_progress(session, 0, run_id="warm-up", chapters_found=0)
    for target in (JobStatus.PARSING, JobStatus.SAVING):
        transition(session, 0, target, owner="warm-up", message="warm-up")
    transition(session, 0, JobStatus.QUEUED, owner="warm-up", message="warm-up")
    novel_id = save_novel(session, WARM_UP_NOVEL)
    save_chapters(session, novel_id, [])
    transition(
        session,
        0,
        JobStatus.DONE,
        owner="warm-up",
        message="warm-up",
        novel_id=novel_id,
        chapters_saved=0,
        chapters_locked=0,
        warnings=[],
    )
    session.get(IngestionJob, 0)
