"""GET /health: are the database and Redis reachable, and how fast."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, Response, status
from sqlalchemy import text

import ingestion_queue
from api.deps import SettingsDep
from api.schemas import Health, HealthCheck
from db import get_engine
from errors import short_error

router = APIRouter(tags=["health"])


def _timed(check: Callable[[], object]) -> HealthCheck:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:
        return HealthCheck(
            ok=False, latency_ms=None, error=f"{type(error).__name__}: {short_error(error)}"
        )
    return HealthCheck(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


def _ping_database() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(response: Response, settings: SettingsDep) -> Health:
    database = _timed(_ping_database)
    redis = _timed(lambda: ingestion_queue.redis_connection(settings).ping())
    healthy = database.ok and redis.ok
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if healthy else "degraded", database=database, redis=redis)
