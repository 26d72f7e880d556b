#!/usr/bin/env bash
# Installs the Debian packages fovea needs. "check" installs only what is
# missing (as root) or prints the exact apt-get line to run; "install" always
# runs apt-get for the missing ones. Exit 0 when everything is present.
set -u
mode=$1; shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "fovea: missing Debian packages; run as root:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "fovea: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
  echo "fovea: apt-get install failed for: ${missing[*]}" >&2; exit 1; }
[ "$mode" = check ] || [ "$mode" = install ] || true
