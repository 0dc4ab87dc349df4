#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/bench/crun_ns.sh BUNDLE STATE_DIR EMPTY_FILE RUNS OUT.json - benchmark (b), run by
# run.sh under `unshare -m --propagation private`: every mount below dies with this mount
# namespace. It makes crun 1.8.1 accept the hybrid cgroup layout, roots each hierarchy at
# our own cgroup (so crun's cgroups nest under ours), then times `crun run` with timecmd.py
# (3 warm-up runs, RUNS timed, a unique container id per run). With KILL_SOCK=SOCK in the
# environment it runs crun_kill.py instead (b2: kill -> end, berth on SOCK and crun in turns).
set -euo pipefail
BUNDLE=$1 STATE=$2 EMPTY=$3 RUNS=$4 OUT=$5
CG=/sys/fs/cgroup

# crun 1.8.1 treats a hybrid host whose cgroup2 mount lists controllers as unsupported.
if [ -e "$CG/unified/cgroup.controllers" ]; then
    mount --bind "$EMPTY" "$CG/unified/cgroup.controllers"
fi
# crun's cgroupfs manager puts cgroupsPath under each hierarchy's mount point; bind our
# own cgroup over the mount point so nothing is created (or moved) outside our cgroups.
while IFS=: read -r _ ctrl path; do
    [ "$path" = / ] && continue
    case $ctrl in
    '') dir=$CG/unified ;;
    name=*) dir=$CG/${ctrl#name=} ;;
    *) dir=$CG/$ctrl ;;
    esac
    [ -d "$dir$path" ] && mount --bind "$dir$path" "$dir"
done </proc/self/cgroup

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -n "${KILL_SOCK:-}" ]; then  # (b2): kill -> end against berth's, OUT a markdown body
    exec /usr/bin/python3 "$HERE/crun_kill.py" "$KILL_SOCK" "$BUNDLE" "$STATE" "$RUNS" "$OUT"
fi
exec /usr/bin/python3 "$HERE/timecmd.py" "$OUT" 3 "$RUNS" \
    crun --root "$STATE" --cgroup-manager=cgroupfs run --bundle "$BUNDLE" "bench-$$-{n}"
