"""The shared pace of a site, against the real Redis: interval, cap, leases, pauses, and the
middleware that makes every request of a fiction crawl wait for its site's turn."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from redis import Redis
from scrapy import Request, Spider
from scrapy.core.engine import ExecutionEngine, _Slot
from scrapy.http import HtmlResponse
from twisted.internet.defer import Deferred

from crawler.pacing import (
    BUSY_POLL,
    KEY_PREFIX,
    Lease,
    SharedPaceMiddleware,
    SitePace,
    Wait,
    holder,
    release_held_by,
    site_key,
)
from crawler.sites.base import Politeness
from errors import RetryableFailure
from tests.utils.services import REDIS_URL, free_port

HOST = "fiction.example:8080"
T = TypeVar("T")


def _run(scenario: Callable[[SitePace], Awaitable[T]], url: str = REDIS_URL) -> T:
    """Run `scenario` with a SitePace of its own, on a fresh event loop."""

    async def main() -> T:
        pace = SitePace.from_url(url)
        try:
            return await scenario(pace)
        finally:
            await pace.close()

    return asyncio.run(main())


async def _lease(pace: SitePace, host: str = HOST, **pace_of: Any) -> Lease | Wait:
    options = {"interval": 0.0, "concurrency": 4, "lease_ttl": 5.0, **pace_of}
    return await pace.acquire(host, **options)


async def _granted(pace: SitePace, **pace_of: Any) -> Lease:
    """Ask as a caller does (sleep as told, ask again) until the turn comes."""
    while True:
        turn = await _lease(pace, **pace_of)
        if isinstance(turn, Lease):
            return turn
        await asyncio.sleep(turn.seconds)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("HTTP://WWW.Example.COM:8080/fiction/1?x=1", "www.example.com:8080"),
        ("https://www.royalroad.com/fiction/1", "www.royalroad.com"),
        ("http://user:secret@127.0.0.1:8765/x", "127.0.0.1:8765"),
        ("http://[::1]:81/x", "[::1]:81"),
    ],
)
def test_a_site_is_paced_by_its_host_and_port(url: str, key: str) -> None:
    assert site_key(url) == key


def test_grants_of_two_workers_are_an_interval_apart_by_redis_time(redis_conn: Redis) -> None:
    async def two_workers(pace: SitePace) -> list[float]:
        other = SitePace.from_url(REDIS_URL)  # a second client: another worker
        try:
            leases = await asyncio.gather(
                *(_granted(p, interval=0.1, concurrency=16) for p in [pace, other] * 4)
            )
        finally:
            await other.close()
        return sorted(lease.at for lease in leases)

    times = _run(two_workers)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) == 8
    assert min(gaps) >= 0.1 - 1e-6, gaps  # Redis's own clock: exact to the microsecond


def test_an_interval_wait_says_how_long(redis_conn: Redis) -> None:
    async def twice(pace: SitePace) -> tuple[Lease | Wait, Lease | Wait]:
        return await _lease(pace, interval=1.0), await _lease(pace, interval=1.0)

    first, second = _run(twice)
    assert isinstance(first, Lease)
    assert isinstance(second, Wait) and second.why == "interval"
    assert 0.9 < second.seconds <= 1.0


def test_at_most_the_cap_of_requests_are_in_flight(redis_conn: Redis) -> None:
    async def scenario(pace: SitePace) -> list[Lease | Wait]:
        turns = [await _lease(pace, concurrency=2) for _ in range(3)]
        first = turns[0]
        assert isinstance(first, Lease)
        await pace.release(first)
        return [*turns, await _lease(pace, concurrency=2)]

    first, second, third, after_release = _run(scenario)
    assert isinstance(first, Lease) and isinstance(second, Lease)
    assert third == Wait(BUSY_POLL, "busy")
    assert isinstance(after_release, Lease)
    assert redis_conn.zcard(f"{KEY_PREFIX}{HOST}:leases") == 2


def test_a_lease_never_released_expires(redis_conn: Redis) -> None:
    """A horse SIGKILLed mid-download cannot hold the site's slots for ever."""

    async def scenario(pace: SitePace) -> list[Lease | Wait]:
        held = await _lease(pace, concurrency=1, lease_ttl=0.2)
        blocked = await _lease(pace, concurrency=1, lease_ttl=0.2)
        await asyncio.sleep(0.25)
        return [held, blocked, await _lease(pace, concurrency=1, lease_ttl=0.2)]

    held, blocked, later = _run(scenario)
    assert isinstance(held, Lease) and isinstance(later, Lease)
    assert isinstance(blocked, Wait) and blocked.why == "busy"


def test_the_leases_of_a_dead_horse_are_freed_by_its_worker(redis_conn: Redis) -> None:
    """The worker frees a killed horse's slots at once (the fleet does not wait out the
    leases); leases of other processes, here or on another host, stay."""
    other_host = f"{KEY_PREFIX}{HOST}:leases"

    async def scenario(pace: SitePace) -> list[Lease | Wait]:
        return [await _lease(pace, concurrency=2, lease_ttl=60.0) for _ in range(3)]

    first, second, blocked = _run(scenario)  # both slots held by this process
    assert isinstance(first, Lease) and isinstance(second, Lease)
    assert isinstance(blocked, Wait) and blocked.why == "busy"
    redis_conn.zadd(other_host, {f"elsewhere/{os.getpid()}/x": time.time() * 1e6 + 6e7})
    assert release_held_by(redis_conn, os.getpid()) == 2
    assert release_held_by(redis_conn, os.getpid()) == 0
    assert redis_conn.zrange(other_host, 0, -1) == [f"elsewhere/{os.getpid()}/x".encode()]
    assert first.token.startswith(holder(os.getpid()))


def test_a_pause_is_extended_never_shortened(redis_conn: Redis) -> None:
    async def scenario(pace: SitePace) -> list[float]:
        return [await pace.pause(HOST, s) for s in (2.0, 0.5, 3.0)]

    first, shorter, longer = _run(scenario)
    assert 1.9 < first <= 2.0
    assert 1.9 < shorter <= 2.0  # the 2 s pause stands
    assert 2.9 < longer <= 3.0
    assert 2900 < redis_conn.pttl(f"{KEY_PREFIX}{HOST}:paused") <= 3000


def test_a_paused_site_says_how_long_and_other_sites_go_on(redis_conn: Redis) -> None:
    async def scenario(pace: SitePace) -> list[Lease | Wait]:
        await pace.pause(HOST, 1.5)
        return [await _lease(pace), await _lease(pace, host="other.example")]

    paused, other = _run(scenario)
    assert isinstance(paused, Wait) and paused.why == "paused"
    assert 1.4 < paused.seconds <= 1.5
    assert isinstance(other, Lease)


def test_every_key_expires_once_it_no_longer_matters(redis_conn: Redis) -> None:
    async def scenario(pace: SitePace) -> None:
        await _lease(pace, interval=0.5, lease_ttl=2.0)
        await pace.pause(HOST, 1.0)

    _run(scenario)
    assert 0 < redis_conn.pttl(f"{KEY_PREFIX}{HOST}:last") <= 500
    assert 0 < redis_conn.pttl(f"{KEY_PREFIX}{HOST}:leases") <= 2000
    assert 0 < redis_conn.pttl(f"{KEY_PREFIX}{HOST}:paused") <= 1000


def test_an_interval_of_zero_writes_no_last_grant(redis_conn: Redis) -> None:
    assert isinstance(_run(lambda pace: _lease(pace)), Lease)
    assert not redis_conn.exists(f"{KEY_PREFIX}{HOST}:last")


# --- the middleware ------------------------------------------------------------------


class _CountingPace(SitePace):
    asked = 0

    async def acquire(self, host: str, **pace_of: Any) -> Lease | Wait:
        self.asked += 1
        return await super().acquire(host, **pace_of)

    def acquire_now(self, host: str, **pace_of: Any) -> Lease | Wait:
        self.asked += 1
        return super().acquire_now(host, **pace_of)


async def _done(asked: Deferred[None] | None) -> None:
    """What the middleware's process_request gave: None (go now) or a Deferred to wait."""
    if asked is not None:
        await asked.asFuture(asyncio.get_running_loop())


def _spider(*, interval: float = 1e-6, cap: int = 2, deadline: float | None = None) -> Spider:
    spider = Spider(name="fiction")
    spider.politeness = Politeness(download_delay=interval, concurrent_requests=cap)
    spider.deadline = deadline
    return spider


def _request(n: int = 0) -> Request:
    return Request(f"http://{HOST}/fiction/1/chapter/{n}")


def _answer(request: Request) -> HtmlResponse:
    return HtmlResponse(request.url, body=b"<html></html>", request=request)


def test_a_lone_crawl_never_polls_for_a_lease(redis_conn: Redis) -> None:
    """Requests beyond the cap wait locally for the crawl's own, not in Redis."""
    in_flight: list[int] = []

    async def crawl() -> int:
        made = SitePace.from_url(REDIS_URL)
        pace = _CountingPace(made.client, made.now)
        middleware = SharedPaceMiddleware(pace, lease_ttl=5.0)
        spider, held = _spider(cap=2), 0

        async def fetch(n: int) -> None:
            nonlocal held
            request = _request(n)
            await _done(middleware.process_request(request, spider))
            held += 1
            in_flight.append(held)
            await asyncio.sleep(0.02)  # the download
            held -= 1
            middleware.process_response(request, _answer(request), spider)

        await asyncio.gather(*(fetch(n) for n in range(6)))
        await middleware.spider_closed()
        return pace.asked

    assert asyncio.run(crawl()) == 6  # one ask per request, no "busy" answers
    assert max(in_flight) == 2
    assert redis_conn.zcard(f"{KEY_PREFIX}{HOST}:leases") == 0  # every lease released


def test_a_wait_past_the_deadline_fails_the_request_to_be_retried_later(
    redis_conn: Redis,
) -> None:
    async def crawl() -> tuple[RetryableFailure, float]:
        middleware = SharedPaceMiddleware(SitePace.from_url(REDIS_URL), lease_ttl=5.0)
        assert middleware.pace is not None
        await middleware.pace.pause(HOST, 30)
        spider = _spider(cap=1, deadline=time.monotonic() + 5)
        started = time.monotonic()
        with pytest.raises(RetryableFailure) as failed:
            await _done(middleware.process_request(_request(), spider))
        took = time.monotonic() - started
        # its local slot was given back: the cap of 1 is free for the next request
        assert middleware._turns[HOST].slots.free == 1
        await middleware.spider_closed()
        return failed.value, took

    failure, took = asyncio.run(crawl())
    assert took < 0.5  # not waited at all
    assert failure.retry_after is not None and 29 < failure.retry_after <= 30
    assert "past this job's time limit" in str(failure) and "Retry-After" in str(failure)


def test_a_wait_within_the_deadline_is_waited_by_redis_time(redis_conn: Redis) -> None:
    async def crawl() -> float:
        middleware = SharedPaceMiddleware(SitePace.from_url(REDIS_URL), lease_ttl=5.0)
        assert middleware.pace is not None
        await middleware.pace.pause(HOST, 0.3)
        started = time.monotonic()
        request = _request()
        await _done(middleware.process_request(request, _spider(deadline=time.monotonic() + 5)))
        took = time.monotonic() - started
        middleware.process_exception(request, OSError("reset"), _spider())
        await middleware.spider_closed()
        return took

    assert asyncio.run(crawl()) >= 0.29
    assert redis_conn.zcard(f"{KEY_PREFIX}{HOST}:leases") == 0  # released on the exception


def test_redis_away_fails_the_request_fast_and_retryable() -> None:
    async def crawl() -> RetryableFailure:
        pace = SitePace.from_url(f"redis://127.0.0.1:{free_port()}/0")
        middleware = SharedPaceMiddleware(pace, lease_ttl=5.0)
        with pytest.raises(RetryableFailure) as failed:
            await _done(middleware.process_request(_request(), _spider()))
        await middleware.spider_closed()
        return failed.value

    started = time.monotonic()
    failure = asyncio.run(crawl())
    assert time.monotonic() - started < 1.5  # within the socket timeout, no retries
    assert str(failure).startswith("Redis unavailable for pacing: ")
    assert "Traceback" not in str(failure) and len(str(failure)) < 200


def test_a_site_without_an_interval_is_not_paced() -> None:
    """CRAWLER_DOWNLOAD_DELAY=0 (a local mirror, a benchmark): no Redis round trip."""
    pace = SitePace.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nobody there
    middleware = SharedPaceMiddleware(pace, lease_ttl=5.0)
    request = _request()
    assert middleware.process_request(request, _spider(interval=0.0)) is None
    assert middleware.process_response(request, _answer(request), _spider()).url == request.url


def test_a_spider_without_a_pace_is_not_paced() -> None:
    async def crawl() -> None:
        pace = SitePace.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nobody there
        middleware = SharedPaceMiddleware(pace, lease_ttl=5.0)
        request = _request()
        assert middleware.process_request(request, Spider(name="other")) is None
        # answered without a lease (another middleware's answer): nothing to release
        middleware.process_response(request, _answer(request), Spider(name="other"))
        await middleware.spider_closed()

    asyncio.run(crawl())


def test_a_request_still_waiting_when_the_crawl_ends_is_not_sent(redis_conn: Redis) -> None:
    async def crawl() -> None:
        middleware = SharedPaceMiddleware(
            SitePace.from_url(REDIS_URL), lease_ttl=5.0, closing=lambda: True
        )
        with pytest.raises(RetryableFailure, match="the crawl was ending"):
            await _done(middleware.process_request(_request(), _spider()))
        await middleware.spider_closed()

    asyncio.run(crawl())
    assert redis_conn.zcard(f"{KEY_PREFIX}{HOST}:leases") == 0


def test_scrapy_still_has_the_closing_slot_we_read() -> None:
    # crawler.pacing._engine_closing reads these private names; an upgrade fails here first.
    assert "self._slot.closing" in inspect.getsource(ExecutionEngine.close_spider)
    assert "self.closing" in inspect.getsource(_Slot.__init__)
