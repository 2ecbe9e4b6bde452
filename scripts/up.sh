#!/usr/bin/env bash
# Bring the service up on embedded defaults -- SQLite in data/, the local Redis -- with an
# API and two workers in the background, then ingest one fiction through the API and wait.
# With no DEMO_URL, the fiction comes from the project's local demo site (a Royal Road
# look-alike on 127.0.0.1:8765, aliased to the Royal Road adapter). scripts/down.sh stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/ensure_services.sh
PY=.venv/bin/python
RUN=data/run
mkdir -p "$RUN" data/logs

export API_PORT="${API_PORT:-8000}"
DEMO_PORT="${DEMO_PORT:-8765}"
if [[ -z "${DEMO_URL:-}" ]]; then
  export CRAWLER_SITE_ALIASES="${CRAWLER_SITE_ALIASES:-127.0.0.1:$DEMO_PORT=royalroad}"
  export CRAWLER_DOWNLOAD_DELAY="${CRAWLER_DOWNLOAD_DELAY:-0}"
  DEMO_URL="http://127.0.0.1:$DEMO_PORT/fiction/1003/the-long-road-home"
fi

start() {  # name, command...
  local name=$1; shift
  if [[ -f "$RUN/$name.pid" ]] && kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null; then
    echo "$name: already running (pid $(cat "$RUN/$name.pid"))"; return
  fi
  nohup "$@" >"data/logs/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  echo "$name: started (pid $!, log data/logs/$name.log)"
}

$PY cli.py migrate
[[ -n "${CRAWLER_SITE_ALIASES:-}" ]] && start demo-site $PY -m tests.fixture_site --port "$DEMO_PORT"
start api $PY main.py
start worker-1 $PY worker.py --name "$(hostname)-worker-1"
start worker-2 $PY worker.py --name "$(hostname)-worker-2"
start reconciler $PY cli.py reconcile --loop

$PY scripts/demo_ingest.py "http://127.0.0.1:$API_PORT" "$DEMO_URL"
cat <<MSG

Service is up:   API http://127.0.0.1:$API_PORT/docs   (logs in data/logs/)
Dashboard:       .venv/bin/python cli.py dashboard   -> http://127.0.0.1:9181
Ingest more:     curl -X POST 127.0.0.1:$API_PORT/ingest -H 'Content-Type: application/json' -d '{"url": "..."}'
Stop:            scripts/down.sh
MSG
