"""The refresh scheduler against real Redis and PostgreSQL: due novels get one job each."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from redis import Redis
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import jobs
import scheduler
from config import Settings, get_settings
from db import session_scope
from errors import QueueUnavailableError, StorageUnavailableError
from models import IngestionJob, JobStatus, Novel
from models.base import utcnow
from tests.utils.services import QUEUE_KEY, ROOT

pytestmark = pytest.mark.usefixtures("pg_db")

DAY, WEEK = 86400, 7 * 86400
_numbers = itertools.count(70_000)


def _novels(
    count: int = 1,
    *,
    due_in: float | None = -3600,
    status: str | None = "ongoing",
    checked_ago: float | None = None,
) -> list[int]:
    """Stored novels whose next refresh is `due_in` seconds from now (None: not set)."""
    now = utcnow()
    with session_scope() as session:
        novels = []
        for _ in range(count):
            number = next(_numbers)
            novels.append(
                Novel(
                    site="royalroad",
                    site_novel_id=str(number),
                    url=f"https://www.royalroad.com/fiction/{number}",
                    title=f"Novel {number}",
                    status=status,
                    next_refresh_at=None if due_in is None else now + timedelta(seconds=due_in),
                    last_checked_at=None
                    if checked_ago is None
                    else now - timedelta(seconds=checked_ago),
                )
            )
        session.add_all(novels)
        session.flush()
        return [novel.id for novel in novels]


def _novel(novel_id: int) -> Novel:
    with session_scope() as session:
        novel = session.get(Novel, novel_id)
        assert novel is not None
        return novel


def _jobs() -> list[IngestionJob]:
    with session_scope() as session:
        return list(session.execute(select(IngestionJob).order_by(IngestionJob.id)).scalars())


def _settings(**changes: object) -> Settings:
    return get_settings().model_copy(update=changes)


def _within(value: datetime | None, start: datetime, seconds: float, jitter: float) -> bool:
    assert value is not None
    low = start + timedelta(seconds=seconds * (1 - jitter))
    high = start + timedelta(seconds=seconds * (1 + jitter))
    return low <= value <= high


def _always() -> bool:
    return True


def test_due_novels_get_one_low_priority_refresh_job_each(redis_conn: Redis) -> None:
    due = _novels(5)
    later = _novels(2, due_in=3600)
    before = {novel_id: _novel(novel_id).updated_at for novel_id in due}
    now = utcnow()
    report = scheduler.schedule_due(get_settings(), now=now)
    assert (len(report.submitted), report.busy, report.raced, report.skipped) == (5, 0, 0, None)
    rows = _jobs()
    assert sorted(job.novel_id or 0 for job in rows) == due
    assert {(job.priority, job.origin, job.status, job.full) for job in rows} == {
        ("low", "schedule", "queued", False)
    }
    low = {j.decode() for j in redis_conn.lrange(f"{QUEUE_KEY}-low", 0, -1)}
    assert low == {f"ingestion-{job.id}" for job in rows}
    for novel_id in due:
        novel = _novel(novel_id)
        assert _within(novel.next_refresh_at, now, DAY, 0.1)
        assert novel.updated_at == before[novel_id]  # rescheduling is no change of the novel
    assert all(_novel(n).next_refresh_at > now for n in later)  # type: ignore[operator]
    assert not redis_conn.exists(scheduler.lock_key(get_settings()))  # released
    again = scheduler.schedule_due(get_settings(), now=now)
    assert again.submitted == [] and len(_jobs()) == 5


def _scheduled(output: str) -> int:
    match = re.search(r"scheduled (\d+) refreshes", output)
    return int(match.group(1)) if match else 0


def test_two_scheduler_processes_at_once_submit_each_due_novel_once(redis_conn: Redis) -> None:
    due = _novels(300)
    argv = [sys.executable, "cli.py", "schedule"]
    runs = [
        subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    per_novel = Counter(job.novel_id for job in _jobs())
    assert sorted(per_novel) == due
    assert set(per_novel.values()) == {1}
    assert sum(_scheduled(out) for out, _ in outputs) == 300, outputs


def test_two_overlapping_passes_past_the_lock_still_submit_each_novel_once() -> None:
    """The compare-and-set behind the lock: passes that overlap anyway (a lock that ran
    out under a stalled pass) submit a novel once per due time."""
    due = _novels(60)
    start = threading.Barrier(2)
    reports: list[scheduler.ScheduleReport] = []

    def one_pass() -> None:
        start.wait()
        reports.append(scheduler.run_pass(get_settings(), now=utcnow(), still_ours=_always))

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    per_novel = Counter(job.novel_id for job in _jobs())
    assert sorted(per_novel) == due and set(per_novel.values()) == {1}
    assert sum(len(r.submitted) for r in reports) == 60
    assert sum(len(r.submitted) + r.raced + r.busy for r in reports) >= 60


def test_a_pass_without_the_lock_does_nothing(redis_conn: Redis) -> None:
    [novel_id] = _novels(1)
    seen = _novel(novel_id).next_refresh_at
    key = scheduler.lock_key(get_settings())
    redis_conn.set(key, "another-pass", ex=60)
    report = scheduler.schedule_due(get_settings())
    assert report.skipped == "locked" and "nothing done" in report.summary()
    assert _jobs() == [] and _novel(novel_id).next_refresh_at == seen
    assert redis_conn.get(key) == b"another-pass"  # not released by a pass that lacked it


def test_the_lock_expires_if_its_holder_dies(redis_conn: Redis) -> None:
    lock = scheduler.PassLock(redis_conn, scheduler.lock_key(get_settings()))
    assert lock.acquire()
    assert 0 < redis_conn.ttl(lock.key) <= scheduler.LOCK_TTL
    assert not scheduler.PassLock(redis_conn, lock.key).acquire()
    assert lock.extend()
    redis_conn.set(lock.key, "taken-over")
    assert not lock.extend()
    lock.release()
    assert redis_conn.get(lock.key) == b"taken-over"


def test_a_pass_that_loses_the_lock_stops(redis_conn: Redis) -> None:
    _novels(5)
    answers = iter([True, True, True, False])  # backfill, then two novels, then lost
    report = scheduler.run_pass(get_settings(), now=utcnow(), still_ours=lambda: next(answers))
    assert len(report.submitted) == 2 and len(_jobs()) == 2


def test_a_novel_with_an_active_job_is_skipped(redis_conn: Redis) -> None:
    [busy, ended] = _novels(2)
    for novel_id, status in ((busy, JobStatus.CRAWLING), (ended, JobStatus.DONE)):
        novel = _novel(novel_id)
        with session_scope() as session:  # reached at another URL form of the fiction
            session.add(
                IngestionJob(
                    source_url=f"{novel.url}/some-slug",
                    site=novel.site,
                    site_novel_id=novel.site_novel_id,
                    status=status.value,
                )
            )
    seen = _novel(busy).next_refresh_at
    report = scheduler.schedule_due(get_settings())
    assert report.busy == 1 and len(report.submitted) == 1
    [created] = [job for job in _jobs() if job.id in report.submitted]
    assert created.novel_id == ended
    assert _novel(busy).next_refresh_at == seen  # due still: refreshed once its job ends


def test_completed_novels_wait_the_longer_interval() -> None:
    [completed] = _novels(1, status="completed")
    [ongoing] = _novels(1, status="ongoing")
    now = utcnow()
    report = scheduler.schedule_due(get_settings(), now=now)
    assert len(report.submitted) == 2
    assert _within(_novel(completed).next_refresh_at, now, WEEK, 0.1)
    assert _within(_novel(ongoing).next_refresh_at, now, DAY, 0.1)


def test_jitter_spreads_the_next_refresh_times() -> None:
    due = _novels(60)
    now = utcnow()
    scheduler.schedule_due(get_settings(), now=now)
    times = [_novel(novel_id).next_refresh_at for novel_id in due]
    assert all(_within(t, now, DAY, 0.1) for t in times)
    seconds = sorted((t - now).total_seconds() for t in times if t is not None)
    assert len(set(seconds)) == 60
    assert seconds[-1] - seconds[0] > 0.5 * (2 * 0.1 * DAY)  # spread over the window


def test_refresh_interval_zero_does_nothing(redis_conn: Redis) -> None:
    [due] = _novels(1)
    [unset] = _novels(1, due_in=None)
    seen = _novel(due).next_refresh_at
    report = scheduler.schedule_due(_settings(refresh_interval=0))
    assert report.skipped == "off" and "REFRESH_INTERVAL=0" in report.summary()
    assert _jobs() == []
    assert _novel(due).next_refresh_at == seen and _novel(unset).next_refresh_at is None
    assert not redis_conn.exists(scheduler.lock_key(get_settings()))


def test_novels_without_a_refresh_time_are_given_one() -> None:
    [recent] = _novels(1, due_in=None, checked_ago=3600)
    [never_checked] = _novels(1, due_in=None)
    [long_ago] = _novels(1, due_in=None, checked_ago=3 * DAY)
    now = utcnow()
    report = scheduler.schedule_due(get_settings(), now=now)
    assert report.backfilled == 3
    recent_novel = _novel(recent)
    assert recent_novel.last_checked_at is not None
    assert _within(recent_novel.next_refresh_at, recent_novel.last_checked_at, DAY, 0.1)
    unchecked = _novel(never_checked)
    assert _within(unchecked.next_refresh_at, unchecked.updated_at, DAY, 0.1)
    # checked three days ago: due already, so it is refreshed now and moved on
    assert [job.novel_id for job in _jobs()] == [long_ago]
    assert _within(_novel(long_ago).next_refresh_at, now, DAY, 0.1)


def test_completed_novels_are_not_scheduled_when_their_interval_is_zero() -> None:
    [completed] = _novels(1, status="completed")
    [unset] = _novels(1, status="completed", due_in=None)
    report = scheduler.schedule_due(_settings(refresh_interval_completed=0))
    assert report.submitted == [] and _jobs() == []
    assert _novel(completed).next_refresh_at is None and _novel(unset).next_refresh_at is None


def test_redis_down_is_a_clear_error_and_nothing_is_lost() -> None:
    [novel_id] = _novels(1)
    with pytest.raises(QueueUnavailableError, match="Redis unavailable"):
        scheduler.schedule_due(_settings(redis_url="redis://127.0.0.1:1/0"))
    assert _jobs() == []
    assert len(scheduler.schedule_due(get_settings()).submitted) == 1
    assert _jobs()[0].novel_id == novel_id


def test_database_down_mid_pass_is_a_clear_error_and_nothing_is_lost(
    redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = _novels(4)
    submit = jobs.refresh
    calls = itertools.count()

    def database_goes_down(*args: object, **kwargs: object) -> jobs.Submission:
        if next(calls) == 2:
            raise OperationalError("INSERT ...", {}, Exception("server closed the connection"))
        return submit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "refresh", database_goes_down)
    with pytest.raises(StorageUnavailableError, match="database unavailable: server closed"):
        scheduler.schedule_due(get_settings())
    assert [job.novel_id for job in _jobs()] == due[:2]
    assert not redis_conn.exists(scheduler.lock_key(get_settings()))
    monkeypatch.setattr(jobs, "refresh", submit)
    report = scheduler.schedule_due(get_settings())  # the third is still due: not lost
    assert len(report.submitted) == 2
    assert sorted(job.novel_id or 0 for job in _jobs()) == due


def test_a_novel_whose_url_no_longer_resolves_waits_for_its_next_time() -> None:
    [novel_id] = _novels(1)
    with session_scope() as session:
        novel = session.get(Novel, novel_id)
        assert novel is not None
        novel.url = "https://example.com/story/1"  # a site the service no longer crawls
    now = utcnow()
    report = scheduler.schedule_due(get_settings(), now=now)
    assert (report.submitted, report.failed) == ([], 1)
    assert "1 could not be submitted" in report.summary()
    assert _jobs() == [] and _within(_novel(novel_id).next_refresh_at, now, DAY, 0.1)
