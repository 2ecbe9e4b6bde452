"""`python cli.py COMMAND`: operate the service from a shell; `--help` lists the commands.

Exit codes a script can rely on: 0 done; 1 what was asked about ended badly or there was
nothing to do (a job that ended in error, a refused retry, no workers); 2 a usage error or
an outage (a bad id or URL, the database or Redis unreachable).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

import ingestion_queue
import jobs
import logs
import reconciler
import scheduler
import stats as figures
from config import Settings, get_settings
from db import OUTAGE_ERRORS, keyset_batches, safe_url, session_scope
from errors import IngestError, safe_message
from models import TERMINAL, IngestionJob, JobStatus, Novel, Priority

ROOT = Path(__file__).resolve().parent
SHOWN_IDS = 20  # job ids a command lists before it says "and N more"
POLL_INTERVAL = 0.2  # seconds between two looks at a job followed by --wait
EXIT_CODES = "Exit codes: 0 done; 1 ended badly or nothing to do; 2 usage error or outage."
app = typer.Typer(
    help="Operate the novel ingestion service.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    level = logging.DEBUG if verbose else get_settings().log_level
    logs.configure(get_settings(), level=level, text_format=logs.CLI_FORMAT)


@app.command("process-queue")
def process_queue(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would be pushed; push nothing")
    ] = False,
) -> None:
    """Push every QUEUED job to Redis (each once).

    Jobs already on a queue, scheduled for a retry or running are left alone.
    """
    settings = get_settings()
    if dry_run:
        found, live = _judge_queued(settings)
        console.print(
            f"{found} queued jobs: {found - live} would be pushed, {live} already on the queue"
        )
        return
    with Progress(
        TextColumn("pushing QUEUED jobs"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("push", total=_count_queued())
        report = reconciler.push_queued(
            settings, on_batch=lambda seen, _pushed: bar.advance(task, seen)
        )
    console.print(
        f"{report.found} queued jobs: {report.pushed} pushed, {report.already} already on the queue"
    )


def _judge_queued(settings: Settings) -> tuple[int, int]:
    """(QUEUED rows, how many of them have a live RQ job), judged as a push would judge
    them, batch by batch."""
    pusher = ingestion_queue.Pusher(settings)  # reads the queue lists once, not per row
    found = live = 0
    for rows in reconciler.queued_batches(settings.process_queue_batch):
        found += len(rows)
        states = pusher.states([job_id for job_id, _ in rows])
        live += states.count(ingestion_queue.RunState.LIVE)
    return found, live


def _count_queued() -> int:
    with session_scope() as session:
        _, total = jobs.list_jobs(session, status=JobStatus.QUEUED, limit=1, offset=0)
    return total


@app.command()
def ingest(
    url: str,
    wait: Annotated[bool, typer.Option(help="follow the job until it ends")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 3600,
) -> None:
    """Submit a fiction URL, like POST /ingest.

    With --wait: a progress bar (plain lines when not on a terminal) until the job ends;
    exit 0 when it is done, 1 when it ended in error or the wait timed out.
    """
    settings = get_settings()
    with session_scope() as session:
        submission = jobs.submit(session, url, settings=settings)
    job_id = submission.job.id
    verb = "created" if submission.created else "already active"
    console.print(f"job {job_id} {verb} ({submission.job.status})")
    if wait:
        _wait_and_exit(job_id, timeout=timeout, settings=settings)


def _wait_and_exit(job_id: int, *, timeout: float, settings: Settings) -> None:
    """Follow a job to its end, print it, exit 0 if DONE else 1 (ERROR, or still running
    at the timeout)."""
    final = _follow(job_id, timeout=timeout, settings=settings)
    _print_job(final)
    if final.status not in TERMINAL:
        console.print(f"job {job_id} still {final.status} after {timeout:g} s", style="yellow")
    raise typer.Exit(0 if final.status == JobStatus.DONE else 1)


def _follow(job_id: int, *, timeout: float, settings: Settings) -> IngestionJob:
    """Show a job's progress until it ends or `timeout` passes; its last state."""
    if console.is_terminal:
        return _follow_live(job_id, timeout=timeout, settings=settings)
    job, seen = None, ""
    for job in _polls(job_id, timeout=timeout):
        line = f"job {job_id}: {progress_line(job, settings=settings)}"
        if line != seen:  # one line per change: a log or a test reads them
            console.print(line, markup=False, soft_wrap=True, highlight=False)
            seen = line
    assert job is not None
    return job


def _follow_live(job_id: int, *, timeout: float, settings: Settings) -> IngestionJob:
    job = None
    with Progress(
        TextColumn("job {task.fields[job]} {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}", markup=False),
        console=console,
    ) as bar:
        task = bar.add_task("follow", total=None, job=job_id, status="", detail="")
        for job in _polls(job_id, timeout=timeout):
            _show(bar, task, job, settings=settings)
    assert job is not None
    return job


def _show(bar: Progress, task: TaskID, job: IngestionJob, *, settings: Settings) -> None:
    """The bar: chapters fetched of found while crawling, then saved of found."""
    saving = job.status in (JobStatus.SAVING, JobStatus.DONE)
    done = job.chapters_saved if saving else job.chapters_fetched
    bar.update(
        task,
        total=job.chapters_found or None,
        completed=done,
        status=job.status,
        detail=progress_line(job, settings=settings),
    )


def _polls(job_id: int, *, timeout: float) -> Iterator[IngestionJob]:
    """The job, read afresh every POLL_INTERVAL, until it ends or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as session:
            job = jobs.get_job(session, job_id)
        yield job
        if job.status in TERMINAL or time.monotonic() > deadline:
            return
        time.sleep(POLL_INTERVAL)


def progress_line(job: IngestionJob, *, settings: Settings) -> str:
    """Where a job stands, in one line: its status, attempt, chapters, and while a retry
    waits the error that caused it."""
    attempt = f"attempt {job.attempts}/{settings.job_max_attempts}"
    chapters = f"{job.chapters_fetched} fetched, {job.chapters_saved}/{job.chapters_found} saved"
    if job.status == JobStatus.QUEUED:
        if job.attempts and job.last_error:
            return f"queued for a retry after {attempt}: {job.last_error}"
        return "queued"
    if job.status == JobStatus.ERROR:
        return f"error after {attempt}: {job.error_message or ''}"
    return f"{job.status}, {attempt}, {chapters}"


@app.command()
def status(job_id: Annotated[int | None, typer.Argument()] = None, limit: int = 20) -> None:
    """Show one job in full, or the latest jobs."""
    with session_scope() as session:
        if job_id is not None:
            _print_job(jobs.get_job(session, job_id))
            return
        rows, total = jobs.list_jobs(session, status=None, limit=limit, offset=0)
    _print_jobs(rows, title=f"{total} jobs")


JOB_COLUMNS = ("id", "status", "site", "attempts", "chapters", "updated", "url", "error")


def _print_jobs(rows: Sequence[IngestionJob], *, title: str) -> None:
    lines = [
        (
            str(job.id),
            str(job.status),
            job.site,
            str(job.attempts),
            f"{job.chapters_saved}/{job.chapters_found}",
            f"{job.updated_at:%Y-%m-%d %H:%M:%S}",
            job.source_url,
            job.error_message or "",
        )
        for job in rows
    ]
    print_table(title, JOB_COLUMNS, lines)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on a terminal (long values folded, never cut); elsewhere (a pipe, a file)
    the title, then one tab-separated line per row, every value whole."""
    if not console.is_terminal:
        typer.echo(title)
        for row in (headers, *rows):
            typer.echo("\t".join(cell.replace("\t", " ") for cell in row))
        return
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # values are text, never markup
    console.print(table)


def _print_job(job: IngestionJob) -> None:
    fields = ("id", "source_url", "status", "error_message", "last_error", "attempts")
    more = ("chapters_found", "chapters_fetched", "chapters_saved", "chapters_locked", "novel_id")
    kind = ("full", "priority", "origin")
    times = ("created_at", "started_at", "finished_at")
    for name in fields + more + kind + times:
        console.print(f"{name:>16}: {getattr(job, name)}", markup=False)
    if job.changes:
        changed = ", ".join(f"{count} {name}" for name, count in job.changes.items())
        console.print(f"{'changes':>16}: {changed}", markup=False)
    for line in job.warnings or []:
        console.print(f"{'warning':>16}: {line}", markup=False)


@app.command()
def cancel(job_id: int) -> None:
    """Stop a queued or running job.

    It ends as ERROR "cancelled by user"; exit 1 if it had already ended.
    """
    with session_scope() as session:
        moved = jobs.cancel(session, job_id, settings=get_settings())
    console.print(f"job {job_id} " + ("cancelled" if moved else "had already ended"))
    raise typer.Exit(0 if moved else 1)


@app.command("jobs")
def list_jobs(
    state: Annotated[
        JobStatus | None, typer.Option("--status", help="only jobs in this status")
    ] = None,
    site: Annotated[str | None, typer.Option(help="only jobs of this site, e.g. royalroad")] = None,
    limit: Annotated[int, typer.Option(min=1, help="jobs shown at most")] = 50,
) -> None:
    """List the latest jobs (--status error: the failed ones)."""
    with session_scope() as session:
        rows, total = jobs.list_jobs(session, status=state, site=site, limit=limit, offset=0)
    kind = f"{state} jobs" if state else "jobs"
    _print_jobs(rows, title=f"{total} {kind}" + (f" of {site}" if site else ""))


@app.command()
def retry(
    job_id: Annotated[int | None, typer.Argument(help="a job that ended in error")] = None,
    all_errors: Annotated[
        bool, typer.Option("--all-errors", help="every fiction whose latest job failed")
    ] = False,
    site: Annotated[str | None, typer.Option(help="with --all-errors: of this site")] = None,
    wait: Annotated[bool, typer.Option(help="follow the job until it ends (one job)")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 3600,
) -> None:
    """Run a job that ended in error again.

    The same job goes back to QUEUED, its attempts from 0, its history kept. Exit 1 when
    it is refused: the job has not ended in error, or another job of its fiction is active
    (--all-errors: when none was retried).
    """
    if (job_id is None) == (not all_errors):
        raise typer.BadParameter("give either a JOB_ID or --all-errors")
    settings = get_settings()
    if job_id is None:
        _retry_all(settings, site=site)
        return
    try:
        with session_scope() as session:
            retried = jobs.retry(session, job_id, settings=settings)
    except jobs.JobConflictError as error:
        console.print(str(error), style="red", markup=False)
        raise typer.Exit(1) from None
    console.print(f"job {job_id}: {_submitted(retried)}", soft_wrap=True)
    if wait:
        _wait_and_exit(job_id, timeout=timeout, settings=settings)


def _retry_all(settings: Settings, *, site: str | None) -> None:
    report = jobs.retry_all_errors(settings, site=site)
    console.print(
        f"{len(report.retried)} failed jobs retried, {len(report.refused)} refused (another"
        f" job of the fiction is active), {report.superseded} superseded by a newer job",
        soft_wrap=True,
    )
    _print_ids("retried", report.retried)
    if not report.enqueued:
        console.print("Redis unreachable: they wait QUEUED until the reconciler pushes them")
    raise typer.Exit(0 if report.retried else 1)


def _print_ids(what: str, ids: Sequence[int]) -> None:
    shown = ids[:SHOWN_IDS]
    if shown:
        more = len(ids) - len(shown)
        tail = f" and {more} more" if more else ""
        console.print(f"{what}: " + ", ".join(map(str, shown)) + tail, soft_wrap=True)


DURATION = re.compile(r"(\d+)\s*([smhd])")
SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m` or `3600s` as a timedelta."""
    match = DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 30d, 12h, 90m or 3600s")
    return timedelta(seconds=int(match[1]) * SECONDS_PER[match[2]])


@app.command()
def purge(
    older_than: Annotated[
        timedelta | None,
        typer.Option(
            parser=parse_duration,
            metavar="AGE",
            help="jobs that ended longer ago than this: 30d, 12h, 90m, 3600s [default:"
            " JOB_RETENTION]",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count them; delete nothing")] = False,
) -> None:
    """Delete old ended jobs and their history.

    Jobs that ended (done or error) longer ago than --older-than go, with their history,
    spooled pages and RQ jobs. Novels, chapters and active jobs are never purged.
    """
    settings = get_settings()
    age = older_than if older_than is not None else timedelta(seconds=settings.job_retention)
    report = jobs.purge(settings, older_than=age, dry_run=dry_run)
    verb = "would be purged" if dry_run else "purged"
    console.print(
        f"{report.jobs} jobs that ended over {_age(age)} ago {verb}"
        f" ({report.events} history events, {report.rq_jobs} RQ jobs)",
        soft_wrap=True,
    )
    if report.redis_error:
        console.print(f"their RQ jobs were left to expire: {report.redis_error}", markup=False)


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % SECONDS_PER[unit] == 0:
            return f"{seconds // SECONDS_PER[unit]}{unit}"
    return f"{seconds}s"


@app.command()
def stats() -> None:
    """Jobs by status and site, queues, workers.

    Also how long the oldest QUEUED job has waited. The same figures as GET /stats; exit 2
    when Redis is unreachable (the database's figures are shown still).
    """
    settings = get_settings()
    with session_scope() as session:
        found = figures.collect(session, settings=settings)
    by_status = [(status, str(count)) for status, count in found.jobs.items()]
    print_table(f"{sum(found.jobs.values())} jobs", ("status", "jobs"), by_status)
    statuses = [status.value for status in JobStatus]
    by_site = [(site, *(str(counts[s]) for s in statuses)) for site, counts in found.sites.items()]
    print_table("jobs by site", ("site", *statuses), by_site)
    waited = found.oldest_queued_seconds
    console.print("oldest queued job: " + ("none" if waited is None else f"waiting {waited:.0f} s"))
    if found.queues is None:
        console.print(f"queues and workers unknown: {found.redis_error}", style="red", markup=False)
        raise typer.Exit(2)
    depths = [(name, str(count)) for name, count in found.queues.items()]
    print_table("queues", ("queue", "waiting"), depths)
    console.print(f"workers: {found.workers}")


@app.command()
def workers() -> None:
    """List the RQ workers serving the queues.

    Name, state, current job, queues, last heartbeat, jobs finished and failed. Exit 1
    when none serves them.
    """
    settings = get_settings()
    found = ingestion_queue.workers(settings)
    rows = [
        (
            worker.name,
            worker.state,
            worker.current_job or "",
            ", ".join(worker.queues),
            f"{worker.last_heartbeat:%Y-%m-%d %H:%M:%S}" if worker.last_heartbeat else "",
            str(worker.successful),
            str(worker.failed),
        )
        for worker in found
    ]
    columns = ("name", "state", "job", "queues", "heartbeat (UTC)", "finished", "failed")
    print_table(f"{len(found)} workers", columns, rows)
    raise typer.Exit(0 if found else 1)


@app.command()
def reconcile(
    loop: Annotated[bool, typer.Option(help="run a pass every RECONCILE_INTERVAL s")] = False,
) -> None:
    """Recover lost jobs and push QUEUED ones once.

    Jobs lost by killed workers go back to QUEUED, QUEUED jobs missing from Redis are
    pushed, due refreshes are scheduled. Workers run this pass themselves
    (WORKER_RECONCILE); --loop runs it apart.
    """
    settings = get_settings()
    if loop:
        reconciler.run_forever(settings)
        return
    report = reconciler.reconcile(settings)
    console.print(
        f"recovered {len(report.recovered)}, failed {len(report.failed)}, "
        f"pushed {report.push.pushed} of {report.push.found} queued, "
        f"moved {report.retries_due} due retries"
    )
    console.print(f"refresh scheduler: {report.schedule.summary()}", soft_wrap=True)


@app.command()
def schedule() -> None:
    """Submit the refreshes that are due (one pass).

    A low-priority job for every stored novel whose next refresh has come.
    """
    report = scheduler.schedule_due(get_settings())
    console.print(report.summary(), soft_wrap=True)
    shown = report.submitted[:SHOWN_IDS]
    if shown:
        more = len(report.submitted) - len(shown)
        tail = f" and {more} more" if more else ""
        console.print("jobs " + ", ".join(str(job_id) for job_id in shown) + tail, soft_wrap=True)


@app.command()
def refresh(
    novel_id: Annotated[int | None, typer.Argument(help="the stored novel to update")] = None,
    every: Annotated[bool, typer.Option("--all", help="every stored novel")] = False,
    full: Annotated[bool, typer.Option(help="refetch every chapter, not only new ones")] = False,
    allow_removals: Annotated[
        bool, typer.Option(help="mark removed however many chapters the site dropped")
    ] = False,
    wait: Annotated[bool, typer.Option(help="follow the job until it ends (one novel)")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most")] = 3600,
) -> None:
    """Update a stored novel from its site, or all of them.

    Like POST /novels/{id}/refresh. With --wait (one novel): as `ingest --wait`.
    """
    if (novel_id is None) == (not every):
        raise typer.BadParameter("give either a NOVEL_ID or --all")
    settings = get_settings()
    if novel_id is not None:
        with session_scope() as session:
            submission = jobs.refresh(
                session, novel_id, settings=settings, full=full, allow_removals=allow_removals
            )
        console.print(f"novel {novel_id}: {_submitted(submission)}", soft_wrap=True)
        if wait:
            _wait_and_exit(submission.job.id, timeout=timeout, settings=settings)
        return
    counts = _refresh_all(settings, full=full)
    console.print(
        f"{sum(counts.values())} novels: {counts['created']} refresh jobs created, "
        f"{counts['active']} already active, {counts['refused']} refused",
        soft_wrap=True,
    )
    raise typer.Exit(1 if counts["refused"] else 0)


def _submitted(submission: jobs.Submission) -> str:
    job = submission.job
    verb = "created" if submission.created else "already active"
    line = f"job {job.id} {verb} ({job.status})"
    if not submission.enqueued:
        line += "; Redis unreachable: it waits QUEUED until the reconciler pushes it"
    return line


def _refresh_all(settings: Settings, *, full: bool) -> dict[str, int]:
    counts = {"created": 0, "active": 0, "refused": 0}
    with Progress(
        TextColumn("submitting refreshes"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("refresh", total=_count_novels())
        for batch in _novel_batches(settings.process_queue_batch):
            for novel_id in batch:
                counts[_refresh_one(novel_id, settings=settings, full=full)] += 1
                bar.advance(task)
    return counts


def _refresh_one(novel_id: int, *, settings: Settings, full: bool) -> str:
    try:
        with session_scope() as session:
            # a bulk refresh waits behind what users ask for, as scheduled refreshes do
            submission = jobs.refresh(
                session, novel_id, settings=settings, full=full, priority=Priority.LOW
            )
    except IngestError as error:  # e.g. a site no longer supported: the others go on
        console.print(f"novel {novel_id}: {safe_message(str(error))}", style="red", markup=False)
        return "refused"
    return "created" if submission.created else "active"


def _novel_batches(batch: int) -> Iterator[list[int]]:
    """Ids of every stored novel, in batches, by keyset pagination."""
    for rows in keyset_batches(select(Novel.id), Novel.id, batch):
        yield [novel_id for (novel_id,) in rows]


def _count_novels() -> int:
    with session_scope() as session:
        return int(session.execute(select(func.count(Novel.id))).scalar_one())


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema.

    alembic upgrade head.
    """
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    console.print(f"database at head: {safe_url(get_settings().database_url)}", markup=False)


@app.command("export")
def export_epub(
    novel_id: Annotated[int, typer.Argument(help="the stored novel")],
    output: Annotated[Path, typer.Option("--output", "-o", help="the EPUB file to write")],
) -> None:
    """Write a stored novel as an EPUB 3 book.

    The same book GET /novels/{id}/export.epub serves.
    """
    import shutil

    import export  # ebooklib loads for this command only

    with session_scope() as session:  # an unknown id is a NotFoundError: exit 2, like status
        book = export.export_novel(session, novel_id, settings=get_settings())
    shutil.copyfile(book.path, output)
    console.print(f"novel {novel_id}: {output}", markup=False)


@app.command(short_help="Serve rq-dashboard on the configured Redis.")
def dashboard() -> None:
    """Serve rq-dashboard (queues, jobs, workers) on DASHBOARD_HOST:DASHBOARD_PORT, behind
    DASHBOARD_USERNAME/DASHBOARD_PASSWORD (without them: on 127.0.0.1 only, no login)."""
    import dashboard as rq_dashboard_app  # Flask and rq-dashboard load for this command only

    rq_dashboard_app.serve(get_settings())


def main() -> int:
    """Run a command; what a user can cause (a bad id or URL, an outage) is one red line,
    with no credentials in it."""
    try:
        app()
    except IngestError as error:
        _fail(str(error))
    except OUTAGE_ERRORS as error:
        _fail(f"database error: {getattr(error, 'orig', None) or error}")
    except RedisError as error:
        _fail(f"Redis error: {error}")
    return 2


def _fail(line: str) -> None:
    console.print(safe_message(line), style="red", markup=False)


if __name__ == "__main__":
    sys.exit(main())
