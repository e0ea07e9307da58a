#!/usr/bin/env bash
# Installs what the tests run against into .tools/ (git-ignored), each from a registry:
#   - Prism (npm @stoplight/prism-cli), which serves the providers' own API descriptions
#     and rejects requests that break them;
#   - moto (PyPI moto[server]), an AWS emulator;
#   - the providers' API descriptions, in .tools/contracts/ (see fill_contracts below);
#   - junit-10.xsd, the Jenkins/xUnit JUnit schema, from the pytest sdist on PyPI;
#   - SchemaStore's GitHub Action and workflow schemas, in .tools/schemas/, from the
#     check-jsonschema wheel on PyPI (which vendors them): action.yml and the release
#     workflow are checked against them;
#   - Debian's chromium (the HTML report is checked in a headless browser) and
#     libxml2-utils (xmllint validates the JUnit reports against junit-10.xsd).
# Idempotent and offline-safe once done: a second run only checks. Prints where each tool is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"

PRISM_VERSION=5.16.0
MOTO_VERSION=5.2.5
GRAPHQL_CORE_VERSION=3.3.2
NETLIFY_API_VERSION=2.60.0   # npm @netlify/open-api
NEON_API_VERSION=2.7.3       # npm @neondatabase/api-client
RAILWAY_CLI_VERSION=5.71.0   # crates.io railwayapp (the Railway CLI ships its GraphQL schema)
PYTEST_VERSION=8.3.5         # PyPI pytest: its sdist carries junit-10.xsd
CHECK_JSONSCHEMA_VERSION=0.39.0  # PyPI check-jsonschema: its wheel vendors SchemaStore's GitHub schemas

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

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# `member` of the npm package `spec` (a path inside its tarball) written to `dest`.
from_npm() {
  local spec=$1 member=$2 dest=$3 tarball
  tarball=$(cd "$scratch" && npm pack --silent "$spec")
  tar --no-same-owner -xzf "$scratch/$tarball" -C "$scratch" "$member"
  mv "$scratch/$member" "$dest"
}

# `member` of the crates.io crate `name@version` written to `dest`. `cargo info` leaves the
# .crate in cargo's registry cache (run outside the workspace so no lock file is touched).
from_crates_io() {
  local name=$1 version=$2 member=$3 dest=$4 crate
  (cd "$scratch" && cargo info --quiet "$name@$version" >/dev/null)
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n1)
  if [ -z "$crate" ]; then
    echo "error: cargo info $name@$version left no $name-$version.crate in cargo's registry cache" >&2
    exit 1
  fi
  tar --no-same-owner -xzf "$crate" -C "$scratch" "$name-$version/$member"
  mv "$scratch/$name-$version/$member" "$dest"
}

# The providers' API descriptions, where the tests look first (after STAGING_CONTRACTS_DIR):
# the ones published on a registry are fetched from it; the others are copied from
# $STAGING_CONTRACTS_DIR or ../shared/contracts. Each fetched file is compared with the
# copy in ../shared/contracts, when there is one.
fill_contracts() {
  local dir="$tools/contracts" shared file from missing=()
  shared="$(cd "$root/.." && pwd)/shared/contracts"
  mkdir -p "$dir"
  if [ ! -s "$dir/netlify-swagger.json" ]; then
    echo "fetching netlify-swagger.json (npm @netlify/open-api@$NETLIFY_API_VERSION)" >&2
    from_npm "@netlify/open-api@$NETLIFY_API_VERSION" package/dist/swagger.json "$dir/netlify-swagger.json"
  fi
  if [ ! -s "$dir/neon-v2.yaml" ]; then
    echo "fetching neon-v2.yaml (npm @neondatabase/api-client@$NEON_API_VERSION)" >&2
    from_npm "@neondatabase/api-client@$NEON_API_VERSION" package/public-v2-for-users.gen.yaml "$dir/neon-v2.yaml"
  fi
  if [ ! -s "$dir/railway-schema.json" ]; then
    echo "fetching railway-schema.json (crates.io railwayapp@$RAILWAY_CLI_VERSION)" >&2
    from_crates_io railwayapp "$RAILWAY_CLI_VERSION" src/gql/schema.json "$dir/railway-schema.json"
  fi
  for file in netlify-swagger.json neon-v2.yaml railway-schema.json; do
    if [ -f "$shared/$file" ] && ! cmp -s "$shared/$file" "$dir/$file"; then
      echo "note: $dir/$file (from its registry) differs from $shared/$file; the tests use the registry's" >&2
    fi
  done
  # Not published on a registry: copied.
  for file in render-public-api.json supabase-management-v1.json vercel-openapi.json; do
    from=""
    if [ -n "${STAGING_CONTRACTS_DIR:-}" ] && [ -f "$STAGING_CONTRACTS_DIR/$file" ]; then
      from="$STAGING_CONTRACTS_DIR/$file"
    elif [ -f "$shared/$file" ]; then
      from="$shared/$file"
    fi
    if [ -n "$from" ]; then
      if ! cmp -s "$from" "$dir/$file" 2>/dev/null; then
        # A plain copy (the source may have no write bits; the copy keeps its own mode).
        cat "$from" >"$dir/$file.part" && mv "$dir/$file.part" "$dir/$file"
      fi
    elif [ ! -s "$dir/$file" ]; then
      missing+=("$file")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "error: missing API description(s): ${missing[*]}" >&2
    echo "  looked in: STAGING_CONTRACTS_DIR (${STAGING_CONTRACTS_DIR:-unset}) and $shared" >&2
    echo "  they are not on a registry: put them in one of those directories (or in $dir) and run again" >&2
    exit 1
  fi
}
fill_contracts

if [ ! -s "$tools/junit-10.xsd" ]; then
  echo "fetching junit-10.xsd (PyPI pytest $PYTEST_VERSION sdist)" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
    -d "$scratch" "pytest==$PYTEST_VERSION" >&2
  tar --no-same-owner -xzf "$scratch/pytest-$PYTEST_VERSION.tar.gz" -C "$scratch" \
    "pytest-$PYTEST_VERSION/testing/example_scripts/junit-10.xsd"
  mv "$scratch/pytest-$PYTEST_VERSION/testing/example_scripts/junit-10.xsd" "$tools/junit-10.xsd"
fi

if [ ! -s "$tools/schemas/github-action.json" ] || [ ! -s "$tools/schemas/github-workflow.json" ]; then
  echo "fetching SchemaStore's github-action.json and github-workflow.json (PyPI check-jsonschema $CHECK_JSONSCHEMA_VERSION)" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    -d "$scratch" "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" >&2
  python3 -m zipfile -e "$scratch"/check_jsonschema-"$CHECK_JSONSCHEMA_VERSION"-*.whl "$scratch/wheel"
  mkdir -p "$tools/schemas"
  vendor="$scratch/wheel/check_jsonschema/builtin_schemas/vendor"
  mv "$vendor/github-actions.json" "$tools/schemas/github-action.json"
  mv "$vendor/github-workflows.json" "$tools/schemas/github-workflow.json"
fi

# Debian packages: the headless browser and the XSD validator.
debs=()
[ -x /usr/bin/chromium ] || debs+=(chromium)
command -v xmllint >/dev/null || debs+=(libxml2-utils)
if [ "${#debs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: ${debs[*]} missing and not root: run \`sudo apt-get install -y ${debs[*]}\`" >&2
    exit 1
  fi
  echo "installing ${debs[*]} (Debian)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >&2
fi

echo "prism:     $tools/prism/node_modules/.bin/prism"
echo "moto:      $tools/venv/bin/moto_server"
echo "graphql-core: $tools/venv/bin/python"
echo "contracts: $tools/contracts"
echo "junit xsd: $tools/junit-10.xsd"
echo "schemas:   $tools/schemas"
echo "xmllint:   $(command -v xmllint)"
echo "chromium:  /usr/bin/chromium"
