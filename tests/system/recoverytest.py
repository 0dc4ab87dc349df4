# SPDX-License-Identifier: Apache-2.0
"""tests/system/recoverytest.py - what the recovery tests share (test_recovery.py,
test_recovery_faults.py): starting and crashing an agent with a fault point, reading its
containers, its processes and dirs, and the consistency check every crash must pass."""

import http.client
import os
import re
import signal
import subprocess
import time

import berthtest as bt


ID_IN_PATH = re.compile(r"/(?:containers|sandboxes)/([0-9a-f]{16})(?:/|$|\x00| )")
API_ERRORS = (OSError, http.client.HTTPException)


# ---- helpers -------------------------------------------------------------------------------

def start(a, fault=None, extra=(), expect_up=True):
    """Start agent a again (same work_dir, socket, cgroup parent), optionally with
    BERTH_FAULT=fault and extra flags. expect_up=False: it must exit during start-up;
    returns its exit status."""
    saved_argv = list(a.argv)
    a.argv += list(extra)
    old = os.environ.get("BERTH_FAULT")
    if fault:
        os.environ["BERTH_FAULT"] = fault
    else:
        os.environ.pop("BERTH_FAULT", None)
    try:
        if expect_up:
            a.start()
            return 0
        return a.spawn().wait(15)
    finally:
        a.argv = saved_argv
        if old is None:
            os.environ.pop("BERTH_FAULT", None)
        else:
            os.environ["BERTH_FAULT"] = old


def crash(a):
    """SIGKILL the agent (tasks keep running)."""
    a.proc.kill()
    a.proc.wait(10)


def wait_died(a, timeout=15):
    """The agent is expected to kill itself at a fault point."""
    try:
        rc = a.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the agent did not die at its fault point:\n" + a.log[-3000:])
    assert rc == -signal.SIGKILL, "agent exit status %s, want SIGKILL:\n%s" % (rc, a.log[-3000:])
    assert "BERTH_FAULT: dying at" in a.log


def containers(a):
    st, body = a.get("/v1/containers")
    assert st == 200, body
    for c in body["containers"]:
        a.note(c)
    return body["containers"]


def cmdline(pid):
    return bt.read("/proc/%d/cmdline" % pid, "")


def proc_ids(a):
    """{pid: container id} of every process that names one of a's container dirs in its
    command line or cwd (executors, exec helpers, tasks)."""
    out = {}
    for pid in bt.procs_mentioning(a.work):
        if a.proc and pid == a.proc.pid:
            continue
        start = bt.proc_start_time(pid)
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            cwd = ""
        m = ID_IN_PATH.search(cmdline(pid)) or ID_IN_PATH.search(cwd + "/")
        if not m and not bt.alive(pid, start):
            continue  # a short-lived process that ended while we looked
        out[pid] = m.group(1) if m else None
    return out


def stdout(a, cid):
    """The task's output, read from its sandbox (works while the agent is down)."""
    return bt.read(os.path.join(a.work, "sandboxes", cid, "stdout"), "")


SUPERVISOR = "supervisor"  # the agent's cgroup for executors (agentd/agent.h)
FREEZE_HOLD = "freeze-hold"  # v1: the empty frozen cgroup (isolator/cgroup-v1.c host_setup)


def child_dirs(d):
    """The container cgroups below a parent (the executors' supervisor cgroup and v1's
    freeze hold are the agent's own)."""
    try:
        return {n for n in os.listdir(d)
                if os.path.isdir(os.path.join(d, n)) and n not in (SUPERVISOR, FREEZE_HOLD)}
    except FileNotFoundError:
        return set()


def check_consistent(a):
    """Every container is in exactly one truthful state and nothing is left that no record
    owns. Tasks may end while this runs: what must hold is checked between two listings
    (a container live in the second was live in the first; the agent serves one request
    at a time, so a listing never sees half a transition)."""
    first = containers(a)
    ids = [c["id"] for c in first]
    assert len(ids) == len(set(ids)), "a container is listed twice: %s" % ids
    live1 = {c["id"] for c in first if c["state"] not in bt.TERMINAL}
    # the hierarchies the agent uses (its parent exists there)
    cg = {k: child_dirs(d) for k, d in a.parent_dirs.items() if os.path.isdir(d)}
    procs = proc_ids(a)
    dirs = {s: set(os.listdir(os.path.join(a.work, s))) for s in ("containers", "sandboxes")}
    mounts = bt.mounts_mentioning(a.work)
    second = containers(a)
    assert [c["id"] for c in second] == ids, "records changed while nothing was launched"
    live2 = {c["id"]: c for c in second if c["state"] not in bt.TERMINAL}
    for key, names in cg.items():
        assert set(live2) <= names, "live containers without a cgroup in %s: %s" % (
            key, sorted(set(live2) - names))
    # an ended container's cgroups go once its end is on disk (release.c: after the sync
    # thread's fsync, retried while the kernel frees the last task), which can be just after
    # the listing showed it ended: only what is still there a moment later is left over
    def leftover():
        return {k: child_dirs(a.parent_dirs[k]) - live1 for k in cg}
    end = time.monotonic() + 5
    while any(leftover().values()) and time.monotonic() < end:
        time.sleep(0.05)
    for key, names in leftover().items():
        assert not names, "cgroups no live container owns in %s: %s (live %s)" % (
            key, sorted(names), sorted(live1))
    stray = {p: i for p, i in procs.items() if i not in live1}
    # one killed just before (its cgroup emptied, its exit not finished) may still be seen
    # on its way out: only one that is still there a moment later is left over
    starts = {p: bt.proc_start_time(p) for p in stray}
    end = time.monotonic() + 2
    while stray and time.monotonic() < end:
        stray = {p: i for p, i in stray.items() if bt.alive(p, starts[p])}
        time.sleep(0.05)
    # the agent's spare executors (agentd/spare.c) are no container's: one seen while it was
    # being spawned showed the agent's command line, with the work_dir in it
    sup = [os.path.join(d, SUPERVISOR) for d in a.parent_dirs.values()]
    spares = set().union(*(bt.cgroup_procs(d) for d in sup if os.path.isdir(d)))
    stray = {p: i for p, i in stray.items()
             if not (p in spares and cmdline(p).split("\0")[1:2] == ["--spare"])}
    assert not stray, "processes of no live container: %s" % {
        p: (i, bt.proc_comm(p), cmdline(p)[:120]) for p, i in stray.items()}
    for sub, names in dirs.items():
        assert names <= set(ids), "%s dirs without a record: %s" % (sub, sorted(names - set(ids)))
        assert set(live2) <= names, "live containers without a %s dir" % sub
    assert not mounts, "mounts left in our namespace: %s" % mounts
    for cid, c in live2.items():
        assert c["state"] == "RUNNING", c
        pid = c["pid"]
        # the executor lives in the agent's supervisor cgroup (its task in the container's)
        sup = [os.path.join(d, SUPERVISOR) for d in a.parent_dirs.values()]
        inside = pid in set().union(*(bt.cgroup_procs(d) for d in sup if os.path.isdir(d)))
        if not (bt.alive(pid) and inside):
            # killed just before (a kill completed at the restart returns at once and the
            # kernel ends the task after it): the agent learns it from the executor's end
            def ended():
                x = a.inspect(cid)
                return x if x["state"] in bt.TERMINAL else None
            try:
                now = bt.wait_for(ended, 5, what="container %s on its way out" % cid)
            except AssertionError:
                now = a.inspect(cid)
            assert now["state"] in bt.TERMINAL, \
                "RUNNING container %s: executor %s alive=%s in its cgroup=%s" % (
                    cid, pid, bt.alive(pid), inside)
    return {c["id"]: c for c in second}


def sh(cmd, **kw):
    """Keyword arguments of Agent.launch for a shell command."""
    return dict(shell=cmd, cpus=kw.pop("cpus", 0.05), mem=kw.pop("mem", "32MiB"), **kw)


def body(cmd, name, cpus=0.05, mem="32MiB"):
    """The POST /v1/containers body for a shell command."""
    return {"name": name, "command": {"shell": cmd}, "resources": {"cpus": cpus, "mem": mem}}


TICKER = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done"
BURNER = "while :; do :; done"
