"""HTTP load from a process of its own: N keep-alive clients, each one request at a time.

`python -m bench.load --url http://127.0.0.1:8000/health/live --clients 16 --seconds 5`
prints one JSON object: requests answered in the measured window, its length, the
answers by status and latency percentiles. Each client is a raw asyncio stream on one
kept-alive HTTP/1.1 connection (no HTTP library: the load generator shares the machine's
cores with the server, so it must cost as little per request as it can). A warm-up
(--warmup seconds) runs first and is not counted.

POST sends `{"url": "<--post-url-prefix><n>"}` with n counting up from --first-id: every
request a URL of its own (the answer reports `next_id`, the first id it did not use).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Tally:
    """What the clients saw while the window was open."""

    window_opens: float
    window_closes: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str
    method: str
    prefix: str  # POST: the URL sent is prefix + id

    def request(self, ids: itertools.count[int]) -> bytes:
        head = f"{self.method} {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if self.method == "GET":
            return f"{head}\r\n".encode()
        body = json.dumps({"url": f"{self.prefix}{next(ids)}"}).encode()
        return (
            f"{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if "content-length" not in headers:
        raise ValueError("a response without Content-Length (chunked is not read here)")
    await reader.readexactly(int(headers["content-length"]))
    return status, headers.get("connection", "").lower() != "close"


async def _client(target: Target, ids: itertools.count[int], tally: Tally) -> None:
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (started := time.perf_counter()) < tally.window_closes:
        try:
            if connection is None:
                connection = await asyncio.open_connection(target.host, target.port)
            reader, writer = connection
            writer.write(target.request(ids))
            status, keep = await _answer(reader)
        except (OSError, ValueError, asyncio.IncompleteReadError) as error:
            tally.errors[type(error).__name__] += 1
            connection = None
            await asyncio.sleep(0.01)  # a refused connection is not retried in a hot loop
            continue
        if started >= tally.window_opens:
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[status] += 1
        if not keep:
            writer.close()
            connection = None
    if connection is not None:
        connection[1].close()


def _percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def load(
    target: Target, *, clients: int, seconds: float, warmup: float, first_id: int
) -> dict[str, Any]:
    now = time.perf_counter()
    tally = Tally(window_opens=now + warmup, window_closes=now + warmup + seconds)
    ids = itertools.count(first_id)
    await asyncio.gather(*(_client(target, ids, tally) for _ in range(clients)))
    ms = [s * 1000 for s in tally.latencies]
    return {
        "clients": clients,
        "requests": len(ms),
        "seconds": seconds,
        "per_second": len(ms) / seconds,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors": dict(tally.errors),
        "p50_ms": _percentile(ms, 50),
        "p90_ms": _percentile(ms, 90),
        "p99_ms": _percentile(ms, 99),
        "max_ms": max(ms, default=float("nan")),
        "next_id": next(ids),
    }


def _target(url: str, prefix: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise SystemExit(f"--url must be http://host:port/path, not {url}")
    return Target(parts.hostname, parts.port, parts.path, "POST" if prefix else "GET", prefix)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--url", required=True, help="http://host:port/path")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0, help="the measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before it, uncounted")
    parser.add_argument(
        "--post-url-prefix", default="", help="POST {'url': PREFIX<n>} instead of a GET"
    )
    parser.add_argument("--first-id", type=int, default=1, help="the first n of a POST")
    args = parser.parse_args()
    result = asyncio.run(
        load(
            _target(args.url, args.post_url_prefix),
            clients=args.clients,
            seconds=args.seconds,
            warmup=args.warmup,
            first_id=args.first_id,
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
