#!/usr/bin/env bash
# ensure-deps.sh PKG... — install the named Debian packages when any is missing.
# Used by the Makefile so that `make test` and `make e2e` work on a fresh
# Debian/Ubuntu machine. On other systems it names what to install and fails.
# "a|b" names alternatives (Debian's chromium, Ubuntu's chromium-browser): one
# installed is enough, else the first one apt knows is installed.
set -euo pipefail
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for spec in "$@"; do
	IFS='|' read -r -a alts <<<"$spec"
	ok=""
	for p in "${alts[@]}"; do installed "$p" && ok=1 && break; done
	[ -n "$ok" ] || missing+=("$spec")
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
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
pkgs=()
for spec in "${missing[@]}"; do
	IFS='|' read -r -a alts <<<"$spec"
	pick=""
	for p in "${alts[@]}"; do
		if apt-cache show "$p" >/dev/null 2>&1; then pick=$p; break; fi
	done
	[ -n "$pick" ] || { echo "hoplab: apt knows none of: $spec" >&2; exit 1; }
	pkgs+=("$pick")
done
echo "hoplab: installing ${pkgs[*]} with apt-get" >&2
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
