#!/usr/bin/env bash
# Benchmark of the smoke runner: 1,000 HTTP probes against a loopback server holding each
# response 50 ms, against the floor ceil(1000/concurrency) x 50 ms and against
# `hurl --test --jobs <concurrency>` on the same requests (when hurl is installed).
#
#   scripts/bench-smoke.sh [--install-hurl] [--concurrency N] [--probes N] [--hold-ms N] [--https]
#   scripts/bench-smoke.sh --https-suite [--install-hurl]
#
# --https serves TLS (a CA made for the run, given to both tools). --https-suite runs the
# HTTPS case the performance issue asks for: 1,000 probes, 5 ms hold, at concurrency 16 and
# 64, each under /usr/bin/time -v for the peak RSS of the runner and its children.
#
# --install-hurl installs hurl first (apt-get install libcurl4-openssl-dev libxml2-dev libclang-dev, then
# cargo install hurl --locked --version 8.0.1). Never run from tests or CI.
set -euo pipefail
cd "$(dirname "$0")/.."

install_hurl=0
https_suite=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --install-hurl) install_hurl=1 ;;
    --https-suite) https_suite=1 ;;
    *) args+=("$1") ;;
  esac
  shift
done

if [ "$install_hurl" = 1 ] && ! command -v hurl >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  # libclang-dev: the libxml crate generates its bindings with bindgen.
  $sudo_cmd apt-get install -y libcurl4-openssl-dev libxml2-dev libclang-dev
  # hurl 8.1 needs a newer rustc than 1.95; 8.0.1 builds with it.
  cargo install hurl --locked --version "${HURL_VERSION:-8.0.1}"
fi

if [ "$https_suite" = 0 ]; then
  cargo run --quiet --release -p staging-smoke --example bench_http -- "${args[@]}"
  exit
fi

cargo build --quiet --release -p staging-smoke --example bench_http
bin="${CARGO_TARGET_DIR:-target}/release/examples/bench_http"
command -v hurl >/dev/null || echo "hurl is not installed: the hurl column is not measured (--install-hurl)"
for c in 16 64; do
  echo "== HTTPS, 1000 probes, 5 ms hold, concurrency $c"
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v "$bin" --https --hold-ms 5 --concurrency "$c" 2> >(grep -E "Maximum resident|Elapsed" | sed 's/^\s*/time -v:      /' >&2)
  else
    "$bin" --https --hold-ms 5 --concurrency "$c"
  fi
done
