"""The state machine: every (from, to) pair of the table, on a real database."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from db import session_scope
from models import IngestionJob, JobEvent, JobStatus
from models.ingestion_job import (
    ALLOWED,
    TERMINAL,
    CallbackStatus,
    callback_pending,
    claim,
    record_progress,
    reopen,
    transition,
)
from tests.utils.factories import make_job

pytestmark = pytest.mark.usefixtures("pg_db")


def _job_in(status: JobStatus, *, run_id: str | None = "run-1") -> int:
    return make_job(status=status, run_id=run_id)


def _status(job_id: int) -> str:
    with session_scope() as session:
        return session.execute(select(IngestionJob.status).where(IngestionJob.id == job_id)).one()[
            0
        ]


@pytest.mark.parametrize(("source", "target"), list(itertools.product(JobStatus, JobStatus)))
def test_every_pair_of_the_table(source: JobStatus, target: JobStatus) -> None:
    job_id = _job_in(source)
    with session_scope() as session:
        moved = transition(session, job_id, target, message="why")
    assert moved is (target in ALLOWED[source])
    assert _status(job_id) == (target.value if moved else source.value)
    with session_scope() as session:
        events = session.execute(select(JobEvent).where(JobEvent.job_id == job_id)).scalars()
        assert [e.status for e in events] == ([target.value] if moved else [])


def test_terminal_states_allow_nothing() -> None:
    assert all(not ALLOWED[s] for s in TERMINAL)
    assert all(JobStatus.ERROR in ALLOWED[s] for s in set(JobStatus) - TERMINAL)


def test_claim_takes_a_queued_job_once() -> None:
    job_id = _job_in(JobStatus.QUEUED, run_id=None)
    with session_scope() as session:
        first = claim(session, job_id)
    with session_scope() as session:
        second = claim(session, job_id)
    assert first is not None and second is None
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        assert (job.status, job.attempts, job.run_id) == ("crawling", 1, first)
        assert job.started_at is not None


def test_a_run_that_lost_its_job_cannot_move_it() -> None:
    job_id = _job_in(JobStatus.CRAWLING, run_id="owner")
    with session_scope() as session:
        assert not transition(session, job_id, JobStatus.PARSING, owner="someone-else")
        assert transition(session, job_id, JobStatus.PARSING, owner="owner")


def test_error_keeps_message_and_finish_time() -> None:
    job_id = _job_in(JobStatus.SAVING)
    with session_scope() as session:
        assert transition(session, job_id, JobStatus.ERROR, message="boom")
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        assert (job.error_message, job.last_error) == ("boom", "boom")
        assert job.finished_at is not None


def test_retry_returns_to_queued_and_frees_the_run() -> None:
    job_id = _job_in(JobStatus.CRAWLING, run_id="r")
    with session_scope() as session:
        assert transition(session, job_id, JobStatus.QUEUED, owner="r", message="HTTP 503")
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        assert (job.status, job.run_id, job.last_error, job.error_message) == (
            "queued",
            None,
            "HTTP 503",
            None,
        )


def test_progress_is_written_only_by_the_owning_run() -> None:
    job_id = _job_in(JobStatus.CRAWLING, run_id="r")
    with session_scope() as session:
        record_progress(session, job_id, run_id="other", chapters_found=9)
        record_progress(session, job_id, run_id="r", chapters_fetched=4)
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        assert (job.chapters_found, job.chapters_fetched) == (0, 4)


@pytest.mark.parametrize("source", list(JobStatus))
def test_reopen_moves_only_an_error_back_to_queued(source: JobStatus) -> None:
    job_id = _job_in(source)
    with session_scope() as session:
        moved = reopen(session, job_id, message="retried by user")
    assert moved is (source is JobStatus.ERROR)
    assert _status(job_id) == (JobStatus.QUEUED.value if moved else source.value)


def test_reopen_starts_a_fresh_attempt_and_keeps_the_history() -> None:
    job_id = _job_in(JobStatus.SAVING)
    with session_scope() as session:
        record_progress(session, job_id, run_id="run-1", chapters_found=5, chapters_saved=2)
        assert transition(session, job_id, JobStatus.ERROR, message="gave up after 3 attempts")
    with session_scope() as session:
        assert reopen(session, job_id, message="retried by user")
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        fresh = (job.status, job.attempts, job.run_id, job.error_message, job.last_error)
        assert fresh == ("queued", 0, None, None, None)
        assert (job.chapters_found, job.chapters_saved, job.finished_at) == (0, 0, None)
        events = session.execute(
            select(JobEvent.status, JobEvent.message).where(JobEvent.job_id == job_id)
        ).all()
    assert events == [("error", "gave up after 3 attempts"), ("queued", "retried by user")]


def test_reopen_is_refused_by_the_database_while_another_job_of_the_fiction_is_active() -> None:
    failed = _job_in(JobStatus.ERROR)
    with session_scope() as session:
        job = session.get(IngestionJob, failed)
        assert job is not None
        session.add(
            IngestionJob(source_url=job.source_url, site=job.site, site_novel_id=job.site_novel_id)
        )
    with pytest.raises(IntegrityError), session_scope() as session:
        reopen(session, failed, message="retried by user")
    assert _status(failed) == "error"


def test_callback_pending_says_whether_a_callback_waits_to_be_told() -> None:
    """What a DONE run reads in its own transaction to decide whether to queue a callback."""
    plain, told, waiting = (_job_in(JobStatus.SAVING) for _ in range(3))
    with session_scope() as session:
        for job_id, state in ((told, CallbackStatus.DELIVERED), (waiting, CallbackStatus.PENDING)):
            job = session.get(IngestionJob, job_id)
            assert job is not None
            job.callback_url, job.callback_status = "https://example.org/hook", state.value
    with session_scope() as session:
        assert transition(session, waiting, JobStatus.DONE, owner="run-1")
        assert [callback_pending(session, j) for j in (plain, told, waiting, 10**9)] == [
            False,
            False,
            True,
            False,
        ]
