#!/usr/bin/env bash
# Create .venv and install the pinned dependencies (again only when the requirement files
# change). Installs Debian's python3-venv first if this Python cannot make a venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-python3}"
STAMP=.venv/.installed

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

if [[ ! -x .venv/bin/python ]]; then
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
if [[ ! -f $STAMP || requirements.txt -nt $STAMP || requirements-dev.txt -nt $STAMP ]]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements-dev.txt
  touch "$STAMP"
fi
