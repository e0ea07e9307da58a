#!/usr/bin/env bash
# Benchmark the native migration runner against `sqlx migrate run` on 1,000 small
# migrations (Postgres), and time `status` over 1,000 applied. Prints both times and the
# ratio. Not a test: run it by hand and copy the figures into docs/benchmarks.md.
#
#   scripts/bench-migrate.sh [--install-sqlx] [--url URL] [--count N]
#
# --install-sqlx  install sqlx-cli (postgres + rustls only) with cargo when it is missing;
#                 without it, a missing sqlx-cli skips the comparison with a note.
# --url           Postgres to use (default postgres://postgres@127.0.0.1:5432/test, or
#                 $STAGING_BENCH_PG_URL); each runner gets a schema of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

install=0
url="${STAGING_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
count=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --install-sqlx) install=1 ;;
    --url) url="$2"; shift ;;
    --count) count="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

sqlx_bin="$(command -v sqlx || true)"
if [ -z "$sqlx_bin" ] && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/sqlx" ]; then
  sqlx_bin="${CARGO_HOME:-$HOME/.cargo}/bin/sqlx"
fi
if [ -z "$sqlx_bin" ] && [ "$install" = 1 ]; then
  cargo install sqlx-cli --no-default-features --features postgres,rustls --locked
  sqlx_bin="${CARGO_HOME:-$HOME/.cargo}/bin/sqlx"
fi

args=(--url "$url" --count "$count")
if [ -n "$sqlx_bin" ]; then
  echo "sqlx-cli: $("$sqlx_bin" --version)"
  args+=(--sqlx "$sqlx_bin")
else
  echo "note: sqlx-cli not installed; comparison skipped (pass --install-sqlx to install it)"
fi
cargo run --quiet --release -p staging-migrate --example bench_migrate -- "${args[@]}"
