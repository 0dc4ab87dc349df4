#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/packages/run.sh PKG_B VERSION - `make check-packages` (as root): builds the .debs of
# berth-agent, berth-master and berth-apps, a second set with a higher version and the signed .rpms
# into PKG_B/check, checks them statically (test_packages.py: lintian, rpmlint, rpm -qp,
# systemd-analyze verify and security, manual pages, completion, conffiles), then installs,
# runs, upgrades and purges the .debs in a fresh Debian 12 root, the master and berth-apps
# under systemd (install-test.sh). Prints the time of each phase.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PKG_B=$1
VERSION=$2
UP_VERSION=$VERSION+pkgtest1
T=$PKG_B/check

if [ "$(id -u)" != 0 ]; then
    echo "check-packages: needs root (a chroot, mounts in a private namespace, cgroups)" >&2
    exit 1
fi

t0=$(date +%s)
phase() {
    local now
    now=$(date +%s)
    printf '== [%4ss] %s\n' "$((now - t0))" "$*"
}

phase "build: .debs $VERSION, .debs $UP_VERSION (the upgrade), signed .rpms $VERSION"
rm -rf "${T:?}/gnupg" "${T:?}/rpmdb" "${T:?}/home"
mkdir -p "$T/gnupg" "$T/home"
chmod 0700 "$T/gnupg"
export GNUPGHOME=$T/gnupg
cleanup_gpg() { gpgconf --kill gpg-agent 2>/dev/null || true; }
trap cleanup_gpg EXIT
# a throwaway key: proves the .rpm can be signed (RPM_SIGN_KEY) and lets rpmlint see a
# signature it can check against a private rpm database
KEY=pkgtest@berth.invalid
gpg --batch --quiet --passphrase '' --quick-gen-key "berth package test <$KEY>" rsa3072 sign 1d \
    2>/dev/null
gpg --batch --export --armor "$KEY" >"$T/RPM-GPG-KEY-berth-pkgtest"
# each build prints its packages' paths, berth-agent's first
out=$(bash "$REPO/packaging/deb/build.sh" "$T" "$VERSION")
DEB=$(sed -n 1p <<<"$out") MASTER_DEB=$(sed -n 2p <<<"$out") APPS_DEB=$(sed -n 3p <<<"$out")
LB_DEB=$(sed -n 4p <<<"$out")
out=$(bash "$REPO/packaging/deb/build.sh" "$T/upgrade" "$UP_VERSION")
UP_DEB=$(sed -n 1p <<<"$out") MASTER_UP_DEB=$(sed -n 2p <<<"$out")
APPS_UP_DEB=$(sed -n 3p <<<"$out") LB_UP_DEB=$(sed -n 4p <<<"$out")
# (rpmsign warns that it cannot set GPG_TTY: there is no terminal, and no passphrase either)
out=$(RPM_SIGN_KEY=$KEY bash "$REPO/packaging/rpm/build.sh" "$T" "$VERSION" \
    2> >(grep -v 'Could not set GPG_TTY' >&2))
RPM=$(sed -n 1p <<<"$out") MASTER_RPM=$(sed -n 2p <<<"$out") APPS_RPM=$(sed -n 3p <<<"$out")
LB_RPM=$(sed -n 4p <<<"$out")
# rpmlint runs `rpm -Kv`: give it a database holding only the throwaway key
rpm --dbpath "$T/rpmdb" --initdb
rpm --dbpath "$T/rpmdb" --import "$T/RPM-GPG-KEY-berth-pkgtest"
echo "%_dbpath $T/rpmdb" >"$T/home/.rpmmacros"
ls -l "$DEB" "$MASTER_DEB" "$APPS_DEB" "$LB_DEB" "$UP_DEB" "$MASTER_UP_DEB" "$APPS_UP_DEB" \
    "$LB_UP_DEB" "$RPM" "$MASTER_RPM" "$APPS_RPM" "$LB_RPM"

phase "static checks (tests/packages/test_packages.py)"
export BERTH_PKG_DEB=$DEB BERTH_PKG_UP_DEB=$UP_DEB BERTH_PKG_RPM=$RPM \
    BERTH_PKG_MASTER_DEB=$MASTER_DEB BERTH_PKG_MASTER_UP_DEB=$MASTER_UP_DEB \
    BERTH_PKG_MASTER_RPM=$MASTER_RPM BERTH_PKG_APPS_DEB=$APPS_DEB \
    BERTH_PKG_APPS_UP_DEB=$APPS_UP_DEB BERTH_PKG_APPS_RPM=$APPS_RPM \
    BERTH_PKG_LB_DEB=$LB_DEB BERTH_PKG_LB_UP_DEB=$LB_UP_DEB BERTH_PKG_LB_RPM=$LB_RPM \
    BERTH_PKG_DIR=$T BERTH_PKG_RPMLINT_HOME=$T/home \
    BERTH_PKG_BUILD=$T/build
# shellcheck disable=SC2086 # PYTEST_ARGS holds several words
/usr/bin/python3 -m pytest -v -p no:cacheprovider "$HERE/test_packages.py" "$HERE/test_packages_docs.py" \
    ${PYTEST_ARGS:-}

phase "install test: fresh Debian 12 root, apt install, run (the master and berth-apps under systemd), upgrade, purge"
bash "$HERE/install-test.sh" "$DEB" "$UP_DEB" "$MASTER_DEB" "$MASTER_UP_DEB" "$APPS_DEB" \
    "$APPS_UP_DEB"

phase "check-packages passed"
