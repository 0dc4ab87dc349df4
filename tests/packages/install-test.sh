#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/packages/install-test.sh DEB UP_DEB MASTER_DEB MASTER_UP_DEB APPS_DEB APPS_UP_DEB - the
# install test of
# `make check-packages`: a fresh minimal Debian 12 root (mmdebstrap --variant=apt from
# Debian's archive, cached as a tarball in /var/cache/berth-pkgtest for a week) unpacked below
# /var/tmp, entered through new pid and mount namespaces (unshare) where /proc, /sys (with
# the host's cgroup mounts), /dev, a tmpfs /run, a private cgroup2 mount and the .deb cache
# are mounted; scenario.sh runs there as pid 1, and boots the root's systemd in namespaces
# of its own (boot-systemd.sh) with the cgroup2 cgroup berth-pkgtest-<pid>-systemd, below
# ours. When it ends the namespaces go and every process and mount with them; this script
# then checks that no mount, process or cgroup (berth-pkgtest-<pid>, below our own cgroups)
# is left, and removes the cgroup2 tree systemd left.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DEB=$1
UP_DEB=$2
MASTER_DEB=$3
MASTER_UP_DEB=$4
APPS_DEB=$5
APPS_UP_DEB=$6
CACHE=/var/cache/berth-pkgtest
TARBALL=$CACHE/bookworm-apt.tar
MIRROR=${BERTH_PKGTEST_MIRROR:-http://deb.debian.org/debian}
SECURITY=${BERTH_PKGTEST_SECURITY:-http://deb.debian.org/debian-security}
CGNAME=berth-pkgtest-$$
ROOT=
status=1

# our own cgroup directory in every hierarchy (the system tests' helper)
own_cgroup_dirs() {
    /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import berthtest
print("\n".join(berthtest.own_cgroup_dirs().values()))' "$REPO/tests/system"
}

# our cgroup in the cgroup2 hierarchy (0::PATH), under which systemd's cgroup is made
CG2_SELF=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
CG2_SELF=${CG2_SELF%/}

# remove_cgroup2_tree: systemd's cgroup2 tree (init.scope, system.slice ...), leaves first,
# through a cgroup2 mount of our own (the host need not have one mounted)
remove_cgroup2_tree() {
    local mnt
    mnt=$(mktemp -d /tmp/berth-pkgtest-cg2.XXXXXX)
    unshare --mount --propagation private /bin/sh -c '
        mount -t cgroup2 cgroup2 "$1" || exit 0
        d=$1$2
        [ -d "$d" ] || exit 0
        if [ -n "$(find "$d" -name cgroup.procs -exec cat {} +)" ]; then
            echo "processes left in cgroup2 $2" >&2
            exit 1
        fi
        find "$d" -depth -type d -exec rmdir {} +
    ' sh "$mnt" "$CG2_SELF/$CGNAME-systemd"
    local r=$?
    rmdir "$mnt"
    return $r
}

cleanup() {
    local leaks=()
    remove_cgroup2_tree || leaks+=("cgroup2 $CG2_SELF/$CGNAME-systemd")
    if [ -n "$ROOT" ] && grep -qF " $ROOT" /proc/self/mountinfo; then
        leaks+=("mounts below $ROOT in the host's namespace")
    fi
    local d
    while read -r d; do
        [ -d "$d/$CGNAME" ] || continue
        leaks+=("cgroup $d/$CGNAME")
        # kill what is left in it, then remove it leaves first
        find "$d/$CGNAME" -name cgroup.procs -exec cat {} + 2>/dev/null |
            while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done
        sleep 0.2
        find "$d/$CGNAME" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done < <(own_cgroup_dirs)
    if [ -n "$ROOT" ] && ! grep -qF " $ROOT" /proc/self/mountinfo; then
        rm -rf --one-file-system "$ROOT"
    fi
    if [ ${#leaks[@]} -gt 0 ]; then
        printf 'LEAK: %s\n' "${leaks[@]}" >&2
        status=1
    fi
    if [ "$status" = 0 ]; then
        echo "install test passed; no mount, process or cgroup left"
    fi
    exit "$status"
}
trap cleanup EXIT

mkdir -p "$CACHE/archives/partial"
if [ ! -s "$TARBALL" ] || [ -n "$(find "$TARBALL" -mtime +7)" ]; then
    echo "-- mmdebstrap: a minimal Debian 12 root (cached in $TARBALL)"
    mmdebstrap --quiet --mode=root --variant=apt --format=tar bookworm "$TARBALL.tmp" \
        "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
        "deb $SECURITY bookworm-security main"
    mv "$TARBALL.tmp" "$TARBALL"
fi
ROOT=$(mktemp -d "/var/tmp/$CGNAME.XXXXXX")
tar -xf "$TARBALL" -C "$ROOT" --numeric-owner
install -d -m 0700 "$ROOT/root/pkgtest"
cp "$DEB" "$UP_DEB" "$MASTER_DEB" "$MASTER_UP_DEB" "$APPS_DEB" "$APPS_UP_DEB" \
    "$HERE/scenario.sh" "$HERE/scenario-apps.sh" "$HERE/boot-systemd.sh" "$ROOT/root/pkgtest/"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# pid 1 of the new namespaces mounts what the root needs (all private to it) and becomes the
# scenario, chrooted (systemctl refuses to act from a chroot: pid 1 must share our root);
# when it exits the kernel kills whatever is left and the mounts go with it
# shellcheck disable=SC2016 # the script expands its own arguments
unshare --mount --pid --fork --kill-child --propagation private -- /bin/bash -euc '
    ROOT=$1 CACHE=$2 CG2=$3
    # / must be a mount point, as on a real host: the executor makes it private (MS_REC)
    mount --bind "$ROOT" "$ROOT"
    mount -t proc -o nosuid,nodev,noexec proc "$ROOT/proc"
    mount --rbind /sys "$ROOT/sys"
    mount --rbind /dev "$ROOT/dev"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$ROOT/run"
    mount --bind "$CACHE/archives" "$ROOT/var/cache/apt/archives"
    # the cgroup2 hierarchy, for systemd (the host may mount only v1 hierarchies)
    mkdir "$ROOT/run/berth-pkgtest-cgroup2"
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$ROOT/run/berth-pkgtest-cgroup2"
    mkdir "$ROOT/run/berth-pkgtest-cgroup2$CG2"
    exec chroot "$ROOT" /bin/bash /root/pkgtest/scenario.sh "/root/pkgtest/$4" "/root/pkgtest/$5" \
        "/root/pkgtest/$6" "/root/pkgtest/$7" "$8" "/run/berth-pkgtest-cgroup2$CG2" "$ROOT" \
        "/root/pkgtest/$9" "/root/pkgtest/${10}"
' unshare-init "$ROOT" "$CACHE" "$CG2_SELF/$CGNAME-systemd" "$(basename "$DEB")" \
    "$(basename "$UP_DEB")" "$(basename "$MASTER_DEB")" "$(basename "$MASTER_UP_DEB")" "$CGNAME" \
    "$(basename "$APPS_DEB")" "$(basename "$APPS_UP_DEB")"
status=0
