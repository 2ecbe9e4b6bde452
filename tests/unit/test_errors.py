"""One classification of failures, and messages that are short and safe to show."""

from __future__ import annotations

import sqlite3

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from errors import (
    MESSAGE_LIMIT,
    ParseError,
    PermanentFailure,
    RetryableFailure,
    StoreError,
    classify,
    is_outage,
    safe_message,
)

SQL = "INSERT INTO novels (title, description) VALUES (%(title)s, %(description)s)"
PARAMS = {"title": "t", "description": "several kB of the author's description"}


class _DriverError(Exception):
    """Stands in for psycopg2's exception: its text is the server's message, then DETAIL."""


def test_credentials_in_urls_are_dropped() -> None:
    text = "could not fetch https://reader:hunter2@example.invalid:8080/fiction/1 (reset)"
    assert safe_message(text) == "could not fetch https://example.invalid:8080/fiction/1 (reset)"
    assert safe_message("redis://:s3cret@127.0.0.1:6379/0 down") == "redis://127.0.0.1:6379/0 down"


def test_a_long_message_is_cut_to_the_cap_on_one_line() -> None:
    message = safe_message("first line\n" + "x" * 2000)
    assert len(message) == MESSAGE_LIMIT and message.endswith("…")
    assert "\n" not in message and message.startswith("first line x")
    assert safe_message("short") == "short"


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (
            DataError(SQL, PARAMS, _DriverError("integer out of range\n")),
            StoreError,
            "could not store novel: the database refused it (integer out of range)",
        ),
        (
            IntegrityError(
                SQL,
                PARAMS,
                _DriverError(
                    'null value in column "title" violates not-null constraint\n'
                    "DETAIL:  Failing row contains (1, several kB of the author's description)."
                ),
            ),
            StoreError,
            'could not store novel: the database refused it (null value in column "title"'
            " violates not-null constraint)",
        ),
        (
            StatementError("bind failed", SQL, PARAMS, ValueError("x")),
            StoreError,
            "could not store novel: StatementError",
        ),
        (
            OperationalError(SQL, PARAMS, _DriverError("server closed the connection\n")),
            RetryableFailure,
            "store novel: database unavailable (server closed the connection)",
        ),
        (
            RedisConnectionError("Connection refused"),
            RetryableFailure,
            "store novel: Redis unavailable (Connection refused)",
        ),
        (
            TypeError("unsupported operand"),
            PermanentFailure,
            "internal error while trying to store novel: TypeError: unsupported operand",
        ),
    ],
)
def test_failures_are_classified_once(error: Exception, kind: type, text: str) -> None:
    failure = classify(error, doing="store novel")
    assert type(failure) is kind
    assert str(failure) == text
    assert "INSERT" not in str(failure) and "several kB" not in str(failure)


def test_the_service_s_own_failures_pass_through() -> None:
    parse = ParseError("chapter page has no chapter text")
    assert classify(parse, doing="parse") is parse


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://u:p@ss@db.internal/novels down", "postgresql://db.internal/novels down"),
        ("redis://:s3cret@127.0.0.1:6379/0 down", "redis://127.0.0.1:6379/0 down"),
        (
            "see https://example.invalid/users/@someone",
            "see https://example.invalid/users/@someone",
        ),
        ("nul\x00 and a lone \ud800 surrogate", "nul and a lone ? surrogate"),
    ],
)
def test_what_a_message_never_shows(text: str, shown: str) -> None:
    assert safe_message(text) == shown


def test_a_refused_value_is_not_quoted_back() -> None:
    refused = DataError(SQL, PARAMS, _DriverError('invalid input syntax for type integer: "ab"'))
    assert str(classify(refused, doing="store novel")) == (
        "could not store novel: the database refused it (invalid input syntax for type integer)"
    )


class _PgError(Exception):
    def __init__(self, message: str, pgcode: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


def _sqlite_error(message: str) -> Exception:
    return sqlite3.OperationalError(message)


@pytest.mark.parametrize(
    ("orig", "outage"),
    [
        (_PgError("terminating connection due to administrator command", "57P01"), True),
        (_PgError("could not serialize access", "40001"), True),
        (_PgError("too many connections", "53300"), True),
        (_PgError("index row size exceeds maximum", "54000"), False),  # a refused statement
        (_DriverError("could not connect to server: Connection refused"), True),  # no code
        (_sqlite_error("database is locked"), True),
        (_sqlite_error("no such column: chapters.locked"), False),  # a schema not migrated
    ],
)
def test_an_outage_is_a_server_away_not_a_statement_refused(orig: Exception, outage: bool) -> None:
    error = OperationalError(SQL, PARAMS, orig)
    assert is_outage(error) is outage
    assert classify(error, doing="store novel").retryable is outage
