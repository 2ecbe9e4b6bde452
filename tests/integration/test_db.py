"""Connections pooled before a fork are never used by the forked child."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from db import get_engine

pytestmark = pytest.mark.usefixtures("pg_db")


def _backend_pid() -> int:
    with get_engine().connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_forked_child_opens_its_own_connection() -> None:
    parent = _backend_pid()
    assert _backend_pid() == parent  # pooled: the same server process twice
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the work-horse's situation
        try:
            os.write(write, str(_backend_pid()).encode())
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    child_backend = int(os.read(read, 32))
    assert child_backend != parent
    assert _backend_pid() == parent  # and the parent's connection still works
