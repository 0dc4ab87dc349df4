# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_spawn.py - issue #18: a launch's executor is spawned off the agent's
loop (agentd/spawner.c's thread; docs/design.md "The launch path"). The loop used to
wait in the clone until the executor's execve; under load that wait was the loop's longest.
Here the spawn is held for as long as the test likes by freezing the agent's supervisor
cgroup, where every executor is born (v2: CLONE_INTO_CGROUP) or moves itself before its
execve (v1): the child stops there and the spawn does not return. Meanwhile the agent must
answer, the launch must show STAGING, and its 201 must wait for STARTING; a kill of the
launch meanwhile must end it KILLED once the spawn returns, its task never started."""

import os
import threading

import pytest

import berthtest as bt


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# a launch that takes a spare executor (agentd/spare.c) has no spawn to hold
NO_SPARES = {"BERTH_SPARES": "0"}


@pytest.fixture
def agent(agent_factory):
    """An agent without spare executors: these tests hold a launch's spawn."""
    return agent_factory(env=NO_SPARES)


def supervisor(agent):
    """(dir of the supervisor cgroup whose freezer we hold, freeze, thaw)."""
    if "freezer" in agent.parent_dirs:  # v1
        d = os.path.join(agent.parent_dirs["freezer"], "supervisor")
        return (d, lambda: write(os.path.join(d, "freezer.state"), "FROZEN"),
                lambda: write(os.path.join(d, "freezer.state"), "THAWED"))
    d = os.path.join(agent.parent_dirs["unified"], "supervisor")
    return (d, lambda: write(os.path.join(d, "cgroup.freeze"), "1"),
            lambda: write(os.path.join(d, "cgroup.freeze"), "0"))


def procs(d):
    return [p for p in bt.read(os.path.join(d, "cgroup.procs"), "").split() if p]


def held_launch(agent):
    """POST a launch from a thread while the supervisor is frozen; returns (thread, result
    holder, the STAGING container seen in the list)."""
    d, freeze, _ = supervisor(agent)
    assert not procs(d), procs(d)
    freeze()
    out = {}

    def post():
        out["r"] = agent.post("/v1/containers", {"command": {"shell": "echo started; exec sleep 1000"},
                                                 "resources": {"cpus": 0.1, "mem": "32MiB"}},
                              timeout=60)
    th = threading.Thread(target=post)
    th.start()
    # the executor's child is in the frozen supervisor: the spawn cannot return now
    bt.wait_for(lambda: procs(d), 10, what="the held executor in %s" % d)
    out["held"] = int(procs(d)[0])
    st, listed = agent.get("/v1/containers")
    assert st == 200
    staging = [c for c in listed["containers"] if c["state"] == "STAGING"]
    assert len(staging) == 1, listed
    return th, out, staging[0]


def test_the_agent_answers_while_an_executor_is_spawned(agent):
    d, _, thaw = supervisor(agent)
    try:
        th, out, c = held_launch(agent)
        # the loop is free: before the spawner thread, this waited for the thaw
        st, health = agent.get("/health", timeout=5)
        assert st == 200, health
        assert th.is_alive() and "r" not in out  # no 201 before STARTING
        assert agent.inspect(c["id"])["state"] == "STAGING"
    finally:
        thaw()
    th.join(60)
    st, body = out["r"]
    assert st == 201, body
    assert body["id"] == c["id"] and body["state"] in ("STARTING", "RUNNING"), body
    agent.note(body)
    running = agent.wait_state(c["id"], "RUNNING")
    # the kernel's word: the held child became the executor, and the task is in its cgroups
    assert running["pid"] == out["held"], (running["pid"], out["held"])
    dirs = agent.cgroup_dirs(c["id"])
    assert dirs and all(bt.cgroup_procs(x) for x in dirs.values()), dirs
    bt.wait_for(lambda: agent.output(c["id"]) == "started\n", 10, what="the task's output")


def test_a_kill_while_the_executor_is_spawned_ends_it_killed(agent):
    d, _, thaw = supervisor(agent)
    try:
        th, out, c = held_launch(agent)
        st, body = agent.post("/v1/containers/%s/kill" % c["id"],
                              {"signal": "TERM", "grace_seconds": 30})
        assert st == 202, body
    finally:
        thaw()
    th.join(60)
    st, body = out["r"]
    assert st == 201, body
    agent.note(body)
    end = agent.wait_terminal(c["id"])
    assert end["state"] == "KILLED", end
    assert end.get("started_at") in (None, 0), end  # the task never ran
    # the kernel's word: the held executor is gone, and the task wrote nothing (it prints
    # at once when it runs: the test above)
    assert not bt.alive(out["held"]), out["held"]
    assert agent.output(c["id"]) == "", agent.output(c["id"])
