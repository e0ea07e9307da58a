#!/usr/bin/env bash
# The test command: starts what the tests need (PostgreSQL, Redis, and the provider
# stand-ins Prism and moto, installed into .tools/ from npm and PyPI), then runs every
# test of the workspace.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/services.sh
bash scripts/test-tools.sh >/dev/null
cargo test --workspace --all-targets --locked "$@"
cargo test --workspace --doc --locked "$@"
