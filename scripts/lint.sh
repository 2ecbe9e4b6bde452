#!/usr/bin/env bash
# ruff (lint and format) and mypy, as CI runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
