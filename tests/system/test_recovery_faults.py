# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_recovery_faults.py - issue #6: the agent dying at every fault point of
the launch, kill, end, remove and recovery paths (BERTH_FAULT, agentd/fault.c) and at 200
random moments leaves every container in exactly one truthful state with nothing left
over (recoverytest.check_consistent)."""

import os
import random
import re
import signal
import threading
import time

import pytest

import berthtest as bt
from nettest import NET_POINTS

from recoverytest import (  # the helpers both recovery files share
    API_ERRORS,
    body,
    check_consistent,
    crash,
    sh,
    start,
    wait_died,
)


# ---- fault injection ------------------------------------------------------------------------

# point -> what the crash there must turn into after the restart
GONE, RUNNING, KILLED, FINISHED = "gone", "RUNNING", "KILLED", "FINISHED"
POINTS = {
    # before the 201: the launch never finished, nothing of it may remain
    "launch-after-record": GONE,
    "launch-after-dirs": GONE,
    "launch-after-cgroup": GONE,
    "launch-after-limits": GONE,
    "spawn-after-clone": GONE,
    "launch-after-exec": GONE,
    # after the 201: the container exists and its task runs on
    "launch-after-starting": RUNNING,
    "launch-after-running": RUNNING,
    # mid-kill: the kill is completed at the restart
    "kill-after-record": KILLED,
    "kill-after-signal": KILLED,
    # the end recorded, its cgroups not yet removed
    "finish-after-record": FINISHED,
    "finish-after-kill": FINISHED,
    # DELETE: the record gone, the dirs not yet
    "remove-after-record": GONE,
    # a crash during the recovery itself
    "recover-after-load": RUNNING,
    "recover-before-sweep": RUNNING,
}


def test_fault_points_are_all_walked():
    """The walk below (and test_network.py's) covers every agent_fault() point in agentd/."""
    found = set()
    for name in os.listdir(os.path.join(bt.REPO, "agentd")):
        if name.endswith(".c"):
            src = bt.read(os.path.join(bt.REPO, "agentd", name))
            found.update(re.findall(r'agent_fault\(\s*[\w>-]+\s*,\s*"([a-z-]+)"\s*\)', src))
    walked = set(POINTS) | set(NET_POINTS)  # test_network.py walks the networking ones
    assert found == walked, "untested: %s, gone: %s" % (
        sorted(found - walked), sorted(walked - found))


@pytest.mark.parametrize("point", sorted(POINTS))
def test_fault_point(agent_factory, point):
    """The agent dies at `point`; after a restart every container is in exactly one
    truthful state and nothing is left that no container owns. A bystander container
    launched first must be untouched."""
    a = agent_factory(start=False)
    target = None
    if point.startswith("recover-"):
        start(a)
    else:
        # launch points fire on the 2nd launch, the bystander's being the 1st
        start(a, fault=point + (":2" if point.startswith(("launch-", "spawn-")) else ""))
    by = a.launch(**sh("sleep 600", name="bystander"))
    by_pid = a.wait_state(by["id"], "RUNNING")["pid"]
    if point.startswith(("launch-", "spawn-")):
        try:
            st, c = a.post("/v1/containers", body("sleep 600", "target"))
            assert st in (201,), (st, c)
            target = c["id"]
        except API_ERRORS:
            pass
        wait_died(a)
    elif point.startswith("kill-"):
        target = a.launch(**sh("sleep 600", name="target"))["id"]
        a.wait_state(target, "RUNNING")
        try:
            a.post("/v1/containers/%s/kill" % target, {"signal": "TERM", "grace_seconds": 30})
        except API_ERRORS:
            pass
        wait_died(a)
    elif point.startswith("finish-"):
        target = a.launch(**sh("sleep 0.3", name="target"))["id"]
        wait_died(a)
    elif point.startswith("remove-"):
        target = a.launch(**sh("true", name="target"))["id"]
        a.wait_terminal(target)
        try:
            a.delete("/v1/containers/" + target)
        except API_ERRORS:
            pass
        wait_died(a)
    else:  # recover-*: crash with one task running and one ending meanwhile, then die
        target = a.launch(**sh("sleep 600", name="target"))["id"]
        ends = a.launch(**sh("while [ ! -e go ]; do sleep 0.05; done; exit 3", name="ends"))
        a.wait_state(target, "RUNNING")
        a.wait_state(ends["id"], "RUNNING")
        ends_pid = a.inspect(ends["id"])["pid"]
        crash(a)
        with open(os.path.join(a.work, "sandboxes", ends["id"], "go"), "w"):
            pass
        bt.wait_for(lambda: not bt.alive(ends_pid), 10, what="task to end")
        assert start(a, fault=point, expect_up=False) == -signal.SIGKILL, a.log[-2000:]
    start(a)
    got = check_consistent(a)
    assert got[by["id"]]["state"] == "RUNNING" and got[by["id"]]["pid"] == by_pid
    assert bt.alive(by_pid)
    want = POINTS[point]
    named = [i for i, n in got.items() if n["name"] == "target"]
    if target is None and named:  # died before its 201: the container exists all the same
        target = named[0]
    others = set(got) - {by["id"]} - ({target} if target else set())
    if point.startswith("recover-"):
        assert (got[ends["id"]]["state"], got[ends["id"]]["exit_code"]) == ("FAILED", 3)
        others -= {ends["id"]}
    assert not others, "unexpected containers: %s" % [got[i] for i in others]
    if want == GONE:
        assert target is None or target not in got, got.get(target)
        assert not named, [got[i] for i in named]
        return
    assert target in got, "the container of an announced launch was forgotten"
    if want == RUNNING:
        assert got[target]["state"] == "RUNNING", got[target]
        return
    end = a.wait_terminal(target)
    if want == KILLED:
        assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end
    else:
        assert (end["state"], end["reason"], end["exit_code"]) == ("FINISHED", "EXITED", 0), end
    check_consistent(a)


def test_200_launches_with_random_agent_kills(agent_factory):
    """200 launches (tasks that exit 0, exit 7 or run until killed) while the agent is
    SIGKILLed at random moments and restarted: after every restart the state is consistent
    (check_consistent), no launch that got its 201 is forgotten, and a container seen ended
    is never reported again with another ending. At the end every container ended
    truthfully."""
    a = agent_factory()
    seed = int(os.environ.get("BERTH_TEST_SEED", "6"))
    rng, wrng = random.Random(seed), random.Random(seed + 1)
    kinds = {"ok": "sleep 0.%d; exit 0", "seven": "sleep 0.%d; exit 7", "long": "sleep 600 #%d"}
    launched, ended, kind_of = {}, {}, {}
    state = {"attempts": 0, "killed": set()}

    def worker(stop):
        while not stop.is_set() and state["attempts"] < 200:
            kind = wrng.choice(sorted(kinds))
            name = "r%03d-%s" % (state["attempts"], kind)
            state["attempts"] += 1
            req = body(kinds[kind] % wrng.randint(0, 5), name, cpus=0.01, mem="16MiB")
            try:
                st, c = a.post("/v1/containers", req, timeout=5)
            except API_ERRORS:
                return
            if st == 201:
                launched[c["id"]] = name
            longs = [i for i, n in launched.items() if n.endswith("long")
                     and i not in state["killed"]]
            if longs and wrng.random() < 0.3:
                victim = wrng.choice(longs)
                try:
                    a.post("/v1/containers/%s/kill" % victim,
                           {"signal": "KILL", "grace_seconds": 0}, timeout=5)
                    state["killed"].add(victim)
                except API_ERRORS:
                    return

    restarts = 0
    while state["attempts"] < 200:
        stop = threading.Event()
        t = threading.Thread(target=worker, args=(stop,))
        t.start()
        time.sleep(rng.uniform(0.0, 0.25))
        crash(a)
        stop.set()
        t.join(30)
        assert not t.is_alive()
        start(a)
        restarts += 1
        got = check_consistent(a)
        for cid, c in got.items():
            kind_of[cid] = c["name"].split("-")[1]
        forgotten = set(launched) - set(got)
        assert not forgotten, "launches that got a 201 were forgotten: %s" % sorted(forgotten)
        for cid, c in got.items():
            if c["state"] in bt.TERMINAL:
                end = (c["state"], c["reason"], c["exit_code"], c["signal"], c["finished_at"])
                assert ended.setdefault(cid, end) == end, \
                    "%s reported again: %s, before %s" % (cid, end, ended[cid])
    # the end: kill what still runs forever, then every ending must match what the task did
    for cid, c in check_consistent(a).items():
        if c["state"] not in bt.TERMINAL and kind_of[cid] == "long":
            a.post("/v1/containers/%s/kill" % cid, {"signal": "KILL", "grace_seconds": 0})
    final = a.wait_all_terminal(list(kind_of), timeout=30)
    want = {"ok": ("FINISHED", "EXITED", 0), "seven": ("FAILED", "EXITED", 7),
            "long": ("KILLED", "KILLED_BY_REQUEST", None)}
    for cid, c in final.items():
        got_end = (c["state"], c["reason"], c["exit_code"])
        assert got_end == want[kind_of[cid]], (c["name"], got_end, c["message"], [
            l for l in a.log.splitlines() if cid in l or "dying" in l or "recovered" in l])
    check_consistent(a)
    print("seed %d: %d launches, %d accepted, %d restarts" % (seed, state["attempts"],
                                                              len(kind_of), restarts))
