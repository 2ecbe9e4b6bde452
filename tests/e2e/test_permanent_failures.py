"""Failures no retry can fix end the job at once, with one short line a user can read.

Each test runs one real ingestion (the fixture site, Scrapy, the database) in a forked
child, as a work-horse does, with one thing broken in that child only: a parser that
raises, or an adapter that reads a number wrong (the Pages-popover bug: every digit of
the popover joined). The job must end ERROR after one attempt, its message short and
free of SQL, query parameters and URL credentials.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

import jobs
import novel_store
from config import get_settings
from crawler.sites.base import Fetch, ListingStep
from crawler.sites.royalroad import ADAPTER
from db import session_scope
from errors import MESSAGE_LIMIT, ParseError
from models import IngestionJob, JobEvent
from tests.fixture_site.server import FixtureSite
from tests.utils.jobs import counts

WORDS = 2_845_275_782_406


def _child(job_id: int, sabotage: Callable[[], None]) -> None:
    from ingestion import run_ingestion

    sabotage()
    run_ingestion(job_id, settings=get_settings())


def _run_broken(site: FixtureSite, fiction_id: int, sabotage: Callable[[], None]) -> IngestionJob:
    with session_scope() as session:
        job_id = jobs.submit(session, site.url(f"/fiction/{fiction_id}"), settings=get_settings())
        job_id = job_id.job.id
    process = multiprocessing.get_context("fork").Process(target=_child, args=(job_id, sabotage))
    process.start()
    process.join(120)
    assert process.exitcode == 0
    with session_scope() as session:
        job = session.get(IngestionJob, job_id)
        assert job is not None
        events = select(JobEvent.status).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        job.history = list(session.execute(events).scalars())  # type: ignore[attr-defined]
        return job


def _assert_ended_at_once(job: IngestionJob, *, phase: str) -> str:
    assert job.status == "error"
    assert job.attempts == 1  # no retry: it would fail the same way
    assert job.history == ["queued", "crawling", *(["parsing"] if phase != "crawling" else []),  # type: ignore[attr-defined]
                           *(["saving"] if phase == "saving" else []), "error"]  # fmt: skip
    assert job.error_message is not None and job.error_message == job.last_error
    assert len(job.error_message) <= MESSAGE_LIMIT
    for leaked in ("INSERT", "SELECT", "[SQL", "parameters", "Traceback", "\n"):
        assert leaked not in job.error_message
    assert counts() == (0, 0, 0)  # nothing written
    return job.error_message


def _raise(error: BaseException) -> Callable[..., Any]:
    def broken(*args: object, **kwargs: object) -> Any:
        raise error

    return broken


@pytest.mark.parametrize("database", ["pg_db", "sqlite_db"])
def test_a_chapter_parser_exception_ends_the_job_at_once(
    database: str, request: pytest.FixtureRequest, fixture_site: FixtureSite
) -> None:
    request.getfixturevalue(database)
    detail = "bad markup near http://reader:hunter2@example.invalid/x; " + "y" * 3000

    def sabotage() -> None:
        ADAPTER.parse_chapter = _raise(ValueError(detail + "\nINSERT INTO chapters ..."))  # type: ignore[method-assign]

    message = _assert_ended_at_once(_run_broken(fixture_site, 1002, sabotage), phase="parsing")
    assert message.startswith("internal error while trying to parse chapter ")
    assert "ValueError: bad markup near http://example.invalid/x" in message
    assert "hunter2" not in message and "reader:" not in message


def test_a_fiction_page_parser_exception_ends_the_job_at_once(
    pg_db: str, fixture_site: FixtureSite
) -> None:
    def sabotage() -> None:
        ADAPTER.parse_fiction = _raise(KeyError("data-url"))  # type: ignore[method-assign]

    message = _assert_ended_at_once(_run_broken(fixture_site, 1002, sabotage), phase="crawling")
    assert message.startswith(f"internal error while trying to read {fixture_site.base_url}/")
    assert "(royalroad adapter)" in message
    assert message.endswith("KeyError: 'data-url'")
    assert fixture_site.hits("/fiction/1002/fixture-fiction-1002/chapter/") == 0


@pytest.mark.parametrize("database", ["pg_db", "sqlite_db"])
def test_a_message_over_the_cap_is_cut(
    database: str, request: pytest.FixtureRequest, fixture_site: FixtureSite
) -> None:
    request.getfixturevalue(database)

    def sabotage() -> None:
        ADAPTER.parse_chapter = _raise(ParseError("chapter page lacks " + "z" * 5000))  # type: ignore[method-assign]

    message = _assert_ended_at_once(_run_broken(fixture_site, 1002, sabotage), phase="parsing")
    assert len(message) == MESSAGE_LIMIT and message.endswith("…")
    assert message.startswith("chapter page lacks zzz")


def _inflated_word_count() -> None:
    """The adapter bug the real page met: 2,845 pages, 275 words a page and 782,406 words
    joined into one number."""
    parse = ADAPTER.parse_fiction

    def wrong(html: str, url: str) -> Any:
        return replace(parse(html, url), word_count=WORDS)

    ADAPTER.parse_fiction = wrong  # type: ignore[method-assign]


@pytest.mark.parametrize("database", ["pg_db", "sqlite_db"])
def test_a_number_the_database_cannot_hold_ends_the_job_naming_the_field(
    database: str, request: pytest.FixtureRequest, fixture_site: FixtureSite
) -> None:
    request.getfixturevalue(database)
    job = _run_broken(fixture_site, 1002, _inflated_word_count)
    message = _assert_ended_at_once(job, phase="saving")
    assert message == f"could not store novel: word_count out of range ({WORDS})"


def test_a_value_postgresql_refuses_is_one_line_not_the_statement(
    pg_db: str, fixture_site: FixtureSite
) -> None:
    def sabotage() -> None:  # past the store's own check: the database's DataError itself
        _inflated_word_count()
        novel_store.check_values = lambda *args, **kwargs: None  # type: ignore[assignment]

    message = _assert_ended_at_once(_run_broken(fixture_site, 1002, sabotage), phase="saving")
    assert message == "could not store novel: the database refused it (integer out of range)"


def _listing_that_goes_on(next_url: Callable[[str, int], str]) -> Callable[[], None]:
    def sabotage() -> None:
        pages = iter(range(1000))

        def endless(html: str, url: str, fetch: Fetch, known: Any) -> ListingStep:
            return ListingStep(None, follow=(Fetch(next_url(url, next(pages)), "listing"),))

        ADAPTER.read_listing = endless  # type: ignore[method-assign]

    return sabotage


@pytest.mark.parametrize(
    ("next_url", "says"),
    [
        (
            lambda url, n: url.split("?")[0],
            "asks for {base}/fiction/1002/fixture-fiction-1002 again",
        ),
        (
            lambda url, n: f"{url.split('?')[0]}?page={n}",
            "has not ended its listing after 20 pages",
        ),
    ],
)
def test_a_listing_that_never_ends_is_stopped(
    pg_db: str, fixture_site: FixtureSite, next_url: Callable[[str, int], str], says: str
) -> None:
    job = _run_broken(fixture_site, 1002, _listing_that_goes_on(next_url))
    message = _assert_ended_at_once(job, phase="crawling")
    assert message.startswith("the royalroad adapter ")
    assert says.format(base=fixture_site.base_url) in message
    assert fixture_site.hits("/fiction/1002") <= 21  # the chain was cut, not run to the timeout
