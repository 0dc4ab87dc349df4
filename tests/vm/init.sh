#!/.bb/sh
# SPDX-License-Identifier: Apache-2.0
# tests/vm/init.sh - /init of the test VM (busybox sh; setup.sh packs it, run.sh boots it).
# Stage 1 copies the initramfs into a tmpfs and switch_roots there: pivot_root(2), which
# every sandbox uses, refuses to move the initial rootfs. With berthvm.root=initramfs it
# stays on the initramfs instead, as a diskless or PXE-booted node does, so the sandbox's
# fallback for such a root (MS_MOVE and chroot, isolator/mount.c) is what runs. Stage 2
# mounts /proc, /sys, /dev, loads the virtio and 9p modules, mounts the 9p shares (host /usr
# read-only on /usr, the repository and other dirs read-only at their host paths, the run's
# io dir read-write), mounts cgroups as berthvm.cg= asks (v2: pure cgroup2 with +cpu +io
# +memory +pids in the root, like systemd; v1: one hierarchy per controller, cpu,cpuacct
# joint; hybrid: v1 plus an empty cgroup2 at unified/, like our CI host), runs io/cmd and
# powers off. The exit status goes to io/rc and to the console line "BERTH-VM: DONE rc=N".
export PATH=/.bb
say() { echo "BERTH-VM: $*"; }

if [ "$1" != stage2 ]; then
    mount -t proc proc /proc
    ROOT=tmpfs
    for a in $(cat /proc/cmdline); do
        case "$a" in berthvm.root=*) ROOT=${a#*=} ;; esac
    done
    umount /proc
    if [ "$ROOT" = initramfs ]; then
        # the archive's top dir was setup.sh's private temp dir (0700); a real root is 0755
        chmod 0755 /
        exec /.bb/sh /init stage2
    fi
    mount -t tmpfs -o mode=0755 root /newroot
    for d in /.bb /modules /etc /init /bin /sbin /lib /lib64; do cp -a "$d" /newroot/; done
    mkdir -p /newroot/dev /newroot/proc /newroot/sys /newroot/tmp /newroot/run /newroot/usr \
        /newroot/root /newroot/var/tmp /newroot/mnt
    exec switch_root /newroot /init stage2
fi

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
# what udev/systemd provide on a real host (bash's process substitution needs /dev/fd)
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 run /run
chmod 1777 /var/tmp
hostname berth-vm
ip link set lo up 2>/dev/null

CG=v2; REPO=; SHARES=; IO=/run/berth-vm-io; ROOTFS=tmpfs
for a in $(cat /proc/cmdline); do
    case "$a" in
    berthvm.cg=*) CG=${a#*=} ;;
    berthvm.repo=*) REPO=${a#*=} ;;
    berthvm.shares=*) SHARES=${a#*=} ;;
    berthvm.root=*) ROOTFS=${a#*=} ;;
    esac
done

while read -r m; do insmod "/modules/$m.ko" || say "insmod $m failed"; done < /modules/order
for t in /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag; do
    [ -e "$t" ] || continue
    tag=$(tr -d '\0' < "$t")
    opts=trans=virtio,version=9p2000.L,msize=524288
    case "$tag" in
    hostusr) mount -t 9p -o "$opts,ro,cache=loose" hostusr /usr ;;
    io) mkdir -p "$IO" && mount -t 9p -o "$opts" io "$IO" ;;
    s[0-9]*) # read-only share number N: the Nth path of berthvm.shares
        d=$(echo "$SHARES" | cut -d, -f$((${tag#s} + 1)))
        [ -n "$d" ] && mkdir -p "$d" && mount -t 9p -o "$opts,ro,cache=loose" "$tag" "$d" ;;
    esac || say "mount 9p '$tag' failed"
done
[ -x /usr/bin/python3 ] || say "no host /usr in the guest (9p share 'hostusr' missing)"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/.bb

R=/sys/fs/cgroup
case "$CG" in
v2)
    mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $R
    echo "+cpu +io +memory +pids" > $R/cgroup.subtree_control
    ;;
v1 | hybrid)
    mount -t tmpfs -o mode=0755 cgroup_root $R
    for c in cpu,cpuacct memory pids devices freezer blkio cpuset; do
        mkdir -p $R/$c && mount -t cgroup -o $c cgroup $R/$c
    done
    ln -s cpu,cpuacct $R/cpu
    ln -s cpu,cpuacct $R/cpuacct
    if [ "$CG" = hybrid ]; then
        mkdir $R/unified && mount -t cgroup2 cgroup2 $R/unified
    fi
    ;;
esac
say "up in $(cut -d' ' -f1 /proc/uptime)s: kernel $(uname -r), cgroup $CG, $(nproc) cpus," \
    "$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB, root: $ROOTFS" \
    "($(awk '$5 == "/" { print $9; exit }' /proc/self/mountinfo))"

RC=125
if [ -f "$IO/cmd" ]; then
    cd "${REPO:-/}" && HOME=/root LANG=C.UTF-8 sh "$IO/cmd"
    RC=$?
    cd /
    echo "$RC" > "$IO/rc"
else
    say "no command (9p share 'io' missing)"
fi
say "DONE rc=$RC after $(cut -d' ' -f1 /proc/uptime)s"
sync
poweroff -f
