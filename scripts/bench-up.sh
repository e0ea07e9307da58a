#!/usr/bin/env bash
# Overhead of `staging up` over the platform's own time, against the stateful Render and
# Netlify fakes (the provider crates' test fakes) with every deploy planned to go live a
# known time after its trigger, for 1, 5 and 20 services. Prints detection latency, polls a
# minute per service against the provider's read budget, and up's overhead.
#
#   scripts/bench-up.sh [--providers render,netlify] [--services 1,5,20] [--live-after-secs 20]
#
# Debug build (as CI builds): the figures are seconds, dominated by poll cadence, not by
# code speed. Takes a few minutes (Render polls 20 services every 48 s; Netlify starts at
# most 3 deploys a minute). Never run from tests or CI.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --workspace --bin staging --example bench_up
"$target/debug/examples/bench_up" --staging "$target/debug/staging" "$@"
