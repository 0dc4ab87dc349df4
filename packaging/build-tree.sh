#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# packaging/build-tree.sh PKG_B VERSION - builds the binaries the packages ship, into
# PKG_B/build, with Debian's hardening flags (dpkg-buildflags, hardening=+all: fortify,
# stack protector, relro, bindnow, PIE) and without sanitizers. deb/build.sh and
# rpm/build.sh call it and then stage with `make install`. A change of version or flags
# rebuilds from scratch (objects do not depend on -DBERTH_VERSION by themselves).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PKG_B=$1
VERSION=$2
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CFLAGS)"
CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)"
LDFLAGS="$(dpkg-buildflags --get LDFLAGS)"
export CFLAGS CPPFLAGS LDFLAGS
stamp="$PKG_B/build/.buildinfo"
want="version=$VERSION cflags=$CFLAGS cppflags=$CPPFLAGS ldflags=$LDFLAGS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$PKG_B/build"
fi
mkdir -p "$PKG_B/build"
# flags go through the environment: the Makefile appends its own (-std, -I., -D...) to them
make -C "$REPO" -s --no-print-directory SAN=0 B="$PKG_B/build" VERSION="$VERSION" \
    "$PKG_B/build/berth-agent" "$PKG_B/build/berth-executor" "$PKG_B/build/berthctl" \
    "$PKG_B/build/agent.conf" "$PKG_B/build/man/berth-agent.conf.5" \
    "$PKG_B/build/berth-master" "$PKG_B/build/master.conf" "$PKG_B/build/man/berth-master.conf.5" \
    "$PKG_B/build/berth-apps" "$PKG_B/build/apps.conf" "$PKG_B/build/man/berth-apps.conf.5" \
    "$PKG_B/build/berth-lb" "$PKG_B/build/lb.conf" "$PKG_B/build/man/berth-lb.conf.5"
echo "$want" >"$stamp"
