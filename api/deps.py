"""Typed dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query
from sqlalchemy.orm import Session

from config import Settings, get_settings
from db import get_session_factory


def get_db() -> Iterator[Session]:
    session = get_session_factory()()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
# Bounded so that no number a client sends can overflow the database's integers (a 500).
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="items to skip")]
RowId = Annotated[int, Path(ge=0, le=2**31 - 1)]
