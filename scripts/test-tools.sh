#!/usr/bin/env bash
# Installs the stand-ins the provider tests run against, into .tools/ (git-ignored):
#   - Prism (npm @stoplight/prism-cli), which serves the providers' own API descriptions
#     in ../shared/contracts and rejects requests that break them;
#   - moto (PyPI moto[server]), an AWS emulator.
# Idempotent: a second run only checks. Prints where each tool is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"

PRISM_VERSION=5.16.0
MOTO_VERSION=5.2.5
GRAPHQL_CORE_VERSION=3.3.2

if [ ! -x "$tools/prism/node_modules/.bin/prism" ]; then
  echo "installing prism $PRISM_VERSION into $tools/prism" >&2
  npm install --silent --no-audit --no-fund --prefix "$tools/prism" "@stoplight/prism-cli@$PRISM_VERSION" >&2
fi
if [ ! -x "$tools/venv/bin/moto_server" ]; then
  echo "installing moto $MOTO_VERSION into $tools/venv" >&2
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi
# The Railway stand-in (crates/provider-railway/tests/support/standin.py) validates every
# GraphQL document against Railway's published schema with graphql-core.
if ! "$tools/venv/bin/python" -c "import graphql, sys; sys.exit(graphql.__version__ != '$GRAPHQL_CORE_VERSION')" 2>/dev/null; then
  echo "installing graphql-core $GRAPHQL_CORE_VERSION into $tools/venv" >&2
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "graphql-core==$GRAPHQL_CORE_VERSION" >&2
fi
echo "prism: $tools/prism/node_modules/.bin/prism"
echo "moto:  $tools/venv/bin/moto_server"
echo "graphql-core: $tools/venv/bin/python"
