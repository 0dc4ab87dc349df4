# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_priority.py - issue #18: the agent's loop runs 10 nice levels above the
rest of the agent (agentd/main.c, common/util.c thread_raise_priority): under a burst of
launches its helpers (the spawner, the spares being made, the threads) kept it waiting for a
CPU. Nothing else gets that priority: the agent's other threads, every process it starts
(executors, spares, `berthctl exec`, command health checks) and so every task run at the
priority the agent was started with. The thread that makes the next launch's dirs runs at
SCHED_IDLE. The kernel's word is /proc/PID/task/TID/stat's nice and sched_getscheduler."""

import os

import berthtest as bt

from test_spare import wait_spares


def nice_of(path):
    """Field 19 of a stat file: the nice value (fields counted after the comm's ')'); None
    once the process is gone."""
    text = bt.read(path, "")
    return int(text[text.rindex(")") + 2:].split()[16]) if ")" in text else None


def nices(pids):
    """The nice values of those of pids still running (a health check's may have ended)."""
    return [n for n in (nice_of("/proc/%d/stat" % p) for p in pids) if n is not None]


def threads(pid):
    """{tid: (name, nice)} of pid's threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        out[int(tid)] = (bt.read(base + "comm", "").strip(), nice_of(base + "stat"))
    return out


def test_the_loop_alone_runs_above_the_agent(agent_factory):
    base = os.getpriority(os.PRIO_PROCESS, 0)  # what the agent starts with, as our child
    a = agent_factory()
    pid = a.proc.pid
    c = a.launch(shell="sleep 600", health_check={
        "type": "command", "command": {"shell": "cut -d' ' -f19 /proc/self/stat > hc.nice"},
        "interval": 0.3, "timeout": 5, "grace": 0})
    run = a.wait_state(c["id"], "RUNNING")
    # the sync thread starts at the first durable commit (the launch's), and a new thread
    # has the loop's priority until its first step (thread_start_quiet's) restores it
    seen = {}

    def settled():
        t = seen["threads"] = threads(pid)
        names = {n for n, _ in t.values()}
        helpers = [n for tid, (_, n) in t.items() if tid != pid]
        want = {"berth-sync", "berth-spawner", "berth-ready"}
        return t if want <= names and all(n == base for n in helpers) else None
    try:
        ts = bt.wait_for(settled, 10, what="the agent's threads")
    except AssertionError:
        raise AssertionError("threads {tid: (name, nice)}: %s, the agent's start at nice %d"
                             % (seen.get("threads"), base)) from None
    assert ts[pid][1] == max(base - 10, -20), ("the loop's nice", base, ts)
    # the thread making the next launch's dirs takes only idle CPU time (agentd/ready.c:
    # the executor woken on the other CPU waited for it); the rest are time-shared
    for tid, (name, _) in ts.items():
        want = os.SCHED_IDLE if name == "berth-ready" else os.SCHED_OTHER
        assert os.sched_getscheduler(tid) == want, (name, os.sched_getscheduler(tid))
    # the executor and the task
    assert nice_of("/proc/%d/stat" % run["pid"]) == base
    got = nices(a.procs(c["id"]))
    assert got and all(n == base for n in got), got
    for p in [run["pid"]] + a.procs(c["id"]):
        assert os.sched_getscheduler(p) == os.SCHED_OTHER, p
    # a command health check, spawned by the loop
    out = bt.wait_for(lambda: bt.read(os.path.join(a.sandbox(c["id"]), "hc.nice"), "").strip(),
                      10, what="the health check's nice")
    assert int(out) == base, out
    # berthctl exec's process, spawned by the loop too
    r = a.ctl("exec", c["id"], "--", "/bin/cat", "/proc/self/stat", timeout=20)
    assert r.returncode == 0, r
    assert int(r.stdout[r.stdout.rindex(")") + 2:].split()[16]) == base, r.stdout
    # the spares waiting for the next launches
    for p in wait_spares(a):
        assert nice_of("/proc/%d/stat" % p) == base, p


def test_the_tasks_priority_is_the_agents_start(agent_factory):
    """An agent started at nice 5 (e.g. a unit's Nice=5) runs its loop at -5, and its tasks
    at 5, as before."""
    a = agent_factory(start=False)
    a.argv = ["nice", "-n", "5"] + a.argv
    a.start()
    c = a.launch(shell="sleep 600")
    a.wait_state(c["id"], "RUNNING")
    assert nice_of("/proc/%d/stat" % a.proc.pid) == -5
    got = nices(a.procs(c["id"]))
    assert got and all(n == 5 for n in got), got
