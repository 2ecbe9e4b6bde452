"""The per-key rate limit on POST /ingest (API_INGEST_RATE, e.g. "60/minute").

A moving window kept in Redis (REDIS_URL), so every API process counts together. A
caller is its key's digest, or its address when no keys are configured. Over the limit:
429 with Retry-After (whole seconds). Redis away: the request is let through with a
warning, as POST /ingest itself accepts jobs while Redis is away (the reconciler queues
them later); a 503 would refuse exactly the submissions the service can still take.
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache

from fastapi import Depends, HTTPException, status
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from api.auth import Caller, WriteAccess
from api.deps import SettingsDep

log = logging.getLogger(__name__)

KEY_PREFIX = "novel-ingest:rate"  # Redis keys: novel-ingest:rate:LIMITER/ingest/<caller>/...


def parse_rate(rate: str) -> RateLimitItem | None:
    """`"60/minute"` -> the limit; empty -> None. Raises ValueError for another text."""
    if not rate.strip():
        return None
    return parse(rate)


@lru_cache(maxsize=8)
def _limiter(redis_url: str) -> MovingWindowRateLimiter:
    storage = RedisStorage(
        redis_url,
        key_prefix=KEY_PREFIX,
        wrap_exceptions=True,
        socket_connect_timeout=1,
        socket_timeout=2,
    )
    return MovingWindowRateLimiter(storage)


def retry_after(limiter: MovingWindowRateLimiter, item: RateLimitItem, caller: str) -> int:
    reset = limiter.get_window_stats(item, "ingest", caller).reset_time
    return max(1, math.ceil(reset - time.time()))


def check(caller: str, *, rate: str, redis_url: str) -> None:
    """Count one submission by `caller`; raise a 429 HTTPException when over the rate."""
    item = parse_rate(rate)
    if item is None:
        return
    limiter = _limiter(redis_url)
    try:
        if limiter.hit(item, "ingest", caller):
            return
        wait = retry_after(limiter, item, caller)
    except StorageError as error:
        log.warning(
            "rate limit not applied, Redis unavailable: %s", type(error.storage_error).__name__
        )
        return
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"too many submissions: at most {item} per caller; retry in {wait} s",
        headers={"Retry-After": str(wait)},
    )


def ingest_quota(caller: WriteAccess, settings: SettingsDep) -> Caller:
    """POST /ingest's and POST /novels/{id}/refresh's dependency: the write checks, then
    the caller's rate (one budget for both: each is a crawl of a site)."""
    check(caller.identity, rate=settings.api_ingest_rate, redis_url=settings.redis_url)
    return caller


QUOTA = Depends(ingest_quota)
