#!/usr/bin/env bash
# ensure-deps.sh PKG... — install the named Debian packages when any is missing.
# Used by the Makefile so that `make test` and `make e2e` work on a fresh
# Debian/Ubuntu machine. On other systems it names what to install and fails.
set -euo pipefail
missing=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
	echo "hoplab: missing packages: ${missing[*]}" >&2
	echo "hoplab: this is not a Debian/Ubuntu system; install their equivalents by hand and retry." >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "hoplab: need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
	sudo="sudo"
fi
echo "hoplab: installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
