"""GET /metrics: the service's figures in Prometheus' text format (see metrics.py).

A read like the others: with API_KEYS and API_READ_AUTH=true, the scraper sends a key
(Prometheus: `authorization: {credentials: <key>}` in its scrape config, a Bearer key).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import metrics
from api import openapi
from api.auth import READ
from api.deps import SettingsDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    dependencies=[READ],
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        **openapi.errors(401, 403),
    },
)
def scrape(settings: SettingsDep) -> Response:
    """Jobs by status and the oldest QUEUED job's age (database); job and phase durations,
    pages by site and HTTP status, retries and finished jobs (recorded by the workers in
    Redis); queue depths, registries and workers (RQ). A source that is down shows as
    `novel_ingest_redis_up 0` or `novel_ingest_database_up 0`, the rest still served."""
    body = generate_latest(metrics.registry(settings))
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
