#!/bin/sh
# Install a prebuilt `staging` binary from a release, checksum-verified.
#
#   curl -fsSL https://github.com/OWNER/REPO/releases/latest/download/install.sh | sh -s -- --repo OWNER/REPO
#   sh scripts/install.sh --repo OWNER/REPO --version 0.1.0 --to ~/.local/bin
#   sh scripts/install.sh --base-url file:///tmp/dist --to ./bin     # a locally built release
#
# A release holds, for each target, `staging-TARGET.tar.gz` (one file: `staging`) and
# `staging-TARGET.tar.gz.sha256` (`HEX  staging-TARGET.tar.gz`), as
# scripts/package-release.sh writes them. The archive is installed only when its SHA-256 is
# the one the checksum file names; otherwise nothing is installed and the exit code is 1.
#
# Options (or the environment variable after each):
#   --repo OWNER/REPO   the GitHub repository of the releases      STAGING_REPO
#   --version V         a release (`0.1.0` or `v0.1.0`; default: the latest)  STAGING_VERSION
#   --base-url URL      where the files are (http(s):// or file://; default: the
#                       repository's release download URL)          STAGING_BASE_URL
#   --target TRIPLE     the build to install (default: this machine's)  STAGING_TARGET
#   --to DIR            where to put `staging` (default: ~/.local/bin)  STAGING_INSTALL_DIR
#
# Exit codes: 0 installed; 1 download or checksum failed; 2 bad usage or no build for
# this machine.
set -eu

repo=${STAGING_REPO:-}
version=${STAGING_VERSION:-}
base_url=${STAGING_BASE_URL:-}
target=${STAGING_TARGET:-}
to=${STAGING_INSTALL_DIR:-"${HOME:-.}/.local/bin"}

say() { printf 'install.sh: %s\n' "$*" >&2; }
usage() { say "$*"; say "usage: install.sh [--repo OWNER/REPO] [--version V] [--base-url URL] [--target TRIPLE] [--to DIR]"; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --repo) [ $# -ge 2 ] || usage "--repo needs a value"; repo=$2; shift 2 ;;
    --version) [ $# -ge 2 ] || usage "--version needs a value"; version=$2; shift 2 ;;
    --base-url) [ $# -ge 2 ] || usage "--base-url needs a value"; base_url=$2; shift 2 ;;
    --target) [ $# -ge 2 ] || usage "--target needs a value"; target=$2; shift 2 ;;
    --to) [ $# -ge 2 ] || usage "--to needs a value"; to=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" 2>/dev/null | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage "unknown option: $1" ;;
  esac
done

if [ -z "$target" ]; then
  os=$(uname -s)
  arch=$(uname -m)
  case $arch in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) say "no prebuilt staging for the processor $arch: build it with cargo install --locked staging-cli"; exit 2 ;;
  esac
  case $os in
    Linux) target="$arch-unknown-linux-musl" ;;
    Darwin) target="$arch-apple-darwin" ;;
    *) say "no prebuilt staging for $os: build it with cargo install --locked staging-cli"; exit 2 ;;
  esac
fi

if [ -z "$base_url" ]; then
  [ -n "$repo" ] || usage "give --repo OWNER/REPO (or STAGING_REPO), or --base-url"
  case $version in
    '' | latest) base_url="https://github.com/$repo/releases/latest/download" ;;
    v*) base_url="https://github.com/$repo/releases/download/$version" ;;
    *) base_url="https://github.com/$repo/releases/download/v$version" ;;
  esac
fi
base_url=${base_url%/}

archive="staging-$target.tar.gz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fetch() {
  # $1: URL, $2: destination. file:// is read directly, so a local build needs no curl.
  case $1 in
    file://*) cp "${1#file://}" "$2" 2>/dev/null || { say "cannot read ${1#file://}"; exit 1; } ;;
    *)
      if command -v curl >/dev/null 2>&1; then
        curl --proto '=https' --tlsv1.2 -fsSL --retry 3 --connect-timeout 20 --max-time 300 -o "$2" "$1" || { say "cannot download $1"; exit 1; }
      elif command -v wget >/dev/null 2>&1; then
        wget -q -T 60 -O "$2" "$1" || { say "cannot download $1"; exit 1; }
      else
        say "neither curl nor wget is installed"; exit 1
      fi ;;
  esac
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    say "neither sha256sum nor shasum is installed: cannot verify the download"; exit 1
  fi
}

fetch "$base_url/$archive" "$work/$archive"
fetch "$base_url/$archive.sha256" "$work/$archive.sha256"
expected=$(cut -d' ' -f1 <"$work/$archive.sha256" | tr 'A-F' 'a-f')
actual=$(sha256 "$work/$archive")
case $expected in
  *[!0-9a-f]* | '') say "$archive.sha256 holds no SHA-256"; exit 1 ;;
esac
if [ "${#expected}" -ne 64 ] || [ "$expected" != "$actual" ]; then
  say "checksum mismatch for $archive: expected $expected, got $actual; nothing was installed"
  exit 1
fi

mkdir -p "$work/unpacked"
tar -xzf "$work/$archive" -C "$work/unpacked"
if [ ! -f "$work/unpacked/staging" ]; then
  say "$archive holds no staging binary"; exit 1
fi
chmod 0755 "$work/unpacked/staging"
# A release that cannot even print its version on this machine is the wrong build.
if ! installed_version=$("$work/unpacked/staging" --version 2>/dev/null); then
  say "the staging in $archive does not run on this machine ($target)"; exit 1
fi
mkdir -p "$to"
# Into place by rename, so a running staging is never overwritten in the middle.
cp "$work/unpacked/staging" "$to/.staging.new"
mv -f "$to/.staging.new" "$to/staging"
say "installed $installed_version ($target) to $to/staging"
case ":${PATH:-}:" in
  *":$to:"*) ;;
  *) say "note: $to is not on PATH" ;;
esac
