#!/usr/bin/env bash
# Stop what scripts/up.sh started: SIGTERM (workers finish the job in hand), then wait.
set -uo pipefail
cd "$(dirname "$0")/.."
for pidfile in data/run/*.pid; do
  [[ -e "$pidfile" ]] || continue
  pid=$(cat "$pidfile"); name=$(basename "$pidfile" .pid)
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "$name: stopped"
  fi
  rm -f "$pidfile"
done
