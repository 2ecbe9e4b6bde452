"""Run the benchmarks (all, or those named) and print a report.

1. startup: importing Scrapy in a fresh process vs in a preloaded fork;
2. end_to_end: one 160-chapter fiction, API -> RQ -> forking worker -> Scrapy -> PostgreSQL,
   against a baseline that fetches and parses the same pages one at a time (what a
   sequential crawler does), in the same run;
3. overhead: tiny jobs through our worker vs no-op jobs through a plain RQ worker;
4. memory: the work-horse's peak RSS for fictions of 10, 2,000 and 10,000 chapters.

`python -m bench memory` (or `scripts/bench.sh memory`) runs one alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# A Redis db of the benchmark's own: a test run on the same machine flushes the tests' db.
os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")

from bench import e2e, memory, overhead, startup  # they read TEST_REDIS_URL on import

BENCHMARKS = ("startup", "end_to_end", "overhead", "memory")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "only", nargs="*", metavar="NAME", help=f"run only these of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--jobs", type=int, default=40, help="jobs for the overhead benchmark")
    parser.add_argument("--rounds", type=int, default=3, help="end-to-end rounds (best kept)")
    parser.add_argument(
        "--fictions",
        default=",".join(map(str, memory.FICTIONS)),
        help="fixture fiction ids for the memory benchmark (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if unknown := set(args.only) - set(BENCHMARKS):
        parser.error(f"no benchmark {', '.join(sorted(unknown))}: choose from {BENCHMARKS}")
    chosen = [b for b in BENCHMARKS if b in args.only] if args.only else list(BENCHMARKS)
    results: dict[str, object] = {}
    if "startup" in chosen:
        results["startup"] = startup.run()
    if set(chosen) - {"startup"}:
        with e2e.Environment() as env:
            if "end_to_end" in chosen:
                results["end_to_end"] = e2e.run(env, rounds=args.rounds)
            if "overhead" in chosen:
                results["overhead"] = overhead.run(env, jobs=args.jobs)
            if "memory" in chosen:
                fictions = tuple(int(f) for f in args.fictions.split(","))
                results["memory"] = memory.run(env, fictions=fictions)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
