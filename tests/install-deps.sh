#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/install-deps.sh PKG... - install the Debian packages that are missing (as root only).
# `make check`, `make demo` and `make bench` call it, so a fresh Debian 12 machine needs
# nothing but make.
set -euo pipefail
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# wait for another apt/dpkg run (a concurrent build's) instead of failing on its lock
LOCK=(-o DPkg::Lock::Timeout=600)
# the first try's output (a stale package index fails it) is not worth keeping
log=$(mktemp /tmp/berth-apt.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! apt-get "${LOCK[@]}" install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    apt-get "${LOCK[@]}" update -q >/dev/null
    apt-get "${LOCK[@]}" install -y -q --no-install-recommends "${missing[@]}"
fi
