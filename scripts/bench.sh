#!/usr/bin/env bash
# The benchmarks (bench/): figures against baselines measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/ensure_services.sh --postgres
exec .venv/bin/python -m bench "$@"
