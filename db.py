"""Engine, session factory and session scope.

The worker forks a work-horse per job: pooled connections inherited from the parent must
never be used in the child, so the pool is dropped in every fork child (SQLAlchemy's
recommended `dispose(close=False)`), leaving the parent's connections untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Row, Select, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from config import get_settings
from errors import is_outage

# A liveness query before every checkout suits the long-lived API process. A work-horse
# connects afresh for each job and its writes already ride out outages (a dead connection
# fails the write, the pool is invalidated, the write is retried), so workers turn it off
# and save a round trip per transaction.
PRE_PING = True


CONNECT_TIMEOUT = 5  # seconds to reach PostgreSQL (a host that drops packets: /health waits)


def parse_url(url: str) -> URL:
    """DATABASE_URL parsed. One that does not parse is refused with a line naming the
    setting, never quoting its value (which holds the password)."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError("DATABASE_URL is not a valid SQLAlchemy URL") from None


def safe_url(url: str) -> str:
    """A database URL fit for a log or a terminal: its password shown as ***."""
    return parse_url(url).render_as_string(hide_password=True)


def build_engine(url: str) -> Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    connect_args: dict[str, object] = {}
    if parsed.get_driver_name() == "psycopg2" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    return create_engine(
        parsed,
        pool_pre_ping=PRE_PING,
        pool_size=5,
        max_overflow=5,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the API read while a worker writes; busy_timeout waits instead of failing.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@lru_cache
def get_engine() -> Engine:
    engine = build_engine(get_settings().database_url)
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


@lru_cache
def get_session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = get_session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def keyset_batches(query: Select[Any], key: Any, batch: int) -> Iterator[list[Row[Any]]]:
    """The rows of `query`, `batch` at a time, by keyset pagination on `key` (an increasing
    integer column, selected first); each batch is read in a session of its own, so rows
    may change meanwhile."""
    last = 0
    while True:
        with session_scope() as session:
            rows = list(session.execute(query.where(key > last).order_by(key).limit(batch)))
        if not rows:
            return
        yield rows
        last = rows[-1][0]


# Database outages (a restart, a failover) are ridden out by a worker's writes: each write
# is one transaction, retried with backoff for up to a minute, then the error propagates.
# A statement the database refuses (a missing column, a value out of range) is no outage.
OUTAGE_ERRORS = (OperationalError, InterfaceError, DisconnectionError)
riding_outages = retry(
    retry=retry_if_exception(is_outage),
    wait=wait_exponential(multiplier=0.2, max=5),
    stop=stop_after_delay(60),
    reraise=True,
)
