#!/usr/bin/env bash
# The test command: starts what the tests need (PostgreSQL, Redis, and the provider
# stand-ins Prism and moto, installed into .tools/ from npm and PyPI), then runs every
# test of the workspace (doc tests included) and closes with one summary line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/services.sh
bash scripts/test-tools.sh >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --doc --locked "$@" 2>&1 | tee -a "$log" || status=$?
if [ "$status" -eq 0 ]; then
  cargo test --workspace --all-targets --locked "$@" 2>&1 | tee -a "$log" || status=$?
fi
# One line over every test binary: "N passed, N failed".
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
