"""Memory against size: the work-horse's peak RSS for 10, 2,000 and 10,000 chapters.

Each fiction (fixture site ids 1010-1012: chapters of ~350 words, like real ones) is
ingested alone, end to end: API -> RQ -> a fresh `worker.py --burst` (no scheduler: the
horse is the worker's only child) -> Scrapy -> PostgreSQL, pacing off. Figures per fiction:

- peak RSS: the job's own log line ("job N done: ... peak RSS X MiB", the horse's
  ru_maxrss: exact, pages shared with the preloaded parent included);
- peak private: the horse's private memory (smaps_rollup Private_Clean + Private_Dirty,
  what the job itself dirtied), sampled every SAMPLE_S: a lower bound of its peak;
- the worker parent's RSS (what a horse starts from), the job's time (its own
  created_at -> finished_at) and its phases from the log line.

The goal (issue 10): peak RSS for 2,000 chapters within 1.5x of 10 chapters, and 10,000
chapters completing.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.check import check
from bench.e2e import Environment, http, job_seconds
from tests.fixture_site import content
from tests.utils import services

FICTIONS = (1010, 1011, 1012)  # 10, 2,000, 10,000 chapters
TARGET_RATIO = 1.5  # peak RSS 2,000 / 10 chapters
SAMPLE_S = 0.02
JOB_TIMEOUT_S = 3600
WORKER_ENV = {
    "CRAWLER_DOWNLOAD_DELAY": "0",
    "CRAWLER_CONCURRENT_REQUESTS": "32",
    "CRAWLER_SITE_CONCURRENCY": "32",
    "JOB_TIMEOUT": str(JOB_TIMEOUT_S),
    "LOG_LEVEL": "INFO",  # the job's "done" line carries its peak RSS
}
# ingestion.py's "job N done: C chapters (...); claim .. ms, crawl .. ms, parse .. ms,
# save .. ms; peak RSS X MiB": read field by field, so a reworded line still parses
DONE = re.compile(r"job (?P<job>\d+) done: (?P<chapters>\d+) chapters.*$", re.MULTILINE)
PEAK = re.compile(r"peak RSS (\d+(?:\.\d+)?) MiB")


def _phase(line: str, name: str) -> float:
    found = re.search(rf"\b{name} (\d+) ms", line)
    return int(found.group(1)) / 1000 if found else float("nan")


@dataclass
class Figures:
    fiction_id: int
    chapters: int
    seconds: float  # the job's created_at -> finished_at
    peak_rss_mib: float  # the job's log line: the horse's ru_maxrss
    peak_private_mib: float  # sampled
    sampled_hwm_mib: float  # VmHWM as last read: a check on the log line (<= it)
    parent_rss_mib: float  # the worker parent, before the job
    crawl_s: float
    parse_s: float
    save_s: float


def _kib(text: str, field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _children(pid: int) -> list[int]:
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in listed.split()]


class HorseSampler(threading.Thread):
    """Polls the worker's children (the horse): peak private memory, last VmHWM, in KiB.

    `parent_kib`: the worker's own RSS when its first horse was seen (preloaded, idle).
    """

    def __init__(self, worker_pid: int) -> None:
        super().__init__(daemon=True)
        self.worker_pid = worker_pid
        self.private_kib = 0
        self.hwm_kib = 0
        self.parent_kib = 0
        self.horses: set[int] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for pid in _children(self.worker_pid):
                self._sample(pid)
            time.sleep(SAMPLE_S)

    def _sample(self, pid: int) -> None:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:  # it exited between the listing and the read
            return
        if not self.horses:
            try:
                parent = Path(f"/proc/{self.worker_pid}/status").read_text()
                self.parent_kib = _kib(parent, "VmRSS")
            except OSError:
                pass
        self.horses.add(pid)
        self.hwm_kib = max(self.hwm_kib, _kib(status, "VmHWM"))
        private = _kib(rollup, "Private_Clean") + _kib(rollup, "Private_Dirty")
        self.private_kib = max(self.private_kib, private)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def ingest(env: Environment, fiction_id: int) -> Figures:
    fiction = content.fiction(fiction_id)
    assert fiction is not None
    env.reset()
    accepted = http(
        "POST", f"{env.api_url}/ingest", {"url": env.site.url(f"/fiction/{fiction_id}")}
    )
    worker = services.WorkerProcess(
        "--burst", "--no-scheduler", log_dir=env.log_dir, env=WORKER_ENV
    )
    sampler = HorseSampler(worker.pid)
    sampler.start()
    try:
        worker.wait(JOB_TIMEOUT_S + 120)
    finally:
        sampler.stop()
        log = worker.log()
        worker.stop()
    job = http("GET", f"{env.api_url}/jobs/{accepted['job_id']}")
    done = DONE.search(log)
    peak = PEAK.search(done.group(0)) if done else None
    if job["status"] != "done" or done is None or peak is None:
        raise RuntimeError(
            f"fiction {fiction_id}: job {job['status']}, {job['error_message']}; no done line"
            f" with a peak RSS in {worker.log_path}"
        )
    expected = sum(not c.locked for c in fiction.chapters)
    if job["progress"]["chapters_saved"] != expected:
        raise RuntimeError(f"fiction {fiction_id}: saved {job['progress']}, expected {expected}")
    return Figures(
        fiction_id=fiction_id,
        chapters=int(done["chapters"]),
        seconds=job_seconds(job),
        peak_rss_mib=float(peak.group(1)),
        peak_private_mib=sampler.private_kib / 1024,
        sampled_hwm_mib=sampler.hwm_kib / 1024,
        parent_rss_mib=sampler.parent_kib / 1024,
        crawl_s=_phase(done.group(0), "crawl"),
        parse_s=_phase(done.group(0), "parse"),
        save_s=_phase(done.group(0), "save"),
    )


def _report(figures: list[Figures]) -> dict[str, object]:
    for f in figures:
        print(
            f"memory, {f.chapters:,} chapters (fiction {f.fiction_id}): work-horse peak RSS"
            f" {f.peak_rss_mib:.0f} MiB (job log; sampled VmHWM {f.sampled_hwm_mib:.0f}),"
            f" peak private {f.peak_private_mib:.0f} MiB (sampled); worker parent"
            f" {f.parent_rss_mib:.0f} MiB; {f.seconds:.1f} s (crawl {f.crawl_s:.1f},"
            f" parse {f.parse_s:.1f}, save {f.save_s:.1f})"
        )
    checks: list[dict[str, object]] = []
    result: dict[str, object] = {"fictions": [asdict(f) for f in figures], "checks": checks}
    by_size = {f.fiction_id: f for f in figures}
    small, medium = by_size.get(FICTIONS[0]), by_size.get(FICTIONS[1])
    if small is not None and medium is not None:
        ratio = medium.peak_rss_mib / small.peak_rss_mib
        private = medium.peak_private_mib / max(small.peak_private_mib, 1.0)
        print(f"memory: peak private 2,000 / 10 chapters {private:.2f}x")
        result.update({"rss_ratio_2000_to_10": ratio, "private_ratio_2000_to_10": private})
        checks.append(
            check(
                "memory",
                "work-horse peak RSS, 2,000 / 10 chapters",
                ratio,
                "x",
                at_most=TARGET_RATIO,
                bound="the preloaded parent's pages (shared, counted in RSS) and the fiction"
                " page's parse tree, held once; chapters go through the spool in the"
                " database, not memory, so only the table of contents grows with length",
            )
        )
    large = by_size.get(FICTIONS[2])
    if small is not None and large is not None:
        result["rss_ratio_10000_to_10"] = large.peak_rss_mib / small.peak_rss_mib
    return result


def run(env: Environment, *, quick: bool = False) -> dict[str, object]:
    """Each fiction through a burst worker of its own; `env.worker` is back after."""
    fictions = FICTIONS[:2] if quick else FICTIONS
    env.worker.stop()  # one job at a time, in a horse of a fresh, idle parent
    figures: list[Figures] = []
    try:
        for fiction_id in fictions:
            try:
                figures.append(ingest(env, fiction_id))
            except RuntimeError as error:  # reported; the larger ones are still measured
                print(f"memory: {error}")
    finally:
        env.worker = services.WorkerProcess(log_dir=env.log_dir)
    return _report(figures)
