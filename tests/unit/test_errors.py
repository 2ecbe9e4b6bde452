"""One classification of failures, and messages that are short and safe to show."""

from __future__ import annotations

import logging
import sqlite3
import sys

import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError

from errors import (
    MESSAGE_LIMIT,
    ParseError,
    PermanentFailure,
    RedactingFilter,
    RetryableFailure,
    StoreError,
    classify,
    is_outage,
    public_reason,
    redact,
    redact_logs,
    safe_message,
    short_error,
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
            "store novel: database unavailable (connection lost)",
        ),
        (
            RedisConnectionError("Connection refused"),
            RetryableFailure,
            "store novel: Redis unavailable (connection refused)",
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
        (
            "rediss://h:6380/0?ssl_cert_reqs=required&password=s3cret",
            "rediss://h:6380/0?ssl_cert_reqs=required&password=***",
        ),
        (
            "host=db user=novel password=s3cret dbname=novel",
            "host=db user=novel password=*** dbname=novel",
        ),
        # an OSError's errno and the local path it names: a file:/// link must not tell
        # what is on the worker's disk
        (
            "could not fetch file:///etc/shadow.bak: [Errno 2] No such file or directory:"
            " '/etc/shadow.bak'",
            "could not fetch file:///etc/shadow.bak: No such file or directory",
        ),
        ('[Errno 13] Permission denied: "/srv/novels/data"', "Permission denied"),
        # the service's own hints name paths: they stay
        (
            "not a Royal Road fiction URL; use /fiction/<id>[/<slug>] or a chapter URL",
            "not a Royal Road fiction URL; use /fiction/<id>[/<slug>] or a chapter URL",
        ),
        # the paths of URLs, and fractions, are no local paths
        (
            "site answered HTTP 404/410 for https://h/fiction/1/a-b",
            "site answered HTTP 404/410 for https://h/fiction/1/a-b",
        ),
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


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            RedisConnectionError("Error 111 connecting to 10.1.2.3:6379. Connection refused."),
            "connection refused",
        ),
        (
            AuthenticationError("invalid username-password pair or user is disabled."),
            "authentication failed",
        ),
        (RedisTimeoutError("Timeout connecting to server"), "timed out"),
        (
            OperationalError(
                SQL,
                PARAMS,
                _DriverError(
                    'connection to server at "10.1.2.3", port 5432 failed: FATAL:  password'
                    ' authentication failed for user "novel"'
                ),
            ),
            "authentication failed",
        ),
        (
            OperationalError(
                SQL,
                PARAMS,
                _DriverError(
                    'could not translate host name "db.internal" to address:'
                    " Name or service not known"
                ),
            ),
            "host not found",
        ),
        (
            RedisConnectionError(
                "Error 1 connecting to 10.1.2.3:6380. [SSL: CERTIFICATE_VERIFY_FAILED]"
            ),
            "TLS failed",
        ),
        (
            RedisConnectionError("Error 113 connecting to 10.1.2.3:6379. No route to host."),
            "unreachable",
        ),
    ],
)
def test_an_outage_is_told_by_its_reason_alone(error: Exception, reason: str) -> None:
    """What /health and a job row say of an outage: no host, port, user or errno."""
    assert public_reason(error) == reason
    assert short_error(error) == reason
    message = str(classify(error, doing="store novel"))
    assert message.endswith(f"unavailable ({reason})")
    assert not any(
        internal in message for internal in ("10.1.2.3", "db.internal", 'novel"', "Error 1")
    )


def test_redact_keeps_the_text_and_drops_only_credentials() -> None:
    text = "connect redis://:pw@h:1/0\n  then postgresql://u:pw@db/x, password=pw user=u"
    assert redact(text) == "connect redis://h:1/0\n  then postgresql://db/x, password=*** user=u"


def test_logs_lose_credentials_in_messages_arguments_and_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("test_errors.redaction")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        redact_logs(logger)
        redact_logs(logger)  # once is enough: a second call adds nothing
        assert len(handler.filters) == 1
        logger.warning("connecting to %s", "redis://:hunter2@127.0.0.1:6379/0")
        try:
            raise ValueError("bad URL postgresql+psycopg2://novel:hunter2@db/novel")
        except ValueError:
            logger.exception("start-up failed")
    finally:
        logger.removeHandler(handler)
    written = capsys.readouterr().err
    assert "connecting to redis://127.0.0.1:6379/0" in written
    assert "ValueError: bad URL postgresql+psycopg2://db/novel" in written
    assert "hunter2" not in written


def test_a_url_fragment_or_query_is_no_local_path() -> None:
    assert safe_message("refused file:///etc/passwd#/chapter/9: no") == (
        "refused file:///etc/passwd#/chapter/9: no"
    )
    assert safe_message("see https://h/a?x=/b/c&y=/d/e") == "see https://h/a?x=/b/c&y=/d/e"


def test_an_exception_names_no_local_path() -> None:
    error = OSError("cannot open /var/lib/novel-ingest/novels.db now")
    assert short_error(error) == "cannot open <local path> now"
    assert str(classify(ValueError("bad /srv/x/y.txt"), doing="parse")) == (
        "internal error while trying to parse: ValueError: bad <local path>"
    )


def test_the_redacting_filter_keeps_arguments_for_formatters_that_read_them() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s"',
        ("127.0.0.1", "GET", "/x?u=redis://:sekrit@h/0"), None,
    )  # fmt: skip
    assert RedactingFilter().filter(record)
    assert record.args == ("127.0.0.1", "GET", "/x?u=redis://h/0")
    assert "sekrit" not in record.getMessage()
