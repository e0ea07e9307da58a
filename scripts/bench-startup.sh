#!/usr/bin/env bash
# Start-up and size of the release `staging` binary:
#   - `staging validate` of the demo spec (examples/demo/staging.toml): median of 50 runs
#     (hyperfine when installed, else a loop timing each run with `date +%s%N`), with the
#     machine's load average before and after (the figures swing with it);
#   - the binary's size as built ([profile.release] strips it) and after binutils' strip.
#   - With --symbols, also the 25 largest crates by symbol size (`nm`, a poor man's
#     cargo-bloat): the `staging` crate alone is compiled again without stripping
#     (`cargo rustc ... -- -C strip=none`; the dependencies are reused, a few minutes), the
#     stripped binary is put back afterwards.
#
#   scripts/bench-startup.sh [--symbols] [--binary PATH] [--runs N]
#
# It builds what `cargo install staging-cli` builds (`-p staging-cli`, not `--workspace`,
# whose feature unification over every member would compile a different binary). A cold
# release build of the CLI takes 15-30 minutes on 2 cores; CI builds debug only and never
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
  cargo build --quiet --release --locked -p staging-cli --bin staging
  binary="$target/release/staging"
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
echo "load average before timing: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
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

echo "load average after timing: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$symbols" = 1 ]; then
  if [ "$binary" != "$target/release/staging" ]; then
    echo "--symbols measures the binary this script builds; drop --binary" >&2; exit 2
  fi
  kept="$(mktemp)"; cp "$binary" "$kept"
  cargo rustc --quiet --release --locked -p staging-cli --bin staging -- -C strip=none
  unstripped="$target/release/staging.symbols"
  cp "$binary" "$unstripped"; cp "$kept" "$binary"; rm -f "$kept"
  echo "not stripped: $unstripped, $(mb "$(stat -c %s "$unstripped")")"
  echo "largest crates by symbol size (nm, demangled; symbols only, not every byte of the file;"
  echo "a core/alloc/std generic counts for the first other crate named in its type arguments):"
  nm --size-sort --print-size --demangle=rust "$unstripped" 2>/dev/null | awk '
    { size = strtonum("0x" $2); $1 = $2 = $3 = ""; name = substr($0, 4);
      sub(/^[<&*( ]+/, "", name); split(name, p, "::"); crate = p[1];
      if (crate !~ /^_?[a-z][a-z0-9_]*$/) crate = "(other)";
      # A std generic (drop_in_place, Vec, Future impls...) counts for the crate whose type
      # it was instantiated with: the first path in its arguments outside core/alloc/std.
      if (crate ~ /^(core|alloc|std)$/) {
        rest = substr(name, length(p[1]) + 3)
        while (match(rest, /[<&( ,\[*]_?[a-z][a-z0-9_]*::/)) {
          c = substr(rest, RSTART, RLENGTH - 2); sub(/^[<&( ,\[*]/, "", c)
          rest = substr(rest, RSTART + RLENGTH)
          if (c !~ /^(core|alloc|std)$/) { crate = c; break }
        }
      }
      bytes[crate] += size; total += size }
    END { for (c in bytes) printf "%10.2f MB  %s\n", bytes[c] / 1000000, c
          printf "%10.2f MB  (all symbols)\n", total / 1000000 }' \
    | sort -rn | head -26
fi
