#!/usr/bin/env bash
# Makes sure the services the tests talk to are up: PostgreSQL on 127.0.0.1:5432 (trust
# auth, database `test`) and Redis on 127.0.0.1:6379. Starts them when they are installed
# but stopped; says what is missing otherwise. Idempotent.
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if pg_up; then
  psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
else
  echo "PostgreSQL is not running on 127.0.0.1:5432 and could not be started (apt-get install postgresql)" >&2
  exit 1
fi

if ! redis_up; then
  if command -v redis-server >/dev/null; then
    echo "starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  fi
fi
if ! redis_up; then
  echo "Redis is not running on 127.0.0.1:6379 and could not be started (apt-get install redis-server)" >&2
  exit 1
fi
echo "postgres and redis are up" >&2
