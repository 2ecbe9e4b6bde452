"""What a work-horse pays to have Scrapy: a fresh import vs a fork of a preloaded parent."""

from __future__ import annotations

import subprocess
import sys

from tests.utils.services import ROOT

FRESH = (
    "import time; t = time.perf_counter(); "
    "import scrapy.crawler, scrapy.core.engine, crawler.crawl; "
    "print(time.perf_counter() - t)"
)
FORKED = (
    "import os, time, worker; r, w = os.pipe(); t = time.perf_counter(); pid = os.fork()\n"
    "if pid == 0:\n"
    "    import scrapy.crawler, scrapy.core.engine, crawler.crawl\n"
    "    os.write(w, str(time.perf_counter() - t).encode()); os._exit(0)\n"
    "os.waitpid(pid, 0); print(os.read(r, 64).decode())"
)


def _seconds(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def run(*, quick: bool = False) -> dict[str, object]:
    samples = 2 if quick else 5
    fresh = min(_seconds(FRESH) for _ in range(samples))
    forked = min(_seconds(FORKED) for _ in range(samples))
    print(
        f"horse start-up: Scrapy import in a fresh process {fresh * 1000:.0f} ms; fork of the"
        f" preloaded worker {forked * 1000:.1f} ms; ratio {fresh / forked:.0f}x"
    )
    return {"fresh_import_ms": fresh * 1000, "preloaded_fork_ms": forked * 1000, "checks": []}
