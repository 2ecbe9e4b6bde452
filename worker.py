"""`python worker.py`: one forking RQ worker on the three ingestion queues (and the
callback deliveries' queue, served first), with RQ's scheduler.

The worker listens on `<QUEUE_NAME>-high`, `<QUEUE_NAME>` and `<QUEUE_NAME>-low`, in that
order: RQ's own dequeue (one atomic pop over the three lists) takes a high-priority job
before any normal one, and a normal one before any low one (scheduled refreshes).

Each worker also takes turns at the reconciler's pass (WORKER_RECONCILE, on by
default): a child process of the worker (reconciler.Companion, started by
IngestionWorker.work), not a thread, so no horse is forked while a thread holds a
connection or a lock, the job loop is never slowed, and the pass never runs in a horse.
The child dies with its worker, like RQ's scheduler; a Redis lock lets one pass run at a
time over the whole fleet, and another worker takes over within RECONCILE_LOCK_TTL when
the holder dies. A deployment of only the API and N workers so recovers lost and
stranded jobs on its own.

After each job the worker aligns the RQ job with its row (ingestion_queue.align), so RQ's
registries (rq info, rq-dashboard) say what the rows say: finished only when DONE, failed
with the row's error when ERROR, canceled when a user cancelled it.

Importing this module preloads Scrapy and the project's modules in the worker parent, so
each forked work-horse starts with them imported (a fork copies them for free), and builds
the next crawl's Scrapy runner and crawler ahead. No reactor is installed here: each horse
installs its own. `rq worker ingestion-high ingestion ingestion-low --worker-class
worker.IngestionWorker` gets the same preloading; plain `rq worker ingestion-high
ingestion ingestion-low` works too, paying Scrapy's import in every job.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
import time
import uuid

from redis.exceptions import RedisError
from scrapy.settings import default_settings
from scrapy.utils.misc import load_object

import crawler.crawl
import db
import ingestion
import logs
from config import get_settings
from crawler.settings import DISABLED_HANDLERS
from db import OUTAGE_ERRORS, session_scope
from ingestion_queue import (
    REDIS_RECONNECT_MAX,
    IngestionWorker,
    callback_queue,
    queues,
    redis_connection,
)

__all__ = ["IngestionWorker", "build_worker", "main", "preload"]
log = logging.getLogger("worker")

_COMPONENT_SETTINGS = (
    "DOWNLOADER_MIDDLEWARES_BASE",
    "SPIDER_MIDDLEWARES_BASE",
    "EXTENSIONS_BASE",
    "DOWNLOAD_HANDLERS_BASE",
    "ITEM_PIPELINES_BASE",
)
_MODULES = (
    "scrapy.core.engine",
    "scrapy.core.scraper",
    "scrapy.core.scheduler",
    "scrapy.core.downloader",
    "scrapy.pqueues",
    "scrapy.squeues",
    "scrapy.dupefilters",
    "scrapy.statscollectors",
    "scrapy.logformatter",
    "scrapy.resolver",
    "scrapy.core.downloader.contextfactory",
    "scrapy.core.downloader.webclient",
    "scrapy.robotstxt",
    "scrapy.spiderloader",
    "scrapy.pipelines",
    "protego",
    "encodings.charmap",
    "twisted.internet.asyncioreactor",
    "twisted.web.client",
    "sqlalchemy.dialects.postgresql.psycopg2",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "psycopg2",
    "crawler.robots",
)


def _component_paths(table: dict[str, object]) -> list[str]:
    """Import paths in a Scrapy *_BASE table: its keys (components) or values (handlers)."""
    return [
        candidate
        for key, value in table.items()
        if key not in DISABLED_HANDLERS
        for candidate in (key, value)
        if isinstance(candidate, str) and "." in candidate
    ]


def preload() -> int:
    """Import every module a crawl needs; returns how many were loaded."""
    loaded = 0
    for name in _COMPONENT_SETTINGS:
        for path in _component_paths(getattr(default_settings, name)):
            load_object(path)
            loaded += 1
    for module in _MODULES:
        importlib.import_module(module)
        loaded += 1
    assert "twisted.internet.reactor" not in sys.modules, "preload must not install a reactor"
    assert crawler.crawl and ingestion
    return loaded


def freeze_heap() -> None:
    """Move everything the parent holds out of the garbage collector's reach.

    A forked horse shares the parent's memory copy-on-write; a full collection in the
    horse would touch every preloaded object and copy its page. Measured on the
    160-chapter fiction: ~20,000 pages copied per job without this, ~12,700 with it.
    """
    gc.freeze()


db.PRE_PING = False  # see db.py: a job's writes are retried on a dead connection
preload()
crawler.crawl.prepare(get_settings())
freeze_heap()


def warm_database() -> None:
    """Connect once and run a job's statements on no row, then roll back.

    The engine (dialect initialized, statements compiled) survives the fork; only its pool
    is dropped in the horse (db.py), so a job starts with a fresh connection and nothing
    left to initialize or compile.
    """
    with session_scope() as session:
        ingestion.warm_up(session)
        session.rollback()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one ingestion worker.")
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument(
        "--name", help="worker name prefix; a random suffix keeps restarts from clashing"
    )
    parser.add_argument("--no-scheduler", action="store_true", help="do not run RQ's scheduler")
    parser.add_argument("--max-jobs", type=int, help="exit after this many jobs")
    args = parser.parse_args(argv)
    settings = get_settings()
    logs.configure(settings)  # text or JSON lines, credentials removed, job fields added
    try:
        warm_database()
    except OUTAGE_ERRORS as error:  # not fatal: jobs connect (and retry) on their own
        log.warning("database not reachable at start (%s)", error)
    freeze_heap()  # again: the engine and compiled statements of the warm-up
    pause = 1.0
    while True:
        try:
            worker = _work(args)
        except RedisError as error:  # Redis is down: wait for it, as RQ does while idle
            log.warning("Redis unavailable (%s); retrying in %.0f s", error, pause)
            time.sleep(pause)
            pause = min(pause * 2, REDIS_RECONNECT_MAX)
            continue
        if args.burst or args.max_jobs or worker._shutdown_requested_date is not None:
            return 0
        log.warning("worker loop ended without a stop request; starting again")
        time.sleep(1.0)


def build_worker(name: str | None = None) -> IngestionWorker:
    """A worker on every priority's queue, high first (see the module's docstring)."""
    settings = get_settings()
    # RQ refuses a name whose previous owner died without deregistering (SIGKILL, OOM)
    # until its key expires; a fresh suffix per start lets a supervisor restart it at once.
    unique = f"{name}.{uuid.uuid4().hex[:6]}" if name else None
    every = [callback_queue(settings), *queues(settings)]  # callbacks: one short request each
    return IngestionWorker(every, connection=redis_connection(settings), name=unique)


def _work(args: argparse.Namespace) -> IngestionWorker:
    settings = get_settings()
    worker = build_worker(args.name)
    worker.work(
        burst=args.burst,
        with_scheduler=not args.no_scheduler,
        logging_level=settings.log_level,
        max_jobs=args.max_jobs,
    )
    return worker


if __name__ == "__main__":
    sys.exit(main())
