#!/bin/bash
# tests/packages/install-test.sh DEB UP_DEB - the install test of `make check-packages`: a
# fresh minimal Debian 12 root (mmdebstrap --variant=apt from Debian's archive, cached as a
# tarball in /var/cache/berth-pkgtest for a week) unpacked below /var/tmp, entered through
# new pid and mount namespaces (unshare) where /proc, /sys (with the host's cgroup mounts),
# /dev, a tmpfs /run and the .deb cache are mounted; scenario.sh runs there. When it ends
# the namespaces go and every process and mount with them; this script then checks that no
# mount, process or cgroup (berth-pkgtest-<pid>, below our own cgroups) is left.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
DEB=$1
UP_DEB=$2
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

cleanup() {
    local leaks=()
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
cp "$DEB" "$UP_DEB" "$HERE/scenario.sh" "$ROOT/root/pkgtest/"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# pid 1 of the new namespaces mounts what the root needs (all private to it) and runs the
# scenario; when it exits the kernel kills whatever is left and the mounts go with it
# shellcheck disable=SC2016 # the script expands its own arguments
unshare --mount --pid --fork --propagation private -- /bin/bash -euc '
    ROOT=$1 CACHE=$2
    # / must be a mount point, as on a real host: the executor makes it private (MS_REC)
    mount --bind "$ROOT" "$ROOT"
    mount -t proc -o nosuid,nodev,noexec proc "$ROOT/proc"
    mount --rbind /sys "$ROOT/sys"
    mount --rbind /dev "$ROOT/dev"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$ROOT/run"
    mount --bind "$CACHE/archives" "$ROOT/var/cache/apt/archives"
    chroot "$ROOT" /bin/bash /root/pkgtest/scenario.sh "/root/pkgtest/$3" "/root/pkgtest/$4" "$5"
' unshare-init "$ROOT" "$CACHE" "$(basename "$DEB")" "$(basename "$UP_DEB")" "$CGNAME"
status=0
