#!/usr/bin/env bash
# Start-up and size of the release `staging` binary:
#   - `staging validate` of the demo spec (examples/demo/staging.toml): median of 50 runs
#     (hyperfine when installed, else a loop timing each run with `date +%s%N`);
#   - the binary's size as built ([profile.release] strips it). With --symbols the binary is
#     built with profile `release-symbols` instead (release, not stripped), and the script
#     also prints its size after binutils' strip and the 25 largest crates by symbol size
#     (`nm`, a poor man's cargo-bloat).
#
#   scripts/bench-startup.sh [--symbols] [--binary PATH] [--runs N]
#
# A release build of the CLI takes 15-30 minutes on 2 cores; CI builds debug only and never
# runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
binary=""
runs=50
symbols=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --symbols) symbols=1 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$binary" ]; then
  if [ "$symbols" = 1 ]; then
    cargo build --quiet --profile release-symbols --workspace --bin staging
    binary="$target/release-symbols/staging"
  else
    cargo build --quiet --release --workspace --bin staging
    binary="$target/release/staging"
  fi
fi
spec=examples/demo/staging.toml

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
echo "binary: $binary, $(mb "$(stat -c %s "$binary")") ($(stat -c %s "$binary") bytes)"
if command -v strip >/dev/null; then
  tmp="$(mktemp)"; strip -o "$tmp" "$binary"
  echo "        stripped by binutils strip: $(mb "$(stat -c %s "$tmp")")"
  rm -f "$tmp"
fi

"$binary" validate -f "$spec" >/dev/null
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 5 --runs "$runs" --export-json /tmp/bench-startup.json \
    "$binary validate -f $spec" >/dev/null
  median=$(python3 -c 'import json; print("%.2f" % (json.load(open("/tmp/bench-startup.json"))["results"][0]["median"] * 1000))')
  echo "validate (hyperfine, $runs runs): median $median ms"
else
  times=()
  for _ in $(seq 5); do "$binary" validate -f "$spec" >/dev/null; done
  for _ in $(seq "$runs"); do
    s=$(date +%s%N); "$binary" validate -f "$spec" >/dev/null; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  n=${#sorted[@]}
  echo "validate (loop, hyperfine not installed, $runs runs): median $(awk -v u="${sorted[$((n / 2))]}" 'BEGIN { printf "%.2f", u / 1000 }') ms, min $(awk -v u="${sorted[0]}" 'BEGIN { printf "%.2f", u / 1000 }') ms, max $(awk -v u="${sorted[$((n - 1))]}" 'BEGIN { printf "%.2f", u / 1000 }') ms"
fi

if [ "$symbols" = 1 ]; then
  echo "largest crates by symbol size (nm --size-sort, demangled; symbols only, not all bytes):"
  nm --size-sort --print-size --demangle=rust "$binary" 2>/dev/null \
    | awk '{ size = strtonum("0x" $2); $1 = $2 = $3 = ""; name = substr($0, 4);
             sub(/^[<&*( ]+/, "", name); split(name, p, "::"); crate = p[1];
             if (crate ~ /^_?[a-z][a-z0-9_]*$/) bytes[crate] += size; else bytes["(other)"] += size }
           END { for (c in bytes) printf "%10.2f MB  %s\n", bytes[c] / 1000000, c }' \
    | sort -rn | head -25
fi
