#!/usr/bin/env bash
# Installs what the tests run against, into .tools/ (git-ignored), from the registries:
#   - Prism (npm @stoplight/prism-cli), which serves the providers' own API descriptions
#     and rejects requests that break them;
#   - moto (PyPI moto[server]), an AWS emulator;
#   - the providers' API descriptions, into .tools/contracts/: those published on a
#     registry from there (Netlify's from npm @netlify/open-api, Neon's from npm
#     @neondatabase/api-client, Railway's GraphQL schema from the crates.io crate
#     railwayapp), the others copied from $STAGING_CONTRACTS_DIR or ../shared/contracts;
#   - junit-10.xsd (the Jenkins xUnit JUnit schema, from the pytest sdist on PyPI), which
#     the JUnit reports are validated against;
#   - Debian packages: libxml2-utils (xmllint) and chromium (the HTML report test), when
#     missing and apt-get is there.
# Idempotent: a second run only checks. Prints where each tool is; fails naming what is
# missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"

PRISM_VERSION=5.16.0
MOTO_VERSION=5.2.5
NETLIFY_OPEN_API_VERSION=2.60.0
NEON_API_CLIENT_VERSION=2.7.3
RAILWAYAPP_VERSION=5.71.0
PYTEST_SDIST_VERSION=8.3.5

if [ ! -x "$tools/prism/node_modules/.bin/prism" ]; then
  echo "installing prism $PRISM_VERSION into $tools/prism" >&2
  npm install --silent --no-audit --no-fund --prefix "$tools/prism" "@stoplight/prism-cli@$PRISM_VERSION" >&2
fi
if [ ! -x "$tools/venv/bin/moto_server" ]; then
  echo "installing moto $MOTO_VERSION into $tools/venv" >&2
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi

# --- contracts ---------------------------------------------------------------------------
contracts="$tools/contracts"
mkdir -p "$contracts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# npm_file PACKAGE@VERSION PATH-IN-TARBALL TARGET
npm_file() {
  local target="$contracts/$3"
  [ -s "$target" ] && return 0
  echo "fetching $2 from npm $1" >&2
  (cd "$scratch" && npm pack --silent "$1" >/dev/null)
  local tgz
  tgz=$(ls "$scratch"/*.tgz | head -n1)
  tar -xzf "$tgz" -C "$scratch" "$2"
  mv "$scratch/$2" "$target"
  rm -f "$tgz"
}
npm_file "@netlify/open-api@$NETLIFY_OPEN_API_VERSION" package/dist/swagger.json netlify-swagger.json
npm_file "@neondatabase/api-client@$NEON_API_CLIENT_VERSION" package/public-v2-for-users.gen.yaml neon-v2.yaml

if [ ! -s "$contracts/railway-schema.json" ]; then
  echo "fetching src/gql/schema.json from crates.io railwayapp $RAILWAYAPP_VERSION" >&2
  # `cargo info` resolves the crate through the registry and leaves its .crate in cargo's
  # cache; the schema is one file of it.
  cargo info --quiet "railwayapp@$RAILWAYAPP_VERSION" >/dev/null 2>&1 || true
  crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"railwayapp-$RAILWAYAPP_VERSION.crate" 2>/dev/null | head -n1 || true)
  if [ -z "$crate" ]; then
    # Not cached by `cargo info`: a throwaway package depending on it downloads it.
    mkdir -p "$scratch/fetch/src" && touch "$scratch/fetch/src/lib.rs"
    printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nrailwayapp = "=%s"\n' \
      "$RAILWAYAPP_VERSION" >"$scratch/fetch/Cargo.toml"
    (cd "$scratch/fetch" && cargo fetch --quiet >&2) || true
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"railwayapp-$RAILWAYAPP_VERSION.crate" 2>/dev/null | head -n1 || true)
  fi
  if [ -n "$crate" ]; then
    tar -xzf "$crate" -C "$scratch" "railwayapp-$RAILWAYAPP_VERSION/src/gql/schema.json"
    mv "$scratch/railwayapp-$RAILWAYAPP_VERSION/src/gql/schema.json" "$contracts/railway-schema.json"
  fi
fi

# The contracts no registry publishes: from $STAGING_CONTRACTS_DIR, else ../shared/contracts.
shared="${STAGING_CONTRACTS_DIR:-$root/../shared/contracts}"
for f in render-public-api.json supabase-management-v1.json vercel-openapi.json; do
  if [ ! -s "$contracts/$f" ] && [ -s "$shared/$f" ]; then
    cp "$shared/$f" "$contracts/$f"
  fi
done
# A registry copy that could not be fetched (offline) may still be in the shared folder.
for f in netlify-swagger.json neon-v2.yaml railway-schema.json; do
  if [ ! -s "$contracts/$f" ] && [ -s "$shared/$f" ]; then
    cp "$shared/$f" "$contracts/$f"
  fi
done
missing=()
for f in render-public-api.json netlify-swagger.json neon-v2.yaml railway-schema.json supabase-management-v1.json vercel-openapi.json; do
  [ -s "$contracts/$f" ] || missing+=("$f")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "error: provider contracts missing from $contracts: ${missing[*]}" >&2
  echo "  registry ones come from npm (@netlify/open-api, @neondatabase/api-client) and crates.io (railwayapp);" >&2
  echo "  the others are copied from \$STAGING_CONTRACTS_DIR or ../shared/contracts (looked in $shared)" >&2
  exit 1
fi

# --- junit-10.xsd ------------------------------------------------------------------------
if [ ! -s "$tools/junit-10.xsd" ]; then
  echo "fetching junit-10.xsd from the PyPI sdist of pytest $PYTEST_SDIST_VERSION" >&2
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$scratch" "pytest==$PYTEST_SDIST_VERSION" >&2
  tar -xzf "$scratch/pytest-$PYTEST_SDIST_VERSION.tar.gz" -C "$scratch" \
    "pytest-$PYTEST_SDIST_VERSION/testing/example_scripts/junit-10.xsd"
  mv "$scratch/pytest-$PYTEST_SDIST_VERSION/testing/example_scripts/junit-10.xsd" "$tools/junit-10.xsd"
fi

# --- Debian packages ---------------------------------------------------------------------
need=()
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v chromium >/dev/null || need+=(chromium)
if [ "${#need[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing ${need[*]} (Debian)" >&2
    apt-get install -y -q "${need[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${need[@]}" >&2; }
  else
    echo "warning: missing ${need[*]}; install with: apt-get install ${need[*]}" >&2
  fi
fi

echo "prism:     $tools/prism/node_modules/.bin/prism"
echo "moto:      $tools/venv/bin/moto_server"
echo "contracts: $contracts"
echo "junit xsd: $tools/junit-10.xsd"
echo "xmllint:   $(command -v xmllint || echo missing)"
echo "chromium:  $(command -v chromium || echo missing)"
