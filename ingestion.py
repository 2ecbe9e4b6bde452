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
from itertools import chain

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import logs
import metrics
from changes import Changes, StoredChapter, UpdatePlan, stored_chapters
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
    PermanentFailure,
    RetryableFailure,
    classify,
    safe_message,
)
from models import RUNNING, IngestionJob, JobStatus
from models.base import utcnow
from models.ingestion_job import callback_pending, claim, record_progress, transition
from novel_store import mark_checked, save_chapters, save_novel, store_chapters
from scheduler import next_refresh_at
from spool import Spool, fetch_key

log = logging.getLogger(__name__)


class RunLost(Exception):
    """Raised when a run's status move is refused: the job was cancelled or taken over."""


@dataclass(frozen=True)
class Outcome:
    status: JobStatus | None  # where the run left the job; None when it did not run it
    retry_in: float | None = None  # seconds until the queue should run it again
    # whether the row's callback is due (read in the transaction that ended the row, after
    # its UPDATE: a callback attached later is queued by whoever attaches it); None: unknown
    callback_due: bool | None = None


@riding_outages
def _claim(job_id: int) -> tuple[str | None, IngestionJob | None]:
    with session_scope() as session:
        run_id = claim(session, job_id)
        return run_id, session.get(IngestionJob, job_id) if run_id else None


def run_ingestion(
    job_id: int, *, settings: Settings, fatal: tuple[type[BaseException], ...] = ()
) -> Outcome:
    """Run one job. Exceptions of the `fatal` types (the queue's own timeout) propagate.

    Its log lines carry the job's id, site and phase (logs.job_context); its figures are
    recorded once, at its end (metrics.record_run)."""
    with logs.job_context(job_id=job_id, phase="claim"):
        started = time.monotonic()
        run_id, job = _claim(job_id)
        if run_id is None or job is None:
            log.info("job %s is not queued; a duplicate or late run does nothing", job_id)
            return Outcome(status=None)
        logs.bind(site=job.site)
        run = Run(
            job_id,
            run_id,
            job.attempts,
            settings,
            started,
            fatal,
            full=job.full,
            allow_removals=job.allow_removals,
            figures=metrics.RunFigures(site=job.site, started=started),
        )
        try:
            outcome = _settled(run, job.source_url)
        except fatal:  # the queue's timeout: the queue settles the row as ERROR
            run.record(Outcome(status=JobStatus.ERROR))
            raise
        run.record(outcome)
        return outcome


def _settled(run: Run, source_url: str) -> Outcome:
    """What the run ended in, its failures settled (retry or ERROR)."""
    try:
        return run.execute(source_url)
    except RunLost:
        log.info("job %s: run %s lost its job (cancelled or taken over)", run.job_id, run.run_id)
        return Outcome(status=None)
    except IngestFailure as failure:
        return run.fail(failure)
    except run.fatal:
        raise
    except Exception as error:  # an outage is retried, a bug is not; the trace is logged
        log.exception("job %s: unexpected error", run.job_id)
        return run.fail(classify(error, doing=f"ingest {source_url}"))


@dataclass
class Run:
    job_id: int
    run_id: str
    attempts: int
    settings: Settings
    started: float = field(default_factory=time.monotonic)
    fatal: tuple[type[BaseException], ...] = ()  # the queue's own: never classified here
    full: bool = False  # refetch every chapter, not only what the listing shows changed
    allow_removals: bool = False  # UPDATE_REMOVAL_LIMIT waived for this job
    figures: metrics.RunFigures = field(default_factory=lambda: metrics.RunFigures(site="-"))

    def enter(self, phase: str) -> None:
        """The run moves to `phase` (crawl, parse, save): timed, and on its log lines."""
        self.figures.enter(phase)
        logs.bind(phase=phase)

    def record(self, outcome: Outcome) -> None:
        retried = outcome.retry_in is not None
        label = metrics.outcome_of(outcome.status, retried=retried)
        metrics.record_run(self.figures, outcome=label, settings=self.settings)

    def deadline(self) -> float:
        return self.settings.job_timeout - (time.monotonic() - self.started)

    def execute(self, source_url: str) -> Outcome:
        self.enter("crawl")
        try:
            adapter, ref = sites.resolve(source_url, aliases=self.settings.site_aliases)
        except IngestError as error:  # e.g. an alias the API had and this worker lacks
            raise PermanentFailure(str(error)) from error
        marks = [time.monotonic()]
        limit = 1.0 if self.allow_removals else self.settings.update_removal_limit
        plan = UpdatePlan(self._stored(ref), full=self.full, removal_limit=limit)
        spool = Spool(self.job_id)
        try:
            fetched = self._crawl(adapter, ref, plan, spool)
            spool.flush()
        except BaseException:
            spool.close()
            raise
        marks.append(time.monotonic())
        self.enter("parse")
        assert fetched.novel is not None
        self.move(JobStatus.PARSING, message=_fetched_message(fetched))
        parsed = parse_spool(
            adapter, fetched, spool, budget=self.settings.records_in_memory, fatal=self.fatal
        )
        marks.append(time.monotonic())
        self.enter("save")
        self.move(JobStatus.SAVING, message=f"{len(parsed.chapter_ids)} chapters parsed")
        try:
            changes, callback_due = self._save(fetched.novel, plan, spool, parsed)
        except SQLAlchemyError as error:  # outages were ridden out above: the data was refused
            log.exception("job %s: the database refused the novel", self.job_id)
            raise classify(error, doing="store novel") from error
        marks.append(time.monotonic())
        log.info(
            "job %s done: %s chapters (%s); claim %.0f ms, crawl %.0f ms, parse %.0f ms,"
            " save %.0f ms; peak RSS %.0f MiB",
            self.job_id,
            len(fetched.novel.chapters),
            _changes_message(changes),
            *((b - a) * 1000 for a, b in zip([self.started, *marks], marks, strict=False)),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )
        return Outcome(status=JobStatus.DONE, callback_due=callback_due)

    @riding_outages
    def _stored(self, ref: FictionRef) -> dict[str, StoredChapter]:
        with session_scope() as session:
            return stored_chapters(session, ref.site, ref.site_id)

    def _crawl(
        self, adapter: SiteAdapter, ref: FictionRef, plan: UpdatePlan, spool: Spool
    ) -> CrawlResult:
        listener = ProgressListener(job_id=self.job_id, run_id=self.run_id)
        result = crawl(
            ref,
            adapter,
            settings=self.settings,
            listener=listener,
            sink=spool,
            choose=plan.to_fetch,
            timeout=self.deadline(),
        )
        listener.flush()
        self.figures.add_crawl(result.stats)
        if result.failure is not None:
            raise result.failure
        if result.novel is None:
            raise RetryableFailure(f"crawl of {ref.url} ended without the fiction page")
        return result

    @riding_outages
    def _save(
        self, novel: NovelRecord, plan: UpdatePlan, spool: Spool, parsed: ParsedPages
    ) -> tuple[Changes, bool]:
        """The novel, its chapters, the job's DONE and the spool's removal: one transaction,
        so a run that fails leaves the stored novel as it was. Also says whether the row's
        callback is due (callback_pending, in the same transaction)."""
        locked = sum(c.locked for c in novel.chapters)
        notes: list[str] = []  # optional values too long for the store: stored as null
        with session_scope() as session:
            novel_id = save_novel(session, novel, notes=notes)
            texts = chain([parsed.held], spool.records(session, parsed.row_ids))
            changes = store_chapters(
                session, novel_id, novel.chapters, texts, stored=plan.stored, notes=notes
            )
            due = next_refresh_at(novel.status, settings=self.settings, now=utcnow())
            mark_checked(session, novel_id, changed=changes.any, next_refresh_at=due)
            spool.drop(session)
            if not transition(
                session,
                self.job_id,
                JobStatus.DONE,
                owner=self.run_id,
                message=f"{len(novel.chapters)} chapters: {_changes_message(changes)}"
                + (f"; {locked} of them locked" if locked else ""),
                novel_id=novel_id,
                chapters_saved=len(novel.chapters),
                chapters_locked=locked,
                changes=changes.as_dict(),
                warnings=job_warnings(novel, locked, notes),
            ):
                raise RunLost  # rolls the writes back with the refused move
            callback_due = callback_pending(session, self.job_id)
        return changes, callback_due

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


@dataclass(frozen=True)
class ParsedPages:
    held: list[ChapterRecord]  # records kept in memory (up to RECORDS_IN_MEMORY of text)
    row_ids: list[int]  # the spool rows holding the rest of this run's records
    chapter_ids: frozenset[str]  # every chapter parsed


def parse_spool(
    adapter: SiteAdapter,
    fetched: CrawlResult,
    spool: Spool,
    *,
    budget: int,
    fatal: tuple[type[BaseException], ...] = (),
) -> ParsedPages:
    """Parse this run's pages from the spool, a batch at a time; keep the records in
    memory up to `budget` characters of text (RECORDS_IN_MEMORY: a fiction of a few
    hundred chapters never reads the spool twice), and the rest in the spool for saving,
    so memory stays bounded however long the fiction. Every chapter the run asked for must
    be among them."""
    wanted = {fetch_key(f): f for f in fetched.fetches}
    held: list[ChapterRecord] = []
    row_ids: list[int] = []
    found: set[str] = set()
    for batch in spool.pages(wanted):
        parsed = [(row, _parse_page(adapter, page, fetch, fatal)) for row, fetch, page in batch]
        records = [r for _, page_records in parsed for r in page_records]
        found.update(r.site_chapter_id for r in records)
        size = sum(len(r.content_html or "") + len(r.author_notes_html or "") for r in records)
        if not row_ids and size <= budget:
            held.extend(records)
            budget -= size
        else:  # past the budget: this batch and every later one go back to the spool
            spool.keep_records(parsed)
            row_ids.extend(row for row, _ in parsed)
    for fetch in fetched.fetches:
        for ref in fetch.refs:
            if ref.site_chapter_id not in found:  # its page never reached the spool
                raise RetryableFailure(
                    f"chapter {ref.site_chapter_id} ({ref.url}) was not fetched; the retry"
                    " fetches what the spool lacks"
                )
    return ParsedPages(held=held, row_ids=row_ids, chapter_ids=frozenset(found))


def _fetched_message(fetched: CrawlResult) -> str:
    pages = len(fetched.fetches)
    kept = f", {fetched.reused} of them kept from an earlier attempt" if fetched.reused else ""
    return f"{pages} pages fetched{kept}"


def _changes_message(changes: Changes) -> str:
    return ", ".join(f"{count} {name}" for name, count in changes.as_dict().items())


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
    site="warm-up", site_id="0", url="http://warm-up.invalid/", title="", author=None,
    description=None, cover_url=None, tags=(), status=None, word_count=None, rating=None,
    volumes=(), chapters=(),
)  # fmt: skip


def warm_up(session: Session) -> None:
    """Run the statements of a job against no job row (id 0), so they are compiled.

    The caller rolls the session back: the warm-up novel is never committed.
    """
    claim(session, 0)
    record_progress(session, 0, run_id="warm-up", chapters_found=0)
    record_progress(session, 0, run_id="warm-up", chapters_fetched=0)
    spool = Spool(0)
    spool.keys()
    for _ in spool.pages({}):
        pass
    spool.drop(session)
    for target in (JobStatus.PARSING, JobStatus.SAVING):
        transition(session, 0, target, owner="warm-up", message="warm-up")
    transition(session, 0, JobStatus.QUEUED, owner="warm-up", message="warm-up")
    novel_id = save_novel(session, WARM_UP_NOVEL)
    save_chapters(session, novel_id, [])
    mark_checked(session, novel_id, changed=True, next_refresh_at=None)
    stored_chapters(session, WARM_UP_NOVEL.site, WARM_UP_NOVEL.site_id)
    transition(
        session,
        0,
        JobStatus.DONE,
        owner="warm-up",
        message="warm-up",
        novel_id=novel_id,
        chapters_saved=0,
        chapters_locked=0,
        changes={},
        warnings=[],
    )
    callback_pending(session, 0)
    session.get(IngestionJob, 0)
