#!/usr/bin/env bash
# The benchmarks (bench/): figures against baselines measured in the same run.
#   scripts/bench.sh                 every benchmark
#   scripts/bench.sh memory          one alone (startup, end_to_end, overhead, memory)
#   scripts/bench.sh memory --fictions 1010,1011 --json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/ensure_services.sh --postgres
exec .venv/bin/python -m bench "$@"
