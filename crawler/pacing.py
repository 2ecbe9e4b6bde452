"""Politeness shared by every crawl on every host: each site's pace, kept in Redis.

Scrapy paces one crawl alone, so two workers on one site would double the rate it sees.
Here every request to a site asks Redis for the site's turn first (`SitePace.acquire`,
one Lua script, timed by Redis's own clock so hosts with skewed clocks agree). It may go
when the site's interval has passed since the last request anyone sent it, fewer than the
site's cap of requests are in flight (leases, each expiring on its own so a killed
work-horse cannot hold a site's slots), and the site is not paused (a 429 or 503 with
Retry-After pauses it for everyone). Otherwise the answer is how long to wait.

Keys, per host[:port] of the request URL (lower-cased), under `novel-ingest:pace:<host>`:
`:last` the last grant (µs, Redis time), `:leases` a sorted set of lease tokens scored by
expiry, `:paused` the end of a pause. Each key expires once it no longer matters. A lease
token starts with its holder's host and pid, so a worker whose horse was killed frees
that horse's leases at once (`release_held_by`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry as SyncRetry
from scrapy import Request, Spider, signals
from scrapy.http import Response
from twisted.internet.defer import Deferred

from crawler.sites.base import Politeness
from errors import RetryableFailure, short_error

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)

KEY_PREFIX = "novel-ingest:pace:"
REDIS_TIMEOUT = 1.0  # seconds: Redis away never holds a request longer than this
LEASE_MARGIN = 5.0  # seconds a lease outlives the download timeout before it expires
BUSY_POLL = 0.05  # seconds between asks while every slot of a site is in use elsewhere

# KEYS: last grant, leases, pause. ARGV: interval µs, cap, lease TTL µs, token.
# Returns {1, now µs, "granted"} or {0, µs to wait, why}.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('GET', KEYS[3]) or 0)
if paused > now then return {0, paused - now, 'paused'} end
local interval = tonumber(ARGV[1])
local due = tonumber(redis.call('GET', KEYS[1]) or 0) + interval
if due > now then return {0, due - now, 'interval'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return {0, 0, 'busy'} end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], string.format('%.0f', now + ttl), ARGV[4])
redis.call('PEXPIRE', KEYS[2], math.ceil(ttl / 1000))
if interval > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', now), 'PX', math.ceil(interval / 1000))
end
return {1, now, 'granted'}
"""

# KEYS: pause. ARGV: µs. Extends the pause to now + ARGV[1], never shortens it.
# Returns the µs the site stays paused.
PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ends = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or 0)
if current >= ends then return current - now end
redis.call('SET', KEYS[1], string.format('%.0f', ends), 'PX', math.ceil(tonumber(ARGV[1]) / 1000))
return ends - now
"""

WHY = {
    "paused": "paused at the site's request, Retry-After",
    "interval": "the site's interval between requests",
    "busy": "every request slot of the site in use",
}


@dataclass(frozen=True)
class Lease:
    """A request may go now; `release` it when its answer (or error) is back."""

    host: str
    token: str
    at: float  # when it was granted, seconds by Redis's clock


@dataclass(frozen=True)
class Wait:
    """Not yet: ask again in `seconds`. `why` is "paused", "interval" or "busy"."""

    seconds: float
    why: str


def site_key(url: str) -> str:
    """The host[:port] a URL's requests are paced under, lower-cased."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def _us(seconds: float) -> int:
    return max(0, round(seconds * 1_000_000))


class SitePace:
    """The pace of every site, in one Redis: who may send the next request, and when."""

    def __init__(self, client: Redis, now: SyncRedis | None = None) -> None:
        self.client = client
        # register_script only hashes the text; Redis loads it once, on the first NOSCRIPT
        self._acquire = client.register_script(ACQUIRE)
        self._pause = client.register_script(PAUSE)
        # The same, blocking: a turn that is free is had in one round trip, without a
        # coroutine per request (in a crawl, the asyncio-to-Twisted bridging of one costs
        # more than the round trip to Redis on the same network).
        self.now = now
        self._acquire_now = now.register_script(ACQUIRE) if now is not None else None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = REDIS_TIMEOUT) -> SitePace:
        # No retries: a script that ran before its answer was lost must not run twice,
        # and a Redis that is away fails the request within `timeout`.
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        now = SyncRedis.from_url(url, **{**options, "retry": SyncRetry(NoBackoff(), 0)})
        return cls(Redis.from_url(url, **options), now)

    async def acquire(
        self, host: str, *, interval: float, concurrency: int, lease_ttl: float
    ) -> Lease | Wait:
        """The host's turn now (a lease), or how long to wait before asking again."""
        keys, args = _acquiring(host, interval, concurrency, lease_ttl)
        return _turn(host, args[-1], await self._acquire(keys=keys, args=args))

    def acquire_now(
        self, host: str, *, interval: float, concurrency: int, lease_ttl: float
    ) -> Lease | Wait:
        """`acquire`, blocking for the round trip (a client made by `from_url`)."""
        assert self._acquire_now is not None
        keys, args = _acquiring(host, interval, concurrency, lease_ttl)
        return _turn(host, args[-1], self._acquire_now(keys=keys, args=args))

    async def release(self, lease: Lease) -> None:
        await self.client.zrem(_key(lease.host, "leases"), lease.token)

    def release_now(self, lease: Lease) -> None:
        assert self.now is not None
        self.now.zrem(_key(lease.host, "leases"), lease.token)

    async def pause(self, host: str, seconds: float) -> float:
        """Pause the host for everyone for `seconds` from now (an existing longer pause
        stays); the seconds it now stays paused."""
        left = await self._pause(keys=[_key(host, "paused")], args=[max(1, _us(seconds))])
        return int(left) / 1_000_000

    async def close(self) -> None:
        await self.client.aclose()  # type: ignore[attr-defined]  # types-redis 4.6 lacks it
        if self.now is not None:
            self.now.close()


def _acquiring(
    host: str, interval: float, concurrency: int, lease_ttl: float
) -> tuple[list[str], list[int | str]]:
    """The ACQUIRE script's keys and arguments; the last argument is the lease token."""
    token = f"{holder(os.getpid())}{secrets.token_hex(6)}"
    keys = [_key(host, "last"), _key(host, "leases"), _key(host, "paused")]
    return keys, [_us(interval), max(1, concurrency), _us(lease_ttl), token]


def _turn(host: str, token: int | str, answer: Any) -> Lease | Wait:
    granted, micros, why = answer
    if granted:
        return Lease(host, str(token), at=int(micros) / 1_000_000)
    why = why.decode() if isinstance(why, bytes) else str(why)
    return Wait(BUSY_POLL if why == "busy" else int(micros) / 1_000_000, why)


def _key(host: str, part: str) -> str:
    return f"{KEY_PREFIX}{host}:{part}"


HOST = socket.gethostname()


def holder(pid: int) -> str:
    """What every lease token of a process starts with: its host and pid."""
    return f"{HOST}/{pid}/"


def release_held_by(connection: SyncRedis, pid: int) -> int:
    """Drop the leases a dead process of this host held (a SIGKILLed work-horse): its
    sites' slots are free at once instead of when the leases expire. Returns how many."""
    mine = holder(pid).encode()
    released = 0
    for key in connection.scan_iter(match=f"{KEY_PREFIX}*:leases", count=1000):
        stale = [token for token in connection.zrange(key, 0, -1) if token.startswith(mine)]
        if stale:
            released += int(connection.zrem(key, *stale))
    return released


def paced(spider: Spider) -> bool:
    """Whether the shared pace applies to this spider's requests: a fiction crawl of a site
    with an interval. An interval of 0 (CRAWLER_DOWNLOAD_DELAY=0, a site delay of 0: a
    local mirror, a benchmark) turns pacing off: no round trip to Redis per request, the
    crawl's own cap on requests in flight (Scrapy's slot), a Retry-After waited by the
    crawl that got it."""
    politeness = getattr(spider, "politeness", None)
    return isinstance(politeness, Politeness) and politeness.download_delay > 0


class _Slots:
    """A semaphore that can also be taken without waiting (`take_now`), in order: never
    ahead of a request already waiting."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiting: deque[asyncio.Future[None]] = deque()

    def take_now(self) -> bool:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        if self.take_now():
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(handed)
        try:
            await handed  # a slot given back is handed to the first waiting
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.give()  # handed over just as it was cancelled: pass it on
            raise

    def give(self) -> None:
        while self.waiting:
            handed = self.waiting.popleft()
            if not handed.done():
                handed.set_result(None)
                return
        self.free += 1


@dataclass
class _Turns:
    """One crawl's requests to one host: at most the cap of them waiting for or holding a
    lease (so a lone crawl never asks Redis while its own requests fill the cap), and one
    at a time asking Redis."""

    slots: _Slots
    asking: asyncio.Lock


class SharedPaceMiddleware:
    """Every request of a fiction crawl waits for its site's turn, over all workers.

    The spider says the pace (`politeness`: interval and cap) and when the job must end
    (`deadline`, time.monotonic()). Closest to the downloader, so retries, redirects and
    robots.txt are paced too. A job that would wait past its deadline, or finds Redis
    away, fails the request with a RetryableFailure: the job is retried later.
    """

    def __init__(
        self,
        pace: SitePace | None,
        *,
        lease_ttl: float,
        closing: Callable[[], bool] = lambda: False,
    ) -> None:
        self.pace, self.lease_ttl, self.closing = pace, lease_ttl, closing
        self._turns: dict[str, _Turns] = {}
        self._held: dict[Request, tuple[_Turns, Lease]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPaceMiddleware:
        url = crawler.settings.get("PACE_REDIS_URL")
        ttl = crawler.settings.getfloat("DOWNLOAD_TIMEOUT", 180.0) + LEASE_MARGIN
        middleware = cls(
            SitePace.from_url(url) if url else None,
            lease_ttl=ttl,
            closing=lambda: _engine_closing(crawler),
        )
        crawler.signals.connect(middleware.spider_closed, signal=signals.spider_closed)
        return middleware

    def process_request(self, request: Request, spider: Spider) -> Deferred[None] | None:
        """None when the request may go now (a free turn: one blocking round trip to
        Redis), else a Deferred that fires when its turn has come (or fails)."""
        politeness = getattr(spider, "politeness", None)
        if self.pace is None or not paced(spider) or not isinstance(politeness, Politeness):
            return None  # not a paced crawl: Scrapy's own pace applies
        host = site_key(request.url)
        turns = self._turns_of(host, politeness.concurrent_requests)
        free = not self.closing() and not turns.asking.locked()  # else: the slow path says
        if self.pace.now is not None and free and turns.slots.take_now():
            try:
                turn = self._ask_now(host, politeness)
            except BaseException:
                turns.slots.give()
                raise
            if isinstance(turn, Lease):
                self._held[request] = (turns, turn)
                return None
            turns.slots.give()  # not yet: wait for it as every other request does
        # the crawl runs on the asyncio reactor (crawler.settings.REACTOR)
        waiting = asyncio.ensure_future(self._wait_turn(request, host, turns, politeness, spider))
        return Deferred.fromFuture(waiting)

    async def _wait_turn(
        self, request: Request, host: str, turns: _Turns, politeness: Politeness, spider: Spider
    ) -> None:
        await turns.slots.take()
        try:
            lease = await self._lease(request, host, turns, politeness, spider)
        except BaseException:
            turns.slots.give()
            raise
        self._held[request] = (turns, lease)

    def process_response(self, request: Request, response: Response, spider: Spider) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Spider) -> None:
        self._release(request)

    async def spider_closed(self) -> None:
        for request in list(self._held):  # none normally: the engine waits for them
            self._release(request)
        if self.pace is not None:
            await self.pace.close()

    def _turns_of(self, host: str, cap: int) -> _Turns:
        turns = self._turns.get(host)
        if turns is None:
            turns = self._turns[host] = _Turns(_Slots(max(1, cap)), asyncio.Lock())
        return turns

    async def _lease(
        self, request: Request, host: str, turns: _Turns, politeness: Politeness, spider: Spider
    ) -> Lease:
        assert self.pace is not None
        deadline: float | None = getattr(spider, "deadline", None)
        async with turns.asking:
            while True:
                if self.closing():  # the crawl ends: a request still waiting is not sent
                    raise RetryableFailure(f"not fetched {request.url}: the crawl was ending")
                turn = await self._ask(host, politeness)
                if isinstance(turn, Lease):
                    return turn
                if deadline is not None and time.monotonic() + turn.seconds > deadline:
                    raise RetryableFailure(
                        f"the next turn to fetch from {host} is {turn.seconds:.1f} s away"
                        f" ({WHY[turn.why]}), past this job's time limit",
                        retry_after=turn.seconds,
                    )
                await asyncio.sleep(turn.seconds)

    def _ask_now(self, host: str, politeness: Politeness) -> Lease | Wait:
        assert self.pace is not None
        try:
            return self.pace.acquire_now(
                host,
                interval=politeness.download_delay,
                concurrency=politeness.concurrent_requests,
                lease_ttl=self.lease_ttl,
            )
        except (RedisError, OSError) as error:
            raise RetryableFailure(f"Redis unavailable for pacing: {short_error(error)}") from None

    async def _ask(self, host: str, politeness: Politeness) -> Lease | Wait:
        assert self.pace is not None
        try:
            return await self.pace.acquire(
                host,
                interval=politeness.download_delay,
                concurrency=politeness.concurrent_requests,
                lease_ttl=self.lease_ttl,
            )
        except (RedisError, OSError) as error:
            raise RetryableFailure(f"Redis unavailable for pacing: {short_error(error)}") from None

    def _release(self, request: Request) -> None:
        held = self._held.pop(request, None)
        if held is None:  # not paced, or it never got a lease
            return
        turns, lease = held
        assert self.pace is not None
        try:
            if self.pace.now is not None:
                self.pace.release_now(lease)
            else:  # a pace without a blocking client (tests): the lease expires
                log.debug("lease on %s left to expire", lease.host)
        except (RedisError, OSError) as error:
            log.debug("lease on %s not released (it expires): %s", lease.host, error)
        finally:
            turns.slots.give()


def _engine_closing(crawler: Any) -> bool:
    """True once Scrapy's engine is closing the spider (CloseSpider, a timeout's stop).

    The engine then waits for every request in progress; one still waiting for its turn
    would otherwise be sent for nothing. Reads the engine's slot (Scrapy 2.13, pinned;
    tests/unit/test_pacing.py checks the names).
    """
    slot = getattr(getattr(crawler, "engine", None), "_slot", None)
    return getattr(slot, "closing", None) is not None
