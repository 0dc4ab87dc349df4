# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_sched_chaos.py - issue #14, what it must show 6: three frameworks launch
300 short tasks in total through offers while the master and the agents are SIGKILLed and
restarted at random. The master runs in test mode (check_invariants): after every request,
pass and tick it recomputes the allocator's books from the tasks and offers, so an offer of
resources in use, or any drift, is logged and counted. At the end: every task has one terminal
state at its framework, the master's, and the one its agent saw; no invariant was violated.
The frameworks are written from docs/protocol.md (schedtest.py): they subscribe again with
their id when their stream drops, launch with their own task ids (so a launch whose answer was
lost is recognised: its id is in use), and RECONCILE after every re-subscription."""

import os
import random
import threading
import time

import pytest

import berthtest as bt
import schedtest as st

TOTAL = 300
FLAGS = ["--agent_timeout=20s", "--lost_grace=30s", "--check_invariants=true",
         "--offer_timeout=5s"]


class Chaotic(threading.Thread):
    """Launches its tasks one per offer, about every 0.3 s, across master restarts."""

    def __init__(self, m, name, n, rnd):
        super().__init__(daemon=True)
        self.m, self.name, self.rnd = m, name, rnd
        self.todo = ["%s-%d" % (name, i) for i in range(n)]
        self.launched = set()
        self.terminal = {}           # task id -> set of terminal states it was told
        self.framework_id = None
        self.stop = threading.Event()
        self.fw = None

    def connect(self):
        fw = st.Framework(self.m, self.name, failover_timeout=3600,
                          framework_id=self.framework_id)
        try:
            fw.subscribe()
        except (OSError, AssertionError, ValueError):
            return None
        self.framework_id = fw.framework_id
        if self.launched:  # what became of them while we were away
            fw.call("RECONCILE", {"tasks": [{"task_id": t} for t in sorted(self.launched)]})
        return fw

    def on_update(self, status):
        if status["state"] in bt.TERMINAL and status["task_id"] in self.launched:
            self.terminal.setdefault(status["task_id"], set()).add(status["state"])

    def launch(self, fw, offer):
        if not self.todo:
            fw.decline([offer["id"]], refuse=5)
            return
        tid = self.todo[0]
        i = int(tid.rsplit("-", 1)[1])
        task = st.task(tid, shell="sleep 0.%d; exit %d" % (self.rnd.randint(1, 9), i % 3),
                       cpus=0.05, mem="16MiB", task_id=tid)
        st_, body = fw.call("ACCEPT", {"offer_ids": [offer["id"]], "operations": [
            {"type": "LAUNCH", "launch": {"tasks": [task]}}], "filters": {"refuse_seconds": 0}})
        if st_ == 202 or (st_ == 409 and "in use" in body["error"]["message"]):
            self.todo.pop(0)      # launched now, or by an ACCEPT whose answer we lost
            self.launched.add(tid)
        time.sleep(0.3)

    def run(self):
        while not self.stop.is_set():
            fw = self.fw = self.fw or self.connect()
            if not fw:
                time.sleep(0.2)
                continue
            ev = fw.next_event(("OFFERS", "UPDATE", "_CLOSED"), 0.5)
            try:
                if ev and ev["type"] == "_CLOSED":
                    self.fw = None
                elif ev and ev["type"] == "UPDATE":
                    self.on_update(ev["update"]["status"])
                elif ev:
                    for o in ev["offers"]["offers"]:
                        self.launch(fw, o)
            except (OSError, ValueError, KeyError):
                fw.close()  # the master went mid-call: subscribe again
                self.fw = None


@pytest.mark.slow
def test_chaos_frameworks_master_and_agents_sigkilled(master_factory, agent_factory):
    rnd = random.Random(int(os.environ.get("BERTH_CHAOS_SEED", "14")))
    m, agents = st.cluster(master_factory, agent_factory, [st.agent_conf(4, "8GiB")] * 3,
                           flags=FLAGS)
    fws = [Chaotic(m, "chaos-%s" % x, TOTAL // 3, random.Random(rnd.random()))
           for x in ("a", "b", "c")]
    for f in fws:
        f.start()
    kills = {"master": 0, "agent": 0}
    try:
        deadline = time.monotonic() + 120 * bt.SLOW
        while any(f.todo for f in fws) and time.monotonic() < deadline:
            time.sleep(rnd.uniform(0.5, 2.0))
            victim = rnd.choice(["master"] + agents)
            if victim == "master":
                m.kill9()
                kills["master"] += 1
                time.sleep(rnd.uniform(0.1, 1.0))
                m.start()
            else:
                victim.proc.send_signal(9)
                victim.proc.wait()
                kills["agent"] += 1
                time.sleep(rnd.uniform(0.1, 1.0))
                victim.start(timeout=15)
        assert not any(f.todo for f in fws), [len(f.todo) for f in fws]
        assert kills["master"] > 0 and kills["agent"] > 0, kills
        m.wait_agents(3, timeout=30)

        def all_told():
            missing = [t for f in fws for t in f.launched if t not in f.terminal]
            if missing:  # ask again for what we have not heard the end of
                for f in fws:
                    if f.fw:
                        try:
                            f.fw.call("RECONCILE", {})
                        except OSError:
                            pass
            return not missing
        bt.wait_for(all_told, 120, interval=2, what="every task's end at its framework")
    finally:
        for f in fws:
            f.stop.set()
        for f in fws:
            f.join()
            if f.fw:
                f.fw.close()
    by_agent = {a.get("/v1/node")[1]["id"]: a for a in agents}
    outcomes = {}
    for f in fws:
        assert len(f.launched) == TOTAL // 3
        for tid in f.launched:
            told = f.terminal[tid]
            assert len(told) == 1, (tid, told)  # one terminal state at its framework
            t = m.task(tid)
            assert t["state"] in told, (t, told)
            ends = [h["state"] for h in t["history"] if h["state"] in bt.TERMINAL]
            assert len(ends) == 1, t["history"]
            c = None
            if t["container_id"]:
                s, c = by_agent[t["agent_id"]].get("/v1/containers/" + t["container_id"])
                c = c if s == 200 else None
            if c is None:  # the launch never made a container there (cut short)
                assert t["state"] in ("LOST", "FAILED"), t
            else:
                by_agent[t["agent_id"]].note(c)
                assert (c["state"], c["reason"], c["exit_code"]) == \
                    (t["state"], t["reason"], t["exit_code"]), (t, c)
            outcomes[t["state"]] = outcomes.get(t["state"], 0) + 1
    assert st.metric(m, "berth_master_invariant_violations_total") == 0
    assert "check_invariants = true" in m.log  # the books were checked all along
    assert "invariant violated" not in m.log, \
        [x for x in m.log.splitlines() if "invariant violated" in x][:5]
    print("scheduler chaos: kills %r, outcomes %r" % (kills, outcomes))
