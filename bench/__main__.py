"""Run every benchmark and print a report.

1. end to end: one 160-chapter fiction, API -> RQ -> forking worker -> Scrapy -> PostgreSQL,
   against a baseline that fetches and parses the same pages one at a time (what a
   sequential crawler does), in the same run;
2. per-job overhead: tiny jobs through our worker vs no-op jobs through a plain RQ worker;
3. horse start-up: importing Scrapy in a fresh process vs in a preloaded fork.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# A Redis db of the benchmark's own: a test run on the same machine flushes the tests' db.
os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")

from bench import e2e, overhead, startup  # they read TEST_REDIS_URL on import


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40, help="jobs for the overhead benchmark")
    parser.add_argument("--rounds", type=int, default=3, help="end-to-end rounds (best kept)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    with e2e.Environment() as env:
        results = {
            "startup": startup.run(),
            "end_to_end": e2e.run(env, rounds=args.rounds),
            "overhead": overhead.run(env, jobs=args.jobs),
        }
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
