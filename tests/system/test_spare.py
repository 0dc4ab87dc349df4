# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_spare.py - issue #18: spare executors (agentd/spare.c,
executor/spare.c). The agent keeps two executors started ahead of any launch, each pid 1
of its own pid namespace in the agent's supervisor cgroup, waiting on a socket; a launch
that comes alone sends one its runtime dir and fds, so the clone, the namespaces' creation,
the exec and the executor's start-up are not on the launch's path. The kernel's word here
is the pid and its start time: the container's executor is a process that ran before the
POST. A spare names its container in its command line once it has one (the orphan sweep and
recovery find executors by it), and one without a launch ends with its agent."""

import os
import signal

import berthtest as bt

from recoverytest import SUPERVISOR


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
