#!/usr/bin/env bash
# Benchmark of the smoke runner: 1,000 HTTP probes against a loopback server holding each
# response 50 ms, against the floor ceil(1000/concurrency) x 50 ms and against
# `hurl --test --jobs <concurrency>` on the same requests (when hurl is installed).
#
#   scripts/bench-smoke.sh [--install-hurl] [--concurrency N] [--probes N] [--hold-ms N]
#
# --install-hurl installs hurl first (apt-get install libcurl4-openssl-dev libxml2-dev, then
# cargo install hurl --locked). Never run from tests or CI.
set -euo pipefail
cd "$(dirname "$0")/.."

install_hurl=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --install-hurl) install_hurl=1 ;;
    *) args+=("$1") ;;
  esac
  shift
done

if [ "$install_hurl" = 1 ] && ! command -v hurl >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y libcurl4-openssl-dev libxml2-dev
  cargo install hurl --locked
fi

cargo run --quiet --release -p staging-smoke --example bench_http -- "${args[@]}"
