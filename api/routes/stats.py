"""GET /stats: job rows by status and site, queue depths, workers, the oldest QUEUED age."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

import stats
from api import openapi
from api.auth import READ
from api.deps import SessionDep, SettingsDep
from api.schemas import Stats

router = APIRouter(prefix="/stats", tags=["stats"])


@router.get(
    "",
    response_model=Stats,
    dependencies=[READ],
    responses=openapi.errors(*openapi.READ_ERRORS),
)
def get_stats(session: SessionDep, settings: SettingsDep) -> Stats:
    """The figures of `cli.py stats`. With Redis down the database's figures still answer,
    and `redis_error` says why `queues` and `workers` are null."""
    return Stats.model_validate(asdict(stats.collect(session, settings=settings)))
