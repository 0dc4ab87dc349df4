# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_sched_seed.py - issue #14, what it must show 1 and 5: the seed through
offers (berth-seed-framework, built on the C scheduler library, gets one offer and launches
both tasks on one agent, whose kernel files carry exactly what was offered), the views of it
(berthctl --master tasks, frameworks, offers, inspect), failover (the master SIGKILLed while
both tasks run: the framework subscribes again with its id, RECONCILE says RUNNING, nothing was
killed or launched twice), and a framework gone past its failover_timeout, whose tasks are
killed. One master and three agents. Helpers: schedtest.py, mastertest.py."""

import json
import os
import queue
import subprocess
import threading

import berthtest as bt
import schedtest as st

SEED_BIN = os.path.join(bt.BUILD, "berth-seed-framework")
# three agents, only the second has room for both seed tasks (3 CPUs, 3 GiB) at once
CONFS = [st.agent_conf(2, "8GiB"), st.agent_conf(4, "8GiB"), st.agent_conf(4, "2GiB")]


class Seed:
    """berth-seed-framework running against m, its stdout read line by line."""

    def __init__(self, m, command):
        self.lines = queue.Queue()
        self.out = []
        self.proc = subprocess.Popen([SEED_BIN, "--master", m.url, "--token-file", m.token_file,
                                      "--cacert", m.ca, "--command", command],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, pred, timeout=30):
        """The next stdout line for which pred holds (every line is kept in self.out)."""
        def got():
            while True:
                try:
                    line = self.lines.get_nowait()
                except queue.Empty:
                    return None
                self.out.append(line)
                if pred(line):
                    return line
        return bt.wait_for(got, timeout, interval=0.05,
                           what="a seed line; so far:\n" + "\n".join(self.out))

    def finish(self, timeout=60):
        rc = self.proc.wait(timeout)
        self.wait_line(lambda x: x.startswith("done:"), 5) if not any(
            x.startswith("done:") for x in self.out) else None
        return rc, self.proc.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def running_ids(seed):
    """The two task ids once both are RUNNING."""
    ids = set()
    while len(ids) < 2:
        line = seed.wait_line(lambda x: x.startswith("update ") and x.endswith(" RUNNING"))
        ids.add(line.split()[1])
    return sorted(ids)


def limits(a, cid):
    """(quota, period, weight, mem limit) of a container from its cgroup files (v1 or v2)."""
    dirs = a.cgroup_dirs(cid)
    if bt.is_v2_host():
        d = a.ctrl_dir(dirs, "cpu.max")
        q, p = bt.read(os.path.join(d, "cpu.max")).split()
        return (int(q), int(p), bt.read_int(os.path.join(d, "cpu.weight")),
                bt.read_int(os.path.join(d, "memory.max")))
    cpu = a.ctrl_dir(dirs, "cpu.cfs_quota_us")
    mem = a.ctrl_dir(dirs, "memory.limit_in_bytes")
    return (bt.read_int(os.path.join(cpu, "cpu.cfs_quota_us")),
            bt.read_int(os.path.join(cpu, "cpu.cfs_period_us")),
            bt.read_int(os.path.join(cpu, "cpu.shares")),
            bt.read_int(os.path.join(mem, "memory.limit_in_bytes")))


def test_seed_through_offers_with_its_limits_in_the_kernel(master_factory, agent_factory):
    m, agents = st.cluster(master_factory, agent_factory, CONFS)
    seed = Seed(m, "sleep 8")
    try:
        seed.wait_line(lambda x: x.startswith("subscribed "))
        ids = running_ids(seed)
        # ACCEPT's answer may come after the updates on the stream
        while len([x for x in seed.out if x.startswith("launched ")]) < 2:
            seed.wait_line(lambda x: x.startswith("launched "))
        assert len([x for x in seed.out if x.startswith("offer ")]) == 3, seed.out
        tasks = [m.task(i) for i in ids]
        assert len({t["agent_id"] for t in tasks}) == 1, "both tasks on one agent"
        big = agents[1].get("/v1/node")[1]["id"]
        assert tasks[0]["agent_id"] == big, "only the second agent has room for both"
        r = m.ctl("tasks")
        assert r.returncode == 0, r.stderr
        for i in ids:
            row = [x for x in r.stdout.splitlines() if x.startswith(i)]
            assert row and "RUNNING" in row[0], r.stdout
        # what was offered is what the kernel enforces
        want = {"seed-task-1": (200000, 100000, 2048, 1 << 30),
                "seed-task-2": (100000, 100000, 1024, 2 << 30)}
        for t in tasks:
            got = limits(agents[1], t["container_id"])
            quota, period, shares, mem = want[t["name"]]
            if bt.is_v2_host():
                assert got[:2] == (quota, period) and got[3] == mem, got
            else:
                assert got == (quota, period, shares, mem), (t["name"], got)
        # frameworks and offers views
        r = m.ctl("frameworks")
        assert r.returncode == 0 and "berth-seed" in r.stdout, r.stderr
        row = [x for x in r.stdout.splitlines() if "berth-seed" in x][0]
        assert "CONNECTED, suppressed" in row and " 2 " in row, r.stdout
        fw = [f for f in st.frameworks(m).values() if f["name"] == "berth-seed"][0]
        assert fw["allocated"] == {"cpus": 3, "mem": 3 << 30}, fw
        assert abs(fw["dominant_share"] - 0.3) < 1e-6, fw  # 3 of 10 cpus
        assert st.metric(m, "berth_master_offers_accepted_total") == 1  # one offer took both
        r = m.ctl("offers", "-o", "json")
        assert r.returncode == 0 and "offers" in json.loads(r.stdout), r.stderr
        rc, err = seed.finish()
        assert rc == 0, (seed.out, err)
        assert "done: FINISHED FINISHED" in seed.out, seed.out
        for t in [m.task(i) for i in ids]:
            assert (t["state"], t["reason"], t["exit_code"]) == ("FINISHED", "EXITED", 0)
            assert t["acknowledged"], t
        assert st.frameworks(m)[fw["id"]]["state"] == "REMOVED"  # its TEARDOWN at the end
    finally:
        seed.stop()


def test_master_sigkilled_framework_resubscribes_and_reconciles(master_factory, agent_factory):
    m, agents = st.cluster(master_factory, agent_factory, CONFS)
    seed = Seed(m, "sleep 12")
    try:
        ids = running_ids(seed)
        m.kill9()
        seed.wait_line(lambda x: x.startswith("disconnected"), 15)
        m.start()
        m.wait_agents(3, timeout=20)
        line = seed.wait_line(lambda x: x.startswith("subscribed "), 30)
        assert line.endswith(" again"), line
        for i in ids:  # RECONCILE after the re-subscription: both still RUNNING
            seed.wait_line(lambda x, i=i: x == "reconcile %s RUNNING" % i, 10)
        rc, err = seed.finish()
        assert rc == 0, (seed.out, err)
        # nothing was killed or launched twice
        ts = [t for t in m.tasks() if t["name"].startswith("seed-task")]
        assert sorted(t["id"] for t in ts) == ids, ts
        for t in ts:
            states = [h["state"] for h in m.task(t["id"])["history"]]
            assert states == ["STAGING", "STARTING", "RUNNING", "FINISHED"], states
        ctrs = []
        for a in agents:
            ctrs += [c for c in a.get("/v1/containers")[1]["containers"]
                     if c["name"].startswith("seed-task")]
        assert sorted(c["name"] for c in ctrs) == ids, ctrs
        assert all(c["state"] == "FINISHED" for c in ctrs), ctrs
    finally:
        seed.stop()


def test_framework_past_its_failover_timeout_has_its_tasks_killed(master_factory,
                                                                   agent_factory):
    m, agents = st.cluster(master_factory, agent_factory, CONFS[:1])
    fw = st.Framework(m, "short-lived", failover_timeout=2)
    fw.subscribe()
    offer = fw.offers()[0]
    tid = fw.accept([offer["id"]], [st.task("doomed", cpus=1)])["tasks"][0]["task_id"]
    fw.wait_state(tid, "RUNNING")
    fw.close()
    bt.wait_for(lambda: st.frameworks(m)[fw.framework_id]["state"] == "DISCONNECTED", 5,
                what="the master to see the framework go")
    t = m.wait_task(tid, bt.TERMINAL, timeout=20)
    assert t["state"] == "KILLED", t
    assert st.frameworks(m)[fw.framework_id]["state"] == "REMOVED"
    assert "no SUBSCRIBE within its failover_timeout" in m.log
    # it cannot come back as that framework
    again = st.Framework(m, "short-lived", framework_id=fw.framework_id)
    status, body = again.subscribe(expect=409)
    assert body["error"]["code"] == "CONFLICT" and "removed" in body["error"]["message"]
