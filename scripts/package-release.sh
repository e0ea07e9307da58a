#!/bin/sh
# Package a built `staging` binary as a release asset: `DIR/staging-TARGET.tar.gz` (the one
# file `staging`) and `DIR/staging-TARGET.tar.gz.sha256` (`HEX  staging-TARGET.tar.gz`,
# what `sha256sum -c` reads and scripts/install.sh verifies).
#
#   scripts/package-release.sh target/x86_64-unknown-linux-musl/release/staging x86_64-unknown-linux-musl dist
set -eu
[ $# -eq 3 ] || { echo "usage: package-release.sh BINARY TARGET OUT_DIR" >&2; exit 2; }
binary=$1 target=$2 out=$3
[ -f "$binary" ] || { echo "package-release.sh: no binary at $binary" >&2; exit 2; }
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
cp "$binary" "$stage/staging"
chmod 0755 "$stage/staging"
archive="staging-$target.tar.gz"
tar -czf "$out/$archive" -C "$stage" staging
if command -v sha256sum >/dev/null 2>&1; then
  sum=$(sha256sum "$out/$archive" | cut -d' ' -f1)
else
  sum=$(shasum -a 256 "$out/$archive" | cut -d' ' -f1)
fi
printf '%s  %s\n' "$sum" "$archive" >"$out/$archive.sha256"
echo "$out/$archive"
