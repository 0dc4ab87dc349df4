#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/packages/boot-systemd.sh HOST_ROOT - pid 1 of fresh pid, mount, uts, cgroup and network
# namespaces inside the install test's Debian root (scenario.sh starts it with unshare): sets
# up what systemd-nspawn would give a container, then execs the root's own systemd, so the
# packaged berth-master.service runs under a real service manager with its sandboxing
# (systemd is not pid 1 on the host). What it changes stays in these namespaces:
# - cgroups: only a cgroup2 file system, rooted at this cgroup namespace (install-test.sh
#   made the cgroup below our own and scenario.sh moved us into it); the host's v1
#   hierarchies, which the agent uses from outside, are not visible here;
# - /sys and /proc/sys read-only (systemd then skips sysctl, binfmt and udev as in a
#   container), a /dev of its own (a few nodes, devpts, shm; /dev/console is a file, the log);
# - the network: its own namespace with only lo (systemd brings it up), so the master's
#   listener cannot collide with anything on the host; the agent and berthctl join it.
# - its root: the test root becomes the mount namespace's root (pivot_root), as in a
#   container: the kernel refuses user namespaces (PrivateUsers=) to chrooted processes.
# $container tells systemd it runs in a container. Usage: boot-systemd.sh HOST_ROOT, where
# HOST_ROOT is the test root's path on the host (a mount point: install-test.sh binds it).
set -euo pipefail
HOST_ROOT=$1

if [ "${2:-}" != stage2 ]; then
    # We start chrooted into the test root. Entering our own mount namespace again resets
    # root and cwd to the namespace's root (a private copy of the host's /): from there the
    # test root can be pivoted to.
    exec nsenter --mount=/proc/self/ns/mnt -- /bin/bash \
        "$HOST_ROOT/root/pkgtest/boot-systemd.sh" "$HOST_ROOT" stage2
fi
mount --make-rprivate /
cd "$HOST_ROOT"
pivot_root . .
umount -l .
cd /
umount -l /sys/fs/cgroup
mount -o remount,bind,ro /sys
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
mount -t proc -o nosuid,nodev,noexec proc /proc
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys

dev=$(mktemp -d /run/berth-pkgtest-dev.XXXXXX)
mount -t tmpfs -o mode=0755,nosuid,size=256k dev "$dev"
for n in null zero full random urandom tty; do
    touch "$dev/$n"
    mount --bind "/dev/$n" "$dev/$n"
done
: >/root/pkgtest/console.log
touch "$dev/console"
mount --bind /root/pkgtest/console.log "$dev/console"
mkdir "$dev/pts" "$dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$dev/pts"
ln -s pts/ptmx "$dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dev/shm"
ln -s /proc/self/fd "$dev/fd"
mount --move "$dev" /dev
rmdir "$dev"

# runtime masks (in /run, never in the root's files): no console to run a getty on; never
# load modules into the host's kernel from a test; no timers (apt-daily would take the dpkg
# lock from the scenario's apt-get, and timers leave stamps in /var/lib/systemd/timers)
mkdir -p /run/systemd/system
for u in console-getty.service getty@tty1.service systemd-modules-load.service timers.target; do
    ln -sf /dev/null "/run/systemd/system/$u"
done

exec env -i container=berth-pkgtest PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --unit=multi-user.target
