#!/usr/bin/env bash
# The test command: dependencies, Redis and PostgreSQL up (installed and started if they
# are not), then the whole suite, chaos and slow tests included (a bare `pytest` leaves them
# out). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/ensure_services.sh --postgres
exec .venv/bin/pytest -q -m "" "$@"
