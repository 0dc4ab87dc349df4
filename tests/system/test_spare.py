# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_spare.py - issue #18: spare executors (agentd/spare.c,
executor/spare.c). The agent keeps two executors started ahead of any launch, each pid 1
of its own pid namespace in the agent's supervisor cgroup, waiting on a socket; a launch
that comes alone sends one its runtime dir and fds, so the clone, the namespaces' creation,
the exec and the executor's start-up are not on the launch's path. The kernel's word here
is the pid and its start time: the container's executor is a process that ran before the
POST. A spare names its container in its command line once it has one (the orphan sweep and
recovery find executors by it), and one without a launch ends with its agent."""

import json
import os
import signal

import pytest

import berthtest as bt

from recoverytest import API_ERRORS, SUPERVISOR, body, check_consistent, start, wait_died


def spares(a):
    """{pid: start time} of a's spare executors: `berth-executor --spare MODE` in its
    supervisor cgroup."""
    out = {}
    for d in a.parent_dirs.values():
        sup = os.path.join(d, SUPERVISOR)
        if not os.path.isdir(sup):
            continue
        for pid in bt.cgroup_procs(sup):
            argv = bt.read("/proc/%d/cmdline" % pid, "").split("\0")
            start = bt.proc_start_time(pid)
            if len(argv) > 1 and argv[1] == "--spare" and start is not None:
                out[pid] = start
    return out


def wait_spares(a, n=2):
    return bt.wait_for(lambda: (lambda s: s if len(s) >= n else None)(spares(a)), 10,
                       what="%d spare executors of %s" % (n, a.work))


def kill(a, cid):
    st, body = a.post("/v1/containers/%s/kill" % cid, {"grace_seconds": 0})
    assert st == 202, (st, body)


def cmdline(pid):
    return bt.read("/proc/%d/cmdline" % pid, "").split("\0")


def test_a_launch_takes_a_spare_executor(agent):
    before = wait_spares(agent)
    for pid in before:
        # born as a launch's executor is: pid 1 of its own pid namespace
        assert bt.proc_nspid(pid)[-1] == 1, bt.proc_nspid(pid)
        assert bt.proc_comm(pid) == "berth-executor"
    c = agent.launch(shell="echo from-a-spare; sleep 600")
    run = agent.wait_state(c["id"], "RUNNING")
    pid = run["pid"]
    assert pid in before and bt.alive(pid, before[pid]), (
        "the executor (pid %d) was spawned at the launch, not ahead: spares %s" % (pid, before))
    # it names its container as a spawned executor does
    rdir = os.path.join(agent.work, "containers", c["id"])
    assert cmdline(pid)[1:3] == ["--runtime-dir", rdir], cmdline(pid)
    bt.wait_for(lambda: agent.output(c["id"]) == "from-a-spare\n", 5, what="the task's output")
    # the task is in the container's cgroups, its executor is not
    assert pid not in agent.procs(c["id"])
    assert agent.procs(c["id"]), "no task in the container's cgroups"
    # the executor's log is the container's
    log = bt.read(os.path.join(rdir, "executor.log"), "")
    assert "running as pid" in log, log
    # another spare takes its place
    after = wait_spares(agent)
    assert pid not in after
    kill(agent, c["id"])
    end = agent.wait_terminal(c["id"])
    assert end["state"] == "KILLED", end
    assert not bt.alive(pid, before[pid])


def test_spares_end_with_their_agent(agent_factory):
    a = agent_factory()
    first = wait_spares(a)
    assert a.stop() == 0
    left = {p: s for p, s in first.items() if bt.alive(p, s)}
    assert not left, "spare executors outlived the agent's stop: %s" % left
    # a crash: each sees its socket's EOF and exits
    a.start()
    second = wait_spares(a)
    a.kill9()
    bt.wait_for(lambda: not any(bt.alive(p, s) for p, s in second.items()), 5,
                what="the spares of a killed agent to exit")
    a.start()  # its stop (the fixture's) removes the cgroups
    wait_spares(a)


def test_a_killed_spare_is_replaced(agent):
    before = wait_spares(agent)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    # dead (their files, the sockets' ends, closed): not on their way out while a launch
    # sends one its launch, which would then end with it
    bt.wait_for(lambda: not any(bt.alive(p, s) for p, s in before.items()), 5,
                what="the killed spares to be gone")
    # the launches that find them dead are spawned as before, and spares are made again
    for i in range(3):
        c = agent.launch(shell="echo %d" % i)
        end = agent.wait_terminal(c["id"])
        assert end["state"] == "FINISHED", end
        assert agent.output(c["id"]) == "%d\n" % i
    after = wait_spares(agent)
    assert not set(after) & set(before)


def test_a_network_mode_change_changes_the_spares(agent_factory):
    a = agent_factory()  # network = host: spares without a network namespace of their own
    host_ns = os.readlink("/proc/self/ns/net")
    first = wait_spares(a)
    assert {cmdline(p)[2] for p in first} == {"host"}
    for p in first:
        assert os.readlink("/proc/%d/ns/net" % p) == host_ns
    # a launch in "none" finds none of its namespaces: spawned, and spares of its kind come
    c = a.launch(shell="cat /sys/class/net/lo/operstate; ls /sys/class/net", network="none")
    assert a.wait_terminal(c["id"])["state"] == "FINISHED"
    bt.wait_for(lambda: "net" in {cmdline(p)[2] for p in spares(a)}, 10,
                what="a spare with a network namespace of its own")
    c = a.launch(shell="sleep 600", network="none")
    pid = a.wait_state(c["id"], "RUNNING")["pid"]
    assert os.readlink("/proc/%d/ns/net" % pid) != host_ns
    task = a.procs(c["id"])[0]
    assert os.readlink("/proc/%d/ns/net" % task) == os.readlink("/proc/%d/ns/net" % pid)
    kill(a, c["id"])
    assert a.wait_terminal(c["id"])["state"] == "KILLED"
    # lo is up in a task of a spare's network namespace, as in a spawned executor's
    c = a.launch(shell="cat /sys/class/net/lo/operstate", network="none")
    assert a.wait_terminal(c["id"])["state"] == "FINISHED"
    assert a.output(c["id"]).strip() in ("up", "unknown"), a.output(c["id"])


def executors_of(a, rdir):
    """Processes naming rdir in their command line, and the agent's zombie children."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and rdir in bt.read("/proc/%s/cmdline" % d, ""):
            out.append(int(d))
    for t in os.listdir("/proc/%d/task" % a.proc.pid):
        for kid in bt.read("/proc/%d/task/%s/children" % (a.proc.pid, t), "").split():
            if bt.read("/proc/%s/stat" % kid, "").rpartition(")")[2].split()[:1] == ["Z"]:
                out.append(int(kid))
    return out


def test_the_executor_builds_its_sandbox_while_the_agent_makes_the_cgroups(agent_factory):
    """A launch is given to its executor right after spec.json, before the agent makes the
    task's cgroups; the executor enters its sandbox meanwhile and waits for the agent's go
    before its task. An agent that dies right after the cgroups' mkdir
    (BERTH_FAULT=launch-after-cgroup) has given the launch to a spare already: the spare
    sees the go pipe's EOF, says why in status.json and exits, and no task ran. (When the
    cgroups came first, no executor had the launch at that point.)"""
    a = agent_factory(start=False)
    start(a, fault="launch-after-cgroup")
    before = wait_spares(a)
    try:
        a.post("/v1/containers", body("echo ran > ran; sleep 600", "target"))
    except API_ERRORS:
        pass
    wait_died(a)
    [cid] = os.listdir(os.path.join(a.work, "containers"))
    rdir = os.path.join(a.work, "containers", cid)
    text = bt.wait_for(lambda: bt.read(os.path.join(rdir, "status.json"), ""), 10,
                       what="the executor's status.json")
    st = json.loads(text)
    assert "the agent did not make the task's cgroups" in st.get("launch_error", ""), st
    given = [p for p in before if cmdline(p)[1:3] == ["--runtime-dir", rdir]]
    bt.wait_for(lambda: not any(bt.alive(p, s) for p, s in before.items()), 10,
                what="the spares (one given the launch: %s) to exit" % given)
    assert not os.path.exists(os.path.join(a.work, "sandboxes", cid, "ran"))
    start(a)  # the restart drops the STAGING record and removes what it made
    assert check_consistent(a) == {}


def test_limits_that_fail_after_the_hand_over_fail_the_launch(agent_factory):
    """The cgroups are limited after the executor was given the launch: a limit the kernel
    refuses (v1: a CPU quota above the parent's) fails the launch with the kernel's word,
    and its executor, waiting for the go, is killed and reaped; the next launch runs."""
    if bt.is_v2_host():
        pytest.skip("cgroup v2 takes a child's quota above its parent's (v1 refuses it)")
    a = agent_factory()
    wait_spares(a)
    cpu = a.ctrl_dir(a.parent_dirs, "cpu.cfs_quota_us")
    quota = os.path.join(cpu, "cpu.cfs_quota_us")
    old = bt.read(quota).strip()

    def write(text):
        with open(quota, "w") as f:
            f.write(text)

    write("50000")  # 0.5 CPU at the default 100 ms period
    try:
        st, c = a.post("/v1/containers", body("echo ran > ran; sleep 600", "target", cpus=1))
        assert st == 201, (st, c)
        end = a.wait_terminal(c["id"], timeout=10)
        assert (end["state"], end["reason"]) == ("FAILED", "LAUNCH_FAILED"), end
        assert "cpu.cfs_quota_us" in end["message"], end
        assert "Invalid argument" in end["message"], end
        assert not os.path.exists(os.path.join(a.work, "sandboxes", c["id"], "ran"))
        rdir = os.path.join(a.work, "containers", c["id"])
        bt.wait_for(lambda: not executors_of(a, rdir), 10,
                    what="the executor of the failed launch to be reaped")
    finally:
        write(old)
    c = a.launch(shell="echo again")
    assert a.wait_terminal(c["id"])["state"] == "FINISHED"
    assert a.output(c["id"]) == "again\n"
