"""One classification of failures, and messages that are short and safe to show."""

from __future__ import annotations

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
