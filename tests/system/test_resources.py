# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_resources.py - issue #5: the node's resource model and the truth of the
usage figures. Detected totals match what the host says (nproc, /proc/meminfo, df), explicit
values and reservations show in `berthctl node`, bad reservations stop start-up with
file:line, the parent cgroup holds allocatable, roles get their static reservations, and
the usage the agent reports matches the kernel's own accounting (/proc/<pid>/stat,
cpu.stat, memory)."""

import json
import os
import subprocess
import time

import pytest

import berthtest as bt


def node(agent):
    r = agent.ctl("node", "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_detected_totals_match_the_host(agent_factory):
    agent = agent_factory(conf="[reserved]\ncpus = 0\nmem = 0\n")
    res = node(agent)["resources"]
    nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
    assert res["total"]["cpus"] == nproc
    meminfo = bt.read("/proc/meminfo")
    kb = int([l for l in meminfo.splitlines() if l.startswith("MemTotal:")][0].split()[1])
    assert res["total"]["mem"] == kb * 1024
    # df reports the work_dir filesystem's size in 1K blocks
    df = subprocess.run(["df", "--output=size", "-B1", agent.work_dir], capture_output=True,
                        text=True).stdout.split()
    assert res["total"]["disk"] == int(df[-1])
    assert res["total"]["ports"] == 1001  # default [31000-32000]
    pid_max = int(bt.read("/proc/sys/kernel/pid_max"))
    assert res["total"]["pids"] == pid_max and res["reserved"]["pids"] == pid_max // 10
    assert res["allocatable"]["cpus"] == nproc and res["reserved"]["mem"] == 0


def test_explicit_values_and_reservations(agent_factory):
    agent = agent_factory(conf="[resources]\ncpus = 1.5\nmem = 3GiB\ndisk = 10GiB\n"
                               "ports = [31000-31009,40000-40004]\npids = 5000\n"
                               "[reserved]\ncpus = 0.5\nmem = 1GiB\ndisk = 1GiB\npids = 1000\n")
    res = node(agent)["resources"]
    assert res["total"] == {"cpus": 1.5, "mem": 3 << 30, "disk": 10 << 30, "ports": 15,
                            "pids": 5000}
    assert res["reserved"] == {"cpus": 0.5, "mem": 1 << 30, "disk": 1 << 30, "ports": 0,
                               "pids": 1000}
    assert res["allocatable"] == {"cpus": 1, "mem": 2 << 30, "disk": 9 << 30, "ports": 15,
                                  "pids": 4000}
    c = agent.launch(["sleep", "30"], cpus=0.25, mem="256MiB")
    agent.wait_state(c["id"], "RUNNING")
    res = node(agent)["resources"]
    assert res["allocated"]["cpus"] == 0.25 and res["allocated"]["mem"] == 256 << 20
    assert res["allocated"]["pids"] == 1024  # the task's default pids_max
    # the table shows the same figures
    r = agent.ctl("node")
    assert r.returncode == 0
    rows = {l.split()[0]: l.split()[1:] for l in r.stdout.splitlines() if l.split()}
    assert rows["cpus"][:4] == ["1.5", "0.5", "1", "0.25"], r.stdout


@pytest.mark.parametrize("text,line,what", [
    ("[agent]\ntask_user = nobody\n[reserved]\nmem = 12XB\n", 4, "size"),
    ("[agent]\nno_such_key = 1\n", 2, "unknown key"),
    ("[resources]\ncpus = 2\n[reserved]\ncpus = 3\n", 4, "cpus"),
])
def test_bad_config_stops_startup_with_file_line(agent_factory, text, line, what):
    agent = agent_factory(conf=text, start=False)
    r = agent.run_foreground(timeout=10)
    assert r.returncode != 0
    err = r.stderr.strip()
    assert "agent.conf:%d" % line in err and what in err, err
    assert len(err.splitlines()) == 1, err


def test_reservation_beyond_measured_total_names_the_line(agent_factory):
    meminfo = bt.read("/proc/meminfo")
    kb = int([l for l in meminfo.splitlines() if l.startswith("MemTotal:")][0].split()[1])
    agent = agent_factory(conf="[agent]\nlog_level = info\n[reserved]\ncpus = 0\nmem = %dKiB\n"
                               % (kb + 1024), start=False)
    r = agent.run_foreground(timeout=10)
    assert r.returncode != 0
    assert "agent.conf:5" in r.stderr and "[reserved] mem" in r.stderr, r.stderr


def cpu_files(agent, cid):
    dirs = agent.cgroup_dirs(cid)
    return dirs


def parent_dir(agent, *names):
    for n in names:
        if n in agent.parent_dirs:
            return agent.parent_dirs[n]
    raise AssertionError("no parent cgroup among %s: %s" % (names, agent.parent_dirs))


def test_parent_holds_allocatable_and_tasks_share_it(agent_factory):
    # half a CPU: tasks held by it are throttled even on a host whose other work leaves them
    # less than a CPU (CI: the VM suites beside this one gave them 0.82 of a 1-CPU cap)
    agent = agent_factory(conf="[resources]\ncpus = 0.5\n[reserved]\ncpus = 0\nmem = 1GiB\n")
    if bt.is_v2_host():
        d = parent_dir(agent, "unified")
        assert bt.read(os.path.join(d, "cpu.max")).split() == ["50000", "100000"]
    else:
        d = parent_dir(agent, "cpu", "cpu,cpuacct")
        assert bt.read(os.path.join(d, "cpu.cfs_quota_us")).strip() == "50000"
    a = agent.launch(["sleep", "30"], cpus=0.5)
    st, err = agent.post("/v1/containers", {"command": {"argv": ["sleep", "30"]},
                                            "resources": {"cpus": 0.5, "mem": "64MiB"}})
    assert st == 409 and err["error"]["code"] == "INSUFFICIENT_RESOURCES"
    assert err["error"]["message"].startswith("cpus:"), err
    agent.ctl("kill", "--grace", "0", a["id"])
    agent.wait_terminal(a["id"])
    # two burstable 0.25-CPU tasks that each want 2 CPUs: only the parent's quota holds them
    ids = [agent.probe("spin", 30, 2, cpus=0.25, cpus_limit="none", mem="64MiB")["id"]
           for _ in range(2)]
    for cid in ids:
        agent.wait_state(cid, "RUNNING")
    acct = parent_dir(agent, "cpuacct", "cpu,cpuacct", "unified")
    usage_file = "cpu.stat" if bt.is_v2_host() else "cpuacct.usage"

    def used_ns():
        t = bt.read(os.path.join(acct, usage_file))
        if bt.is_v2_host():
            return int(bt.parse_kv(t.replace(" ", "="))["usage_usec"]) * 1000
        return int(t)
    cpu_dir = parent_dir(agent, "cpu", "cpu,cpuacct", "unified")

    def throttled():
        return int(bt.parse_kv(bt.read(os.path.join(cpu_dir, "cpu.stat")).replace(" ", "="))
                   ["nr_throttled"])
    t0, u0, th0 = time.monotonic(), used_ns(), throttled()
    time.sleep(2)
    t1, u1, th1 = time.monotonic(), used_ns(), throttled()
    cores = (u1 - u0) / 1e9 / (t1 - t0)
    # (without the cap they take both CPUs: 2.0; a tenth of a CPU covers the reads' jitter
    # around the kernel's 100 ms periods, which a TCG guest stretches: +0.06 seen there)
    assert cores <= 0.60, "two tasks under a 0.5-CPU parent used %.2f CPUs" % cores
    # the parent's quota is what held them: the kernel throttled the parent itself
    if th1 == th0 and cores < 0.4:
        pytest.skip("host too busy to test the cap: the tasks got only %.2f CPUs" % cores)
    assert th1 > th0, "the parent was never throttled (%.2f CPUs)" % cores
    for cid in ids:
        agent.ctl("kill", "--grace", "0", cid)


def test_roles_get_their_static_reservation(agent_factory):
    agent = agent_factory(conf="[resources]\ncpus = 2\nmem = 4GiB\n[reserved]\ncpus = 0\n"
                               "mem = 0\n[role.analytics]\ncpus = 1\nmem = 1GiB\n")
    # "*" may use only the unreserved 1 CPU
    a = agent.launch(["sleep", "30"], cpus=1, mem="64MiB")
    st, err = agent.post("/v1/containers", {"command": {"argv": ["sleep", "30"]},
                                            "resources": {"cpus": 0.5, "mem": "64MiB"}})
    assert st == 409 and "cpus" in err["error"]["message"] and "'*'" in err["error"]["message"]
    # analytics still has its reservation
    b = agent.launch(["sleep", "30"], cpus=1, mem="64MiB", role="analytics")
    st, err = agent.post("/v1/containers", {"command": {"argv": ["sleep", "30"]}, "role":
                                            "analytics", "resources": {"cpus": 0.5, "mem": "64MiB"}})
    assert st == 409, err
    for c in (a, b):
        agent.wait_state(c["id"], "RUNNING")


def task_pid(agent, c):
    """Host pid of the task (the executor's child), from the container's cgroup."""
    return agent.procs(c["id"], "probe")[0]


def test_cpu_seconds_are_true(agent):
    c = agent.probe("burn", 3, 30, cpus=2, mem="64MiB")
    agent.wait_output(c["id"], "pid")
    pid = task_pid(agent, c)
    agent.wait_output(c["id"], "done", timeout=15)
    ticks = bt.proc_cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")
    st, s = agent.get("/v1/containers/%s/stats" % c["id"])
    api = s["usage"]["cpu_seconds"]
    assert abs(ticks - 3.0) <= 0.05, "the probe burned %.2f CPU-s, not 3" % ticks
    assert abs(api - ticks) <= 0.03 * ticks, "agent says %.3f CPU-s, /proc says %.3f" % (api, ticks)


def test_working_set_is_true(agent):
    c = agent.probe("alloc", 300, mem="512MiB")
    agent.wait_output(c["id"], "allocated_mib", timeout=20)
    st, s = agent.get("/v1/containers/%s/stats" % c["id"])
    ws = s["usage"]["working_set_bytes"]
    assert abs(ws - (300 << 20)) <= 0.03 * (300 << 20), "working set %d MiB" % (ws >> 20)
    assert s["usage"]["rss_bytes"] >= 290 << 20


def test_throttling_follows_the_kernel(agent):
    if bt.is_v2_host():
        stat_name, key = "cpu.stat", "nr_throttled"
    else:
        stat_name, key = "cpu.stat", "nr_throttled"
    c = agent.probe("spin", 4, 2, cpus=0.5, mem="64MiB")
    agent.wait_state(c["id"], "RUNNING")
    d = agent.ctrl_dir(agent.cgroup_dirs(c["id"]), "cpu.stat")

    def both():
        st, s = agent.get("/v1/containers/%s/stats" % c["id"])
        kern = int(bt.parse_kv(bt.read(os.path.join(d, stat_name)).replace(" ", "="))[key])
        return s["usage"]["throttled_periods"], kern
    def throttled_once():  # the spinning threads have started once the quota holds them
        ak = both()
        return ak if ak[0] > 0 else None
    a1, k1 = bt.wait_for(throttled_once, 5, interval=0.1,
                         what="the first throttled period of %s" % c["id"])
    time.sleep(1.0)  # the measurement window: both counters must grow across it
    a2, k2 = both()
    assert a2 > a1 and k2 > k1, (a1, k1, a2, k2)
    # read right after ours, the kernel's count is ahead by at most a couple of periods
    assert 0 <= k1 - a1 <= 3 and 0 <= k2 - a2 <= 3, (a1, k1, a2, k2)
    assert abs((a2 - a1) - (k2 - k1)) <= 3


def test_oom_kills_are_counted(agent):
    c = agent.launch(["/bin/sh", "-c", "%s alloc 400; echo survived=1; exec sleep 30" % bt.PROBE],
                     mem="256MiB")
    agent.wait_output(c["id"], "survived", timeout=15)
    st, s = agent.get("/v1/containers/%s/stats" % c["id"])
    assert s["usage"]["oom_kills"] >= 1, s
    assert s["state"] == "RUNNING"
    st, text = agent.request("GET", "/metrics")
    line = [l for l in text.splitlines()
            if l.startswith("berth_container_oom_events_total") and c["id"] in l]
    assert line and float(line[0].split()[-1]) >= 1, line
