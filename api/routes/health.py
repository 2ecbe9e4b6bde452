"""GET /health: are the database and Redis reachable, and how fast (readiness); GET
/health/live: is the process serving at all (liveness).

Anyone may ask, so the answer names no host, port, path or user: a dependency is ok, or
not with a generic reason ("connection refused", "timed out", "authentication failed").
What went wrong in detail goes to the API's log, at warning level, without credentials.

/health/live touches neither the database nor Redis and needs no key, even with
API_READ_AUTH=true: a container's liveness probe sends none, and an answer that says only
"ok" reveals nothing. An outage of a dependency must not get a healthy API process
restarted; /health (readiness) is what takes it out of rotation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy import text

import ingestion_queue
from api.deps import SettingsDep
from api.schemas import Health, HealthCheck
from db import get_engine
from errors import public_reason, redact

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


def _timed(name: str, check: Callable[[], object]) -> HealthCheck:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:
        log.warning("health: %s unavailable: %s", name, _detail(error))
        return HealthCheck(ok=False, latency_ms=_since(started), error=public_reason(error))
    return HealthCheck(ok=True, latency_ms=_since(started))


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _detail(error: BaseException) -> str:
    """The error's own text on one line, for the operator: credentials taken out."""
    inner = getattr(error, "orig", None) or error
    return redact(" ".join(f"{type(inner).__name__}: {inner}".split()))


def _ping_database() -> None:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(response: Response, settings: SettingsDep) -> Health:
    database = _timed("database", _ping_database)
    redis = _timed("Redis", lambda: ingestion_queue.redis_connection(settings).ping())
    healthy = database.ok and redis.ok
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if healthy else "degraded", database=database, redis=redis)


class Liveness(BaseModel):
    status: Literal["ok"]


LIVE = Liveness(status="ok")


@router.get("/health/live", response_model=Liveness)
async def health_live() -> Liveness:
    """Liveness: the process answers, at once, from its event loop; neither the database
    nor Redis is asked, and no key is needed (a container's liveness probe sends none).
    Readiness, with the dependencies, is GET /health."""
    return LIVE
