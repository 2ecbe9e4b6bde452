"""What the operators' commands read from RQ, and the RQ jobs `cli.py purge` deletes.

Queue depths and the workers serving the configured queues (`cli.py stats`, `workers`,
`GET /stats`), and the spent RQ jobs of purged rows. Every Redis error is raised as
QueueUnavailableError, as in ingestion_queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job
from rq.worker import BaseWorker

from config import Settings
from ingestion_queue import LIVE, callback_queue, queues, redis_connection, rq_job_id, unavailable


def served_queues(settings: Settings) -> list[Queue]:
    """Every queue the workers serve, in their order: callbacks, high, normal, low."""
    return [callback_queue(settings), *queues(settings)]


def queue_depths(settings: Settings) -> dict[str, int]:
    """Jobs waiting on each served queue, by queue name."""
    try:
        return {queue.name: queue.count for queue in served_queues(settings)}
    except RedisError as error:
        raise unavailable(error) from error


@dataclass(frozen=True)
class WorkerView:
    """One RQ worker as `cli.py workers` shows it."""

    name: str
    state: str  # idle, busy, suspended ...
    current_job: str | None  # the RQ id of the job it runs now
    queues: list[str]
    last_heartbeat: datetime | None  # UTC
    successful: int  # jobs it finished
    failed: int  # jobs that failed on it


def workers(settings: Settings) -> list[WorkerView]:
    """The workers registered on any served queue, each once, by name."""
    try:
        found: dict[str, BaseWorker] = {}
        for queue in served_queues(settings):
            for worker in Worker.all(queue=queue):
                found.setdefault(worker.name, worker)
        return [_view(worker) for _, worker in sorted(found.items())]
    except RedisError as error:
        raise unavailable(error) from error


def _view(worker: BaseWorker) -> WorkerView:
    return WorkerView(
        name=worker.name,
        state=str(worker.get_state()),
        current_job=worker.get_current_job_id(),
        queues=worker.queue_names(),
        last_heartbeat=worker.last_heartbeat,
        successful=worker.successful_job_count,
        failed=worker.failed_job_count,
    )


def delete_spent(job_ids: Sequence[int], *, settings: Settings) -> int:
    """Delete the RQ jobs of these rows that have ended (a waiting or running one is left
    alone); returns how many were deleted."""
    connection = redis_connection(settings)
    try:
        found = Job.fetch_many([rq_job_id(job_id) for job_id in job_ids], connection=connection)
        spent = [job for job in found if job is not None and not _live(job)]
        with connection.pipeline() as pipe:
            for job in spent:
                job.delete(pipeline=pipe)
            pipe.execute()
    except RedisError as error:
        raise unavailable(error) from error
    return len(spent)


def _live(job: Job) -> bool:
    return job.get_status(refresh=False) in LIVE  # as fetched: no round trip per job
