#!/usr/bin/env bash
# Make sure Redis (and, with --postgres, PostgreSQL) answer on 127.0.0.1; install and start
# them if they do not. Used by scripts/up.sh, scripts/test.sh and CI.
set -euo pipefail

want_pg=0
[[ "${1:-}" == "--postgres" ]] && want_pg=1

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# A Redis that asks for a password (NOAUTH) is up too: the service gives it from REDIS_URL.
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -qE 'PONG|NOAUTH'; }
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! redis_up; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /tmp/novel-ingest-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir /tmp/novel-ingest-redis \
    --save "" --appendonly no --logfile /tmp/novel-ingest-redis/redis.log
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "Redis did not start" >&2; exit 1; }
fi
echo "redis: up on 127.0.0.1:6379"

# A PostgreSQL installed here, for the tests alone: let its superuser in from 127.0.0.1
# without a password, as on the CI machine (Debian's default asks for one over TCP).
trust_local_postgres() {
  local hba="/etc/postgresql/$1/main/pg_hba.conf"
  grep -q '^host all postgres 127.0.0.1/32 trust' "$hba" && return
  as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
}

if [[ $want_pg -eq 1 ]]; then
  if ! pg_up; then
    installed_now=0
    if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; installed_now=1; fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    [[ $installed_now -eq 1 ]] && trust_local_postgres "$version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart || true
    for _ in $(seq 100); do pg_up && break; sleep 0.2; done
    pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
  fi
  # Tests connect as postgres over TCP without a password (trust), like the CI machine.
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    echo "PostgreSQL is up but 'psql -h 127.0.0.1 -U postgres' fails: allow trust auth" >&2
    exit 1
  fi
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" \
    | grep -q 1 || psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test'
  echo "postgresql: up on 127.0.0.1:5432"
fi
