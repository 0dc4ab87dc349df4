#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/vm/check.sh [--if-possible] BUILD_DIR - `make check-vm`: run the system test suite
# (tests/system, against the binaries in BUILD_DIR) inside the throw-away VM, once on a pure
# cgroup2 kernel and once on cgroup v1 (BERTH_VM_CG="v2 v1" by default; "hybrid" works too),
# plus a short run of the sandbox tests on a guest whose root is the initramfs (issue #19;
# BERTH_VM_INITRAMFS=0 leaves it out), all at once, and report each run's wall time. Installs qemu-system-x86 and cpio (root, Debian archive),
# builds BUILD_DIR/vm with setup.sh (kernel and busybox cached in $BERTH_VM_CACHE), boots
# with run.sh. --if-possible (`make check`): when qemu cannot be installed or the kernel
# cannot be fetched, print one line saying why the VM suite was not run and exit 0.
# BERTH_VM_PYTEST adds pytest arguments (e.g. "-k limits").
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SOFT=0
[ "${1:-}" = --if-possible ] && { SOFT=1; shift; }
BUILD=$(cd "${1:?usage: check.sh [--if-possible] BUILD_DIR}" && pwd) || exit 2

not_run() {
    echo "check-vm: the cgroup v2/v1 VM suite was NOT run: $*"
    [ "$SOFT" = 1 ] && exit 0
    exit 1
}

if ! bash "$REPO/tests/install-deps.sh" qemu-system-x86 cpio >"$BUILD/vm-deps.log" 2>&1; then
    not_run "qemu-system-x86 could not be installed ($(tail -1 "$BUILD/vm-deps.log"))"
fi
if ! bash "$HERE/setup.sh" "$BUILD/vm" >"$BUILD/vm-setup.log" 2>&1; then
    not_run "no guest kernel ($(tail -1 "$BUILD/vm-setup.log"))"
fi
tail -1 "$BUILD/vm-setup.log"

# The guest's share list: the repository, and the build dir when it lives elsewhere.
SHARE=()
case "$BUILD/" in "$REPO"/*) ;; *) SHARE=(--share "$BUILD") ;; esac

# Left out in the VM, each for a reason (they all run on the host in `make check-system`).
# Every other test file runs, so a new one is proven on v2 and v1 by default. Under TCG the
# suite costs ~10 times the host's time, and `make check` runs it twice.
IGNORE=(
    # no cgroup or sandbox code under test: request validation, docs, bash completion, the
    # terminal UI in tmux, sd_notify readiness, sandbox directory GC
    tests/system/test_api_errors.py tests/system/test_docs.py tests/system/test_completion.py
    tests/system/test_top.py tests/system/test_notify.py tests/system/test_gc.py
    # the master's scheduling and its 300-task chaos run (~3 min under TCG); the agent side of
    # every launch it makes is what the other files prove
    tests/system/test_master.py
    # the master's offers, DRF, roles and the scheduler API's chaos run (issue #14): the master's
    # books, no cgroup-version code; test_sched_seed.py stays, it reads the kernel's files of
    # the seed's two tasks (cpu.max and memory.max on v2)
    tests/system/test_sched_chaos.py tests/system/test_sched_drf.py
    tests/system/test_sched_offers.py tests/system/test_sched_roles.py
    # berth-apps (issue #16) and berthctl's app verbs: a framework over the scheduler API
    # (deployments, backoff, constraints; ~80 s on the host, python servers at 0.25 CPU), no
    # cgroup-version code; the agent side of its launches is what the other files prove, and
    # test_sched_seed.py runs a framework's launches through the master in the VM
    tests/system/test_apps.py tests/system/test_apps_cli.py
    # berth-apps' event stream and app endpoints (issue #17): the same framework's books and
    # sse/'s hub, no cgroup-version code
    tests/system/test_apps_events.py
    # berth-lb (issue #17): HAProxy driven from berth-apps' events, timed to 1 s and under
    # 200 requests/s for 60 s; HAProxy and the instances are ordinary processes, no
    # cgroup-version code (and the VM image has no haproxy)
    tests/system/test_lb.py
    # 540 launches timed by the supervisor cgroup's CPU (issue #18): minutes under TCG, where
    # a request of the batch can outwait its 30 s; the spawn it times (CLONE_FILES, clone3 on
    # v2) is in every launch of the other files
    tests/system/test_launch_scaling.py
    # berth-master's event stream (issue #17): the master's hub and its bounds, ~90 s under
    # TCG; the agent under it launches and kills as every other file's does
    tests/system/test_master_events.py
    # the agent's WAL sync thread and checkpoints (issue #18): SQLite and the loop, each test
    # waiting out a disk slowed 8 times over (~130 s under TCG), no cgroup-version code;
    # restarts with live tasks in their cgroups are test_recovery.py's, which runs
    tests/system/test_store_sync.py
)
DESELECT=(
    # the agent's crash-point walk (~100 s under TCG) and 200 launches with random agent kills
    # (~140 s): the agent's state machine, no cgroup-version code of its own; restarts with
    # live tasks, endings while down (an OOM among them) and orphan cgroups do run
    "tests/system/test_recovery_faults.py::test_fault_point["
    tests/system/test_recovery_faults.py::test_200_launches_with_random_agent_kills
    # compares the cgroup's CPU time (which includes the executor's own set-up, ~0.1 CPU-s
    # under TCG) with the task's alone within 3%
    tests/system/test_resources.py::test_cpu_seconds_are_true
    # a 3 GiB log and 2 GiB through a follower that never reads (~150 s under TCG): the
    # agent's log relay and loop, no cgroup-version code
    tests/system/test_hostile.py::test_tail_does_not_hold_the_loop
    tests/system/test_hostile.py::test_a_follower_that_stops_reading_costs_the_agent_nothing
    # the master's registry bound (~30 s under TCG): the master's books
    tests/system/test_hostile.py::test_the_master_registry_is_bounded
)
ARGS=()
for t in "${IGNORE[@]}"; do ARGS+=("--ignore='$t'"); done
for t in "${DESELECT[@]}"; do ARGS+=("--deselect '$t'"); done

# Inside: root, cwd = the repository (read-only), /var/tmp a tmpfs of the guest's own.
# BERTH_TEST_SLOW scales the suite's waits and latency bounds (berthtest.SLOW): code runs
# 5-10 times slower under TCG, a task at 0.25 CPU even more so. Limits are never scaled.
PYTEST="BERTH_BUILD=$BUILD BERTH_TEST_TMP=/var/tmp BERTH_TEST_SLOW=${BERTH_TEST_SLOW:-8} \
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -p no:cacheprovider -v -rs \
--durations=${BERTH_VM_DURATIONS:-5}"
# The guest's init leaves the soft RLIMIT_NOFILE at 1024 (berth-agent.service sets 1048576):
# ~12 fds per live task, so test_ports.py's range of tasks would run the agent out of them.
suite() { echo "ulimit -n 65536; $PYTEST ${ARGS[*]} $* ${BERTH_VM_PYTEST:-} tests/system"; }
CMD=$(suite)
# The v1 run leaves out also what has no cgroup code under test and runs on v2 in the VM (the
# other kernel) and on the host (v1 too, with cpu and cpuacct apart): the bridge network and
# its health checks, node attributes, the API contract. ~240 s of its ~1100 s, so the v2
# run, the longest, shares the CPUs with less. (Ports and trust stay: ports-watch.c reads
# the task's cgroup for its processes.)
V1_IGNORE=(tests/system/test_network.py tests/system/test_health_bridge.py
    tests/system/test_attributes.py tests/system/test_contract.py)
V1_ARGS=()
for t in "${V1_IGNORE[@]}"; do V1_ARGS+=("--ignore='$t'"); done
V1_CMD=$(suite "${V1_ARGS[@]}")
# The initramfs run: the guest stays on its initramfs (rootfs), where pivot_root(2) fails and
# the sandbox is moved onto "/" instead (isolator/mount.c, mnt_move_root); what that changes
# is the sandbox's root and `berthctl exec`'s way into it, so only those tests (~1 min).
INITRAMFS_CMD="$PYTEST tests/system/test_sandbox.py tests/system/test_cli.py::test_exec_runs_inside"

# Both layouts boot at once (BERTH_VM_JOBS=2, the default; 1 runs them one after the other
# with the console on stdout): the guests mostly wait, so two share our 2 CPUs well (measured
# 6m23s for both against 8m52s in turn). Each console goes to a log, shown on failure.
# The runs: NAME CG ROOT; NAME "initramfs" runs INITRAMFS_CMD, the others the suite.
RUNS=()
for cg in ${BERTH_VM_CG:-v2 v1}; do RUNS+=("$cg $cg tmpfs"); done
[ "${BERTH_VM_INITRAMFS:-1}" != 0 ] && RUNS+=("initramfs v2 initramfs")
JOBS=${BERTH_VM_JOBS:-2}
LOGDIR=$(mktemp -d "$BUILD/vm-consoles.XXXXXX") # kept there when a run fails
run_one() { # run_one NAME CG ROOT: boot, run, leave "status seconds" in LOGDIR/NAME.rc
    local name=$1 cg=$2 root=$3 t0 r cmd=$CMD
    [ "$name" = initramfs ] && cmd=$INITRAMFS_CMD
    [ "$name" = v1 ] && cmd=$V1_CMD
    t0=$(date +%s)
    bash "$HERE/run.sh" --vm "$BUILD/vm" --cg "$cg" --root "$root" \
        --timeout "${BERTH_VM_TIMEOUT:-1800}" --log "$LOGDIR/$name.log" "${SHARE[@]}" -- "$cmd"
    r=$?
    echo "$r $(($(date +%s) - t0))" > "$LOGDIR/$name.rc"
}
describe() { # describe NAME CG ROOT
    if [ "$1" = initramfs ]; then
        echo "sandbox tests in the VM on cgroup $2 with the initramfs as root"
    else
        echo "system tests in the VM on cgroup $2"
    fi
}
if [ "$JOBS" -gt 1 ]; then
    # the initramfs run is short: it shares the CPUs with the long ones for a minute
    for run in "${RUNS[@]}"; do
        set -- $run
        echo "== check-vm: $(describe "$@") (console: $LOGDIR/$1.log)"
        run_one "$@" > "$LOGDIR/$1.out" 2>&1 &
    done
    wait
else
    for run in "${RUNS[@]}"; do
        set -- $run
        echo "== check-vm: $(describe "$@")"
        run_one "$@"
    done
fi
RC=0
for run in "${RUNS[@]}"; do
    set -- $run
    read -r r secs < "$LOGDIR/$1.rc" || { r=125; secs=0; }
    if [ "$r" != 0 ]; then
        RC=1
        [ "$JOBS" -gt 1 ] && { echo "== $1:"; grep -v '^\[' "$LOGDIR/$1.log" | tail -60; }
    fi
done
for run in "${RUNS[@]}"; do
    set -- $run
    read -r r secs < "$LOGDIR/$1.rc" || { r=125; secs=0; }
    what="cgroup $2"
    [ "$1" = initramfs ] && what="initramfs root (cgroup $2, sandbox tests)"
    echo "check-vm: $what: $([ "$r" = 0 ] && echo passed || echo "FAILED (status $r)") in ${secs}s"
done
[ $RC = 0 ] && rm -rf "$LOGDIR" || echo "check-vm: consoles kept in $LOGDIR"
exit $RC
