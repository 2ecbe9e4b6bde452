"""Run the benchmarks (all, or those named), print a table, write the results.

Each benchmark is a module of this package with `run(env, *, quick)` (or `run(*, quick)`
when it needs no running service) returning its figures with a "checks" list
(bench.check). `python -m bench rivals` (or `scripts/bench.sh rivals`) runs one alone;
its figures replace that benchmark's in bench/results.json, the others' are kept.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

# A Redis db of the benchmark's own: a test run on the same machine flushes the tests' db.
os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")

# In the order they run; False: needs no API, worker or database
BENCHMARKS: dict[str, bool] = {
    "startup": False,
    "end_to_end": True,
    "rivals": True,
    "overhead": True,
    "api": True,
    "scaling": True,
    "memory": True,
    "backlog": True,
    "updates": True,
}
MODULES = {"end_to_end": "e2e"}  # a benchmark whose module has another name


def _module(name: str) -> Any:
    return importlib.import_module(f"bench.{MODULES.get(name, name)}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "only", nargs="*", metavar="NAME", help=f"run only these of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes and fewer rounds: a look, not figures"
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print only: leave bench/results.json, the chart and docs/benchmarks.md alone",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a figure misses its target"
    )
    args = parser.parse_args()
    if unknown := set(args.only) - set(BENCHMARKS):
        parser.error(f"no benchmark {', '.join(sorted(unknown))}: choose from {list(BENCHMARKS)}")
    chosen = [b for b in BENCHMARKS if b in args.only] if args.only else list(BENCHMARKS)
    from bench import e2e, report  # they read TEST_REDIS_URL on import

    results: dict[str, dict[str, Any]] = {}
    for name in (b for b in chosen if not BENCHMARKS[b]):
        results[name] = _module(name).run(quick=args.quick)
    if any(BENCHMARKS[b] for b in chosen):
        with e2e.Environment() as env:
            for name in (b for b in chosen if BENCHMARKS[b]):
                results[name] = _module(name).run(env, quick=args.quick)
    report.print_table(results)
    if not args.no_write and not args.quick:
        report.write(results)
    missed = [c for c in report.checks_of(results) if not c["met"]]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.exit(main())
