#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/vm/run.sh [options] -- CMD... - boot the test VM once, run CMD in it, exit with its status.
#   --vm DIR          kernel and initramfs from setup.sh (default build/vm)
#   --cg v2|v1|hybrid cgroup layout in the guest (default v2)
#   --root tmpfs|initramfs  the guest's root: a tmpfs it switch_roots into (default), or the
#                     initramfs itself (rootfs, where pivot_root(2) fails: diskless nodes)
#   --mem MiB --smp N guest size (default 4096, 2)
#   --timeout SEC     kill the VM after SEC seconds (default 1200; exit 124)
#   --log FILE        keep the console log there (default: a temp file, removed on success)
#   --share DIR       also share DIR read-only at the same path (repeatable; e.g. a build dir
#                     outside the repository)
# CMD runs as root in the guest with `sh -c` in the repository (shared read-only at its host
# path, as is the host's /usr); /tmp and /var/tmp are the guest's own tmpfs. qemu runs under
# TCG (nested KVM does not work on our CI machine kind). The guest gets a 16 MiB scratch disk
# (/dev/vda) so device-access tests have a real block device to aim at. Exit: CMD's status;
# 124 when the VM timed out; 125 when it ended without running CMD.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VM=$REPO/build/vm
CG=v2; ROOTFS=tmpfs; MEM=4096; SMP=2; TMO=1200; LOG=
SHARES=("$REPO")
while [ $# -gt 0 ]; do
    case "$1" in
    --vm) VM=$2; shift ;;
    --cg) CG=$2; shift ;;
    --root) ROOTFS=$2; shift ;;
    --mem) MEM=$2; shift ;;
    --smp) SMP=$2; shift ;;
    --timeout) TMO=$2; shift ;;
    --log) LOG=$2; shift ;;
    --share) SHARES+=("$(cd "$2" && pwd)") || exit 2; shift ;;
    --) shift; break ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[ $# -gt 0 ] || { echo "usage: run.sh [options] -- CMD..." >&2; exit 2; }
case "$CG" in v2 | v1 | hybrid) ;; *) echo "run.sh: --cg v2|v1|hybrid" >&2; exit 2 ;; esac
case "$ROOTFS" in tmpfs | initramfs) ;; *) echo "run.sh: --root tmpfs|initramfs" >&2; exit 2 ;; esac
[ -f "$VM/vmlinux" ] && [ -f "$VM/initramfs.gz" ] ||
    { echo "run.sh: no kernel/initramfs in '$VM' (run tests/vm/setup.sh $VM)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null ||
    { echo "run.sh: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }

IO=$(mktemp -d /tmp/berth-vm-io.XXXXXX)
KEEP_LOG=1
[ -n "$LOG" ] || { LOG=$IO.log; KEEP_LOG=0; }
QPID=
cleanup() {
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
    rm -rf "$IO"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
printf '%s\n' "$*" > "$IO/cmd"
truncate -s 16M "$IO/disk.img"

# Read-only shares s0, s1, ... mounted by init.sh at the paths listed in berthvm.shares
# (comma-separated; the kernel command line splits on spaces, so paths must have none).
VIRTFS=(); SHARED=
for i in "${!SHARES[@]}"; do
    d=${SHARES[$i]}
    case "$d" in *[[:space:],]*) echo "run.sh: cannot share '$d' (space or comma)" >&2; exit 2 ;; esac
    VIRTFS+=(-virtfs "local,path=$d,mount_tag=s$i,security_model=none,readonly=on")
    SHARED+=${SHARED:+,}$d
done
# qemu64 (x86-64 baseline, what Debian builds for): ~25% faster than "max" under TCG, which
# emulates AVX and friends that glibc and python then pick (measured: pytest's import 5.4 s
# against 7.1 s, the cgroup tests 17.8 s against 23.6 s).
CPU=${BERTH_VM_CPU:-qemu64}
# v2 like a systemd host booted with the unified hierarchy only: no v1 controllers at all
NOV1=; [ "$CG" = v2 ] && NOV1=cgroup_no_v1=all

t0=$(date +%s.%N)
# The console goes through a pipe so we can follow it live and keep it (\r and terminal
# escapes of the firmware dropped).
qemu-system-x86_64 -accel tcg -cpu "$CPU" -m "$MEM" -smp "$SMP" \
    -nodefaults -nographic -no-reboot -serial stdio \
    -kernel "$VM/vmlinux" -initrd "$VM/initramfs.gz" \
    -append "console=ttyS0 loglevel=1 panic=-1 $NOV1 berthvm.cg=$CG berthvm.root=$ROOTFS berthvm.repo=$REPO berthvm.shares=$SHARED" \
    -virtfs local,path=/usr,mount_tag=hostusr,security_model=none,readonly=on \
    -virtfs "local,path=$IO,mount_tag=io,security_model=none" \
    "${VIRTFS[@]}" \
    -drive "file=$IO/disk.img,format=raw,if=virtio" \
    </dev/null > >(sed -u 's/\r$//; s/\x1b\[[0-9;?]*[a-zA-Z]//g' | tee "$LOG") 2>&1 &
QPID=$!
# bash's own timer: `timeout` would put qemu in another process group and lose ^C. It holds
# no pipe of ours (a leftover sleep would keep a caller's `| grep` waiting), and it takes
# its sleep with it when stopped.
(
    trap 'kill "$S" 2>/dev/null; exit 0' TERM
    sleep "$TMO" &
    S=$!
    wait "$S" && kill "$QPID" 2>/dev/null
) >/dev/null 2>&1 </dev/null &
TPID=$!
wait "$QPID"
QRC=$?
QPID=
kill "$TPID" 2>/dev/null; wait "$TPID" 2>/dev/null
sleep 0.2 # let tee drain the last console lines
WALL=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
if [ -f "$IO/rc" ]; then
    RC=$(cat "$IO/rc")
elif grep -q '^BERTH-VM: DONE' "$LOG"; then
    RC=125
else
    RC=124
    echo "run.sh: the VM did not finish within ${TMO}s (qemu status $QRC)"
fi
echo "run.sh: cgroup $CG, root $ROOTFS: status $RC after ${WALL}s (qemu status $QRC)"
[ "$RC" = 0 ] && [ "$KEEP_LOG" = 0 ] && rm -f "$LOG"
[ "$RC" != 0 ] && echo "run.sh: console log: $LOG"
exit "$RC"
