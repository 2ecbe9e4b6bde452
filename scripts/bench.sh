#!/usr/bin/env bash
# The benchmarks (bench/): figures against baselines measured in the same run; a table on the
# terminal, bench/results.json, bench/results.png and the figures in docs/benchmarks.md.
#   scripts/bench.sh                 every benchmark (about 15 minutes on 2 cores)
#   scripts/bench.sh rivals memory   those alone (their figures replace theirs in the results)
#   scripts/bench.sh --quick         smaller sizes, one round: a look, nothing written
#   scripts/bench.sh --help          the benchmarks' names
# Needs PostgreSQL and Redis (started here if they are not running) and, the first time, the
# package registry: matplotlib for the chart; the rivals' own venv (FanFicFare,
# lightnovel-crawler) is made under data/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
STAMP=.venv/.bench-installed
if [[ ! -f $STAMP || bench/requirements.txt -nt $STAMP ]]; then
  .venv/bin/pip install -q -r bench/requirements.txt
  touch "$STAMP"
fi
scripts/ensure_services.sh --postgres
exec .venv/bin/python -m bench "$@"
