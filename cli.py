"""`python cli.py COMMAND`: operate the service from a shell.

process-queue  push every QUEUED job to Redis (each once, batched)
ingest URL     submit a fiction (--wait follows it to the end)
status [ID]    one job, or the latest jobs
cancel ID      stop a queued or running job
refresh ID     update a stored novel (--all: every one; --full: every chapter)
reconcile      recover lost jobs once (--loop: keep doing it; it also schedules refreshes)
schedule       one refresh scheduler pass: submit the refreshes that are due
migrate        create/upgrade the database schema
dashboard      rq-dashboard on the configured Redis
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated

import typer
from redis.exceptions import RedisError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import func, select

import jobs
import reconciler
import scheduler
from config import Settings, get_settings
from db import OUTAGE_ERRORS, keyset_batches, safe_url, session_scope
from errors import IngestError, redact_logs, safe_message
from models import TERMINAL, IngestionJob, JobStatus, Novel, Priority

ROOT = Path(__file__).resolve().parent
SHOWN_IDS = 20  # job ids a command lists before it says "and N more"
app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    level = logging.DEBUG if verbose else get_settings().log_level
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    redact_logs()


@app.command("process-queue")
def process_queue() -> None:
    """Push every QUEUED job to Redis; jobs already queued there are left alone."""
    settings = get_settings()
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
    """Submit a fiction URL, like POST /ingest."""
    settings = get_settings()
    with session_scope() as session:
        submission = jobs.submit(session, url, settings=settings)
    job_id = submission.job.id
    verb = "created" if submission.created else "already active"
    console.print(f"job {job_id} {verb} ({submission.job.status})")
    if wait:
        final = _follow(job_id, timeout=timeout)
        raise typer.Exit(0 if final.status == JobStatus.DONE else 1)


def _follow(job_id: int, *, timeout: float) -> IngestionJob:
    deadline, seen = time.monotonic() + timeout, ""
    while True:
        with session_scope() as session:
            job = jobs.get_job(session, job_id)
        line = f"{job.status} {job.chapters_fetched}/{job.chapters_found} fetched"
        if line != seen:
            console.print(f"job {job_id}: {line}")
            seen = line
        if job.status in TERMINAL or time.monotonic() > deadline:
            _print_job(job)
            return job
        time.sleep(0.2)


@app.command()
def status(job_id: Annotated[int | None, typer.Argument()] = None, limit: int = 20) -> None:
    """Show one job in full, or the latest jobs."""
    with session_scope() as session:
        if job_id is not None:
            _print_job(jobs.get_job(session, job_id))
            return
        rows, total = jobs.list_jobs(session, status=None, limit=limit, offset=0)
    table = Table("id", "status", "attempts", "chapters", "url", "error", title=f"{total} jobs")
    for job in rows:
        chapters = f"{job.chapters_saved}/{job.chapters_found}"
        error = job.error_message or ""
        table.add_row(str(job.id), job.status, str(job.attempts), chapters, job.source_url, error)
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
    """Stop a queued or running job; it ends as ERROR "cancelled by user"."""
    with session_scope() as session:
        moved = jobs.cancel(session, job_id, settings=get_settings())
    console.print(f"job {job_id} " + ("cancelled" if moved else "had already ended"))
    raise typer.Exit(0 if moved else 1)


@app.command()
def reconcile(
    loop: Annotated[bool, typer.Option(help="run a pass every RECONCILE_INTERVAL s")] = False,
) -> None:
    """Recover jobs lost by killed workers and push QUEUED jobs missing from Redis."""
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
    """One refresh scheduler pass: a low-priority job for every novel that is due."""
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
    """Update a stored novel from its site (like POST /novels/{id}/refresh), or all of them."""
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
            final = _follow(submission.job.id, timeout=timeout)
            raise typer.Exit(0 if final.status == JobStatus.DONE else 1)
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
    """Create or upgrade the database schema (alembic upgrade head)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    console.print(f"database at head: {safe_url(get_settings().database_url)}", markup=False)


@app.command()
def dashboard() -> None:
    """Serve rq-dashboard (queues, jobs, workers) on DASHBOARD_HOST:DASHBOARD_PORT."""
    settings = get_settings()
    argv = [sys.executable, "-m", "rq_dashboard"]
    argv += [
        "--bind",
        settings.dashboard_host or "127.0.0.1",
        "--port",
        str(settings.dashboard_port),
    ]
    os.execve(sys.executable, argv, dashboard_environment(settings, os.environ))


def dashboard_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The dashboard's environment: the Redis URL goes there (rq-dashboard reads
    RQ_DASHBOARD_REDIS_URL), never on its command line, which `ps` shows to every user."""
    return {**environ, "RQ_DASHBOARD_REDIS_URL": settings.redis_url}


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
