# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_limits.py - issue #3 items 1 and 2, on cgroup v1 and (issue #4) v2: the
limits berth writes are the kernel's (read back from the cgroup files, not from our API), and
they hold: a 0.5 CPU task gets 0.5 CPU, measured by the cgroup's accounting (cpuacct.usage /
cpu.stat usage_usec) and by /proc/<pid>/stat; a burst task (cpus_limit none) may use more.
On v2 the weight is cpu.weight = 1 + (shares - 2) * 9999 / 262142 with shares = 1024 * cpus
(docs/design/cgroups.md): 2 CPUs -> 79, 1 CPU -> 39, 0.5 CPU -> 20."""

import os
import time

import pytest

import berthtest as bt


def ctl_run(agent, *args):
    r = agent.ctl("run", *args)
    assert r.returncode == 0, "berthctl run %s: %s" % (args, r.stderr)
    cid = r.stdout.strip().splitlines()[-1].strip()
    assert cid, "berthctl run printed no id"
    agent.inspect(cid)
    return cid


def cg_file(dirs, name):
    for d in dirs.values():
        p = os.path.join(d, name)
        if os.path.exists(p):
            return bt.read(p).strip()
    raise AssertionError("no %s in %s" % (name, dirs))


def check_under_parent(agent, dirs):
    parents = set(agent.parent_dirs.values())
    for ctrl, d in dirs.items():
        assert os.path.isdir(d), "cgroup dir %s (%s) does not exist" % (d, ctrl)
        assert os.path.dirname(d) in parents or any(d.startswith(p + "/") for p in parents), \
            "cgroup %s is not under the test's parent %s" % (d, sorted(parents))


def test_seed_two_tasks_limits(agent):
    a = ctl_run(agent, "--cpus", "2", "--mem", "1GiB", "--", "sleep", "30")
    b = ctl_run(agent, "--cpus", "1", "--mem", "2GiB", "--", "sleep", "30")
    agent.wait_state(a, "RUNNING")
    agent.wait_state(b, "RUNNING")
    for cid, quota, shares, weight, mem in ((a, 200000, 2048, 79, 1073741824),
                                            (b, 100000, 1024, 39, 2147483648)):
        dirs = agent.cgroup_dirs(cid)
        check_under_parent(agent, dirs)
        assert cg_file(dirs, "pids.max") == "1024"  # [agent] pids_max default
        if bt.is_v2_host():
            assert list(dirs) == ["unified"], dirs
            assert cg_file(dirs, "cpu.max") == "%d 100000" % quota
            assert cg_file(dirs, "cpu.weight") == str(weight)
            assert cg_file(dirs, "memory.max") == str(mem)
            assert cg_file(dirs, "memory.swap.max") == "0"
            # the parent hands exactly these controllers down
            parent = os.path.dirname(dirs["unified"])
            ctl = bt.read(os.path.join(parent, "cgroup.subtree_control")).split()
            assert {"cpu", "memory", "pids"} <= set(ctl), ctl
        else:
            assert cg_file(dirs, "cpu.cfs_period_us") == "100000"
            assert cg_file(dirs, "cpu.cfs_quota_us") == str(quota)
            assert cg_file(dirs, "cpu.shares") == str(shares)
            assert cg_file(dirs, "memory.limit_in_bytes") == str(mem)
            memdir = agent.ctrl_dir(dirs, "memory.limit_in_bytes")
            if os.path.exists(os.path.join(memdir, "memory.memsw.limit_in_bytes")):
                assert cg_file(dirs, "memory.memsw.limit_in_bytes") == str(mem)
        # the task itself is in those cgroups (every hierarchy holds the same processes)
        agent.procs(cid, "sleep")
        for d in dirs.values():
            pids = bt.cgroup_procs(d)
            assert any(bt.proc_comm(p) == "sleep" for p in pids), \
                "no sleep process in %s (%s)" % (d, pids)


def test_parent_enforces_allocatable(agent_factory):
    agent = agent_factory(conf="[resources]\ncpus = 1.5\nmem = 3GiB\n[reserved]\ncpus = 0.5\n"
                               "mem = 1GiB\n")
    if bt.is_v2_host():
        parent = agent.parent_dirs["unified"]
        assert bt.read(os.path.join(parent, "cpu.max")).strip() == "100000 100000"
        assert bt.read(os.path.join(parent, "memory.max")).strip() == str(2 << 30)
    else:
        cpu = agent.parent_dirs.get("cpu") or agent.parent_dirs.get("cpu,cpuacct")
        mem = agent.parent_dirs.get("memory")
        assert cpu and os.path.isdir(cpu), "no parent cgroup in cpu: %s" % agent.parent_dirs
        assert bt.read(os.path.join(cpu, "cpu.cfs_quota_us")).strip() == "100000"
        assert bt.read(os.path.join(mem, "memory.limit_in_bytes")).strip() == str(2 << 30)
    # a launch beyond allocatable is refused and names the resource
    st, err = agent.post("/v1/containers", {"command": {"argv": ["sleep", "1"]},
                                            "resources": {"cpus": 1.5, "mem": "64MiB"}})
    assert st == 409 and "cpus" in err["error"]["message"], (st, err)


def host_busy_ticks():
    """Busy jiffies of all CPUs (user+nice+system+irq+softirq+steal) from /proc/stat."""
    f = bt.read("/proc/stat").splitlines()[0].split()[1:]
    v = [int(x) for x in f]
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


def cg_cpu_ns(dirs):
    """CPU time of the cgroup in ns: cpuacct.usage (v1) or cpu.stat usage_usec (v2)."""
    for d in dirs.values():
        if os.path.exists(os.path.join(d, "cpuacct.usage")):
            return bt.read_int(os.path.join(d, "cpuacct.usage"))
    stat = bt.parse_kv(cg_file(dirs, "cpu.stat").replace(" ", "="))
    return int(stat["usage_usec"]) * 1000


def measure(agent, cid, seconds):
    """(cpu from the cgroup's accounting, cpu from the probe's /proc/pid/stat, host cpu by
    others) over `seconds`, in CPUs."""
    dirs = agent.cgroup_dirs(cid)
    probes = agent.procs(cid, "probe")
    assert len(probes) == 1, "expected one probe process in the cgroup, got %s" % probes
    pid = probes[0]
    hz = os.sysconf("SC_CLK_TCK")
    u0, t0, h0, w0 = cg_cpu_ns(dirs), bt.proc_cpu_ticks(pid), host_busy_ticks(), time.monotonic()
    time.sleep(seconds)
    u1, t1, h1, w1 = cg_cpu_ns(dirs), bt.proc_cpu_ticks(pid), host_busy_ticks(), time.monotonic()
    wall = w1 - w0
    by_cg = (u1 - u0) / 1e9 / wall
    by_proc = (t1 - t0) / hz / wall
    others = max(0.0, (h1 - h0) / hz / wall - by_proc)
    return by_cg, by_proc, others


def check_quota_files(dirs, quota, weight_or_shares):
    """quota: "50000" or None (no quota)."""
    if bt.is_v2_host():
        assert cg_file(dirs, "cpu.max") == "%s 100000" % (quota or "max")
        assert cg_file(dirs, "cpu.weight") == str(weight_or_shares[0])
    else:
        assert cg_file(dirs, "cpu.cfs_quota_us") == (quota or "-1")
        assert cg_file(dirs, "cpu.shares") == str(weight_or_shares[1])


def test_half_cpu_hard_quota(agent):
    cid = agent.probe("spin", 6, 2, cpus=0.5, mem="64MiB")["id"]
    agent.wait_output(cid, "threads")
    dirs = agent.cgroup_dirs(cid)
    check_quota_files(dirs, "50000", (20, 512))
    time.sleep(0.5)
    by_cg, by_proc, others = measure(agent, cid, 3.0)
    if by_cg < 0.45 and others > os.cpu_count() - 0.8:
        pytest.skip("host too busy: other processes used %.2f of %d CPUs (task got %.2f)"
                    % (others, os.cpu_count(), by_cg))
    assert 0.45 <= by_cg <= 0.55, "the cgroup says %.3f CPU, want 0.5 +-10%%" % by_cg
    assert 0.45 <= by_proc <= 0.55, "/proc/pid/stat says %.3f CPU, want 0.5 +-10%%" % by_proc
    # throttling is visible in the kernel's cpu.stat
    stat = bt.parse_kv(bt.read(os.path.join(agent.ctrl_dir(dirs, "cpu.stat"), "cpu.stat"))
                       .replace(" ", "="))
    assert int(stat.get("nr_throttled", 0)) > 0


def test_burst_no_quota(agent):
    if os.cpu_count() < 2:
        pytest.skip("needs 2 CPUs to show a burst above 1.5 CPU")
    r = agent.ctl("run", "--cpus", "0.5", "--cpus-limit", "none", "--mem", "64MiB", "--",
                  bt.PROBE, "spin", "8", "2")  # outlives a slow start (tests/vm) + 2.8 s
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip().splitlines()[-1]
    agent.wait_output(cid, "threads")
    dirs = agent.cgroup_dirs(cid)
    check_quota_files(dirs, None, (20, 512))
    time.sleep(0.3)
    by_cg, by_proc, others = measure(agent, cid, 2.5)
    if by_cg <= 1.5 and others > 0.3:
        pytest.skip("host not idle: other processes used %.2f CPU (task got %.2f)"
                    % (others, by_cg))
    assert by_cg > 1.5, "burst task used only %.2f CPU (others %.2f)" % (by_cg, others)
    assert by_proc > 1.4, "/proc/pid/stat says %.2f CPU" % by_proc
