#!/usr/bin/env bash
# `staging validate` on large specs, each of which must stay linear (issue 34): writes the
# specs into a scratch directory, times one `validate` of each, and prints a table.
#   - refs-1mb:     one valid 1 MB string of `${commit}` references;
#   - undefined-40k: one string of 40,000 undefined `${X}` (refused at the first);
#   - services-10k: 10,000 services;
#   - chain-4k:     a `promotes_to` chain 4,000 environments long.
# Each must finish in under a second with the release binary (docs/benchmarks.md). Not a
# test: timings depend on the machine; CI never runs this.
#
#   scripts/bench-validate.sh [--binary PATH] [--limit SECONDS]
#
# Without --binary it builds the release CLI (15-30 minutes cold on 2 cores). With
# --limit, exits 1 when a case takes longer (for a manual check, not CI).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
binary=""
limit=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift ;;
    --limit) limit="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$binary" ]; then
  cargo build --quiet --release --locked -p staging-cli --bin staging
  binary="$target/release/staging"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

python3 - "$scratch" <<'PY'
import os, sys
out = sys.argv[1]
head = '[project]\nname = "big"\n\n[environments.staging]\nprovider = "local"\n\n'
def write(name, text):
    os.makedirs(os.path.join(out, name), exist_ok=True)
    with open(os.path.join(out, name, "staging.toml"), "w") as f:
        f.write(text)
refs = "${commit}" * (1_000_000 // len("${commit}"))
write("refs-1mb", head + '[vars.BIG]\nvalue = "' + refs + '"\n')
write("undefined-40k", head + '[vars.BIG]\nvalue = "' + "${X}" * 40_000 + '"\n')
services = "".join(
    f'[services.s{i}]\nhttp = false\nsettings = {{ command = ["true"], port = {20000 + i} }}\n'
    for i in range(10_000)
)
write("services-10k", head + services)
envs = "".join(
    f'[environments.e{i}]\nprovider = "local"\npromotes_to = "e{i + 1}"\n' for i in range(4_000)
)
envs += '[environments.e4000]\nprovider = "local"\nprotected = true\n'
write("chain-4k", '[project]\nname = "big"\n\n' + envs)
PY

status=0
printf '%-15s %10s %6s  %s\n' case seconds exit "first line of output"
for case in refs-1mb undefined-40k services-10k chain-4k; do
  spec="$scratch/$case/staging.toml"
  start=$(date +%s%N)
  set +e
  output=$(env -u STAGING_FILE -u STAGING_ENV "$binary" validate -f "$spec" 2>&1)
  code=$?
  set -e
  end=$(date +%s%N)
  seconds=$(awk -v n=$((end - start)) 'BEGIN { printf "%.3f", n / 1e9 }')
  printf '%-15s %10s %6s  %s\n' "$case" "$seconds" "$code" "$(printf '%s' "$output" | head -n1 | cut -c1-100)"
  if [ -n "$limit" ] && awk -v s="$seconds" -v l="$limit" 'BEGIN { exit !(s > l) }'; then
    status=1
  fi
done
exit "$status"
