# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_cgroups.py - issue #4 on both cgroup versions (tests/vm runs the suite on
a pure cgroup2 kernel and on v1, `make check-system` on this host's v1): the device filter (v1
devices allow-list, v2 BPF_CGROUP_DEVICE program) keeps a root task with CAP_MKNOD away from
a disk while /dev/null works; an agent started in a cgroup that already holds other
processes (a systemd unit with Delegate=yes) launches tasks and moves nothing out of the
subtree it was given; usage carries the same API fields on both versions (plus pressure on
v2). The limits themselves are in test_limits.py, memory in test_memory.py, pids in
test_pids.py."""

import os
import subprocess

import pytest

import berthtest as bt

DEFAULT_ISOLATION = ("cgroups/cpu,cgroups/mem,cgroups/pids,cgroups/devices,namespaces/pid,"
                     "namespaces/mount,namespaces/ipc,namespaces/uts,filesystem/readonly-host,"
                     "linux/capabilities,linux/seccomp")

# the controllers the agent uses (v1 hierarchy names may join several: "cpu,cpuacct")
AGENT_CTRLS = {"cpu", "cpuacct", "memory", "pids", "devices", "freezer"}


def a_disk():
    """(name, major, minor) of a real block device of this machine (the VM's /dev/vda), or
    None. Virtual ones (loop, zram, ram) have no "device" link in sysfs."""
    for name in sorted(os.listdir("/sys/block")):
        if os.path.exists("/sys/block/%s/device" % name):
            major, minor = bt.read("/sys/block/%s/dev" % name).strip().split(":")
            return name, int(major), int(minor)
    return None


def dev_probe(agent, disk):
    c = agent.probe("dev", "b", disk[1], disk[2], user="root")
    end = agent.wait_terminal(c["id"])
    assert end["state"] == "FINISHED", (end, agent.output(c["id"], "stderr"))
    return bt.parse_kv(agent.output(c["id"]))


def test_device_filter_denies_a_disk(agent_factory):
    disk = a_disk()
    if disk is None:
        pytest.skip("no block device with a driver here (the test VM has /dev/vda)")
    # root without a user namespace: the device filter alone stands between it and the disk
    agent = agent_factory(flags=["--userns=none"])
    kv = dev_probe(agent, disk)
    # CAP_MKNOD: creating the node is allowed ("b *:* m"), opening it is not
    assert kv.get("mknod") == "OK", kv
    assert kv.get("open") == "EPERM", "a root task opened /dev/%s: %r" % (disk[0], kv)
    assert kv.get("null") == "OK", kv
    # the control: the same task without cgroups/devices opens the disk, so what denied it
    # above was the device filter (v1 devices.deny, v2 the BPF program), nothing else. Only
    # where we may open the disk ourselves: our CI host denies it even to the test's root.
    try:
        os.close(os.open("/dev/" + disk[0], os.O_RDONLY | os.O_CLOEXEC))
    except PermissionError:
        return
    iso = DEFAULT_ISOLATION.replace("cgroups/devices,", "")
    free = agent_factory(flags=["--isolation=" + iso, "--userns=none"])
    kv = dev_probe(free, disk)
    assert (kv.get("mknod"), kv.get("open")) == ("OK", "OK"), kv


def cgroup_of(pid):
    """{hierarchy key: absolute cgroup dir} of pid, keyed like bt.own_cgroup_dirs()."""
    mounts = bt.cgroup_mounts()
    out = {}
    for line in bt.read("/proc/%d/cgroup" % pid).splitlines():
        _, ctrls, path = line.split(":", 2)
        key = ",".join(sorted(ctrls.split(","))) if ctrls else ""
        if key in mounts:
            mnt, root = mounts[key]
            if root != "/" and path.startswith(root):
                path = path[len(root):]
            out[key or "unified"] = os.path.normpath(mnt + "/" + path.lstrip("/"))
    return out


def join_cmd(dirs):
    """Shell words that move the shell into every dir of dirs, then exec "$@"."""
    moves = "; ".join("echo $$ > '%s/cgroup.procs'" % d for d in dirs)
    return ["/bin/sh", "-c", moves + '; exec "$@"', "sh"]


def test_agent_in_a_delegated_cgroup_with_other_processes(agent_factory):
    """As under systemd with Delegate=yes: the agent's cgroup D also holds another process.
    On v2 the kernel refuses controllers in D's subtree_control while D holds processes ("no
    internal processes"), so the agent moves everything in D to the leaf D/agent first; it
    must never move a process out of D."""
    v2 = bt.is_v2_host()
    own = bt.own_cgroup_dirs()
    keys = ["unified"] if v2 else [k for k in own if set(k.split(",")) & AGENT_CTRLS]
    name = "berth-test-deleg-%d" % os.getpid()
    dele = {k: os.path.join(own[k], name) for k in keys}
    sleeper = None
    try:
        for d in dele.values():
            os.mkdir(d)
        sleeper = subprocess.Popen(join_cmd(dele.values()) + ["sleep", "600"])
        bt.wait_for(lambda: all(sleeper.pid in bt.cgroup_procs(d) for d in dele.values()), 30,
                    what="the other process in %s" % name)

        agent = agent_factory(start=False)
        agent.parent_dirs = {k: os.path.join(d, agent.parent_name) for k, d in dele.items()}
        agent.argv = join_cmd(dele.values()) + agent.argv
        agent.start()
        c = agent.launch(["sleep", "30"], cpus=0.5, mem="64MiB")
        agent.wait_state(c["id"], "RUNNING")
        dirs = agent.cgroup_dirs(c["id"])  # by controller; a joint hierarchy appears twice
        want = {os.path.join(d, agent.parent_name, c["id"]) for d in dele.values()}
        assert set(dirs.values()) == want, (dirs, want)
        agent.procs(c["id"], "sleep")
        for d in want:
            assert any(bt.proc_comm(p) == "sleep" for p in bt.cgroup_procs(d)), d
        if v2:
            d = dele["unified"]
            # D itself holds no process now, and hands the controllers down
            assert bt.read(os.path.join(d, "cgroup.procs")).split() == [], d
            ctl = set(bt.read(os.path.join(d, "cgroup.subtree_control")).split())
            assert {"cpu", "memory", "pids"} <= ctl, ctl
            assert bt.read(os.path.join(dirs["unified"], "cpu.max")).strip() == "50000 100000"
            # both the other process and the agent sit in the leaf D/agent
            for pid in (sleeper.pid, agent.proc.pid):
                assert cgroup_of(pid)["unified"] == os.path.join(d, "agent"), (pid, d)
        # nobody left the subtree it was given
        for pid in (sleeper.pid, agent.proc.pid):
            for k, d in dele.items():
                got = cgroup_of(pid)[k]
                assert got == d or got.startswith(d + "/"), \
                    "process %d moved out of %s to %s" % (pid, d, got)

        r = agent.ctl("kill", c["id"])
        assert r.returncode == 0, r.stderr
        end = agent.wait_terminal(c["id"])
        assert end["state"] == "KILLED", end
        for d in dirs.values():
            bt.wait_for(lambda: not os.path.isdir(d), 3, what="%s removed" % d)
        assert agent.stop() == 0
        for k, d in dele.items():
            got = cgroup_of(sleeper.pid)[k]
            assert got == d or got.startswith(d + "/"), (k, got)
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        for d in dele.values():
            if os.path.isdir(d):
                _, failed = bt.kill_cgroup_tree(d)
                assert not failed, failed


USAGE_KEYS = {"sampled_at", "cpu_seconds", "cpu_user_seconds", "cpu_system_seconds", "cpu_cores",
              "periods", "throttled_periods", "throttled_seconds", "memory_bytes",
              "working_set_bytes", "rss_bytes", "cache_bytes", "peak_bytes", "oom_kills", "pids"}
PRESSURE_KEYS = {"cpu_some_avg10", "memory_some_avg10", "io_some_avg10", "cpu_some_seconds",
                 "memory_some_seconds", "memory_full_seconds", "io_some_seconds",
                 "io_full_seconds"}


def test_usage_fields_on_both_versions(agent):
    c = agent.probe("alloc", 64, cpus=0.5, mem="256MiB")
    agent.wait_output(c["id"], "allocated_mib", timeout=20)
    mib = 1 << 20

    def sampled():
        st, s = agent.get("/v1/containers/%s/stats" % c["id"])
        assert st == 200, s
        u = s.get("usage") or {}
        return u if u.get("rss_bytes", 0) >= 64 * mib else None
    u = bt.wait_for(sampled, 5, what="usage with the 64 MiB allocated")
    psi = os.path.exists(os.path.join(agent.cgroup_dirs(c["id"]).get("unified", "/nonexistent"),
                                      "cpu.pressure"))
    assert set(u) == USAGE_KEYS | ({"pressure"} if psi else set()), sorted(u)
    assert u["memory_bytes"] >= u["rss_bytes"] >= 64 * mib, u
    assert u["peak_bytes"] >= u["memory_bytes"], u
    assert 0 < u["working_set_bytes"] <= u["memory_bytes"], u
    assert u["pids"] >= 1, u  # the probe (its executor lives in the supervisor cgroup)
    # (periods may still be 0: the whole allocation can fit in the first CFS period, and
    # the kernel counts a period when its timer expires)
    assert u["cpu_seconds"] > 0 and u["periods"] >= 0, u
    if psi:
        p = u["pressure"]
        assert set(p) == PRESSURE_KEYS, sorted(p)
        assert all(isinstance(v, (int, float)) and v >= 0 for v in p.values()), p
        # 64 MiB touched at half a CPU: the task waited for its quota, which the kernel
        # counts as CPU pressure of its cgroup
        assert p["cpu_some_seconds"] > 0 or u["throttled_periods"] == 0, u
    agent.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL", "grace_seconds": 0})
    agent.wait_terminal(c["id"])


def test_kill_empties_and_removes_the_cgroup(agent):
    c = agent.launch(["/bin/sh", "-c", "sleep 600 & sleep 600 & exec sleep 600"], cpus=0.25)
    agent.wait_state(c["id"], "RUNNING")
    dirs = agent.cgroup_dirs(c["id"])
    # the task's three sleeps; its executor lives in the agent's supervisor cgroup
    bt.wait_for(lambda: len(agent.procs(c["id"])) >= 3, 5, what="three sleeps")
    pids = agent.procs(c["id"]) + [c["pid"]]
    r = agent.ctl("kill", "--signal", "KILL", c["id"])
    assert r.returncode == 0, r.stderr
    end = agent.wait_terminal(c["id"])
    assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end
    for d in dirs.values():
        bt.wait_for(lambda: not os.path.isdir(d), 3, what="%s removed" % d)
    assert not any(bt.alive(p) for p in pids), pids


def test_v1_keeps_an_empty_frozen_cgroup_for_the_kills(agent):
    """v1: an empty cgroup below the parent stays FROZEN while the agent runs, so that a
    kill's freeze/thaw round does not switch the kernel's freezer key (an IPI to every CPU
    each time, issue #18); it holds nothing, kills still end every process, and the stop
    removes it with the parent. No freezer hierarchy (v2): none is made."""
    holds = {k: os.path.join(d, "freeze-hold") for k, d in agent.parent_dirs.items()}
    if "freezer" not in agent.parent_dirs:
        assert not any(os.path.exists(h) for h in holds.values()), holds
        return
    hold = holds.pop("freezer")
    assert bt.read(os.path.join(hold, "freezer.state")).strip() == "FROZEN"
    assert bt.read(os.path.join(hold, "cgroup.procs")).strip() == ""
    assert not any(os.path.exists(h) for h in holds.values()), holds  # freezer only
    c = agent.launch(["/bin/sh", "-c", "sleep 600 & exec sleep 600"], cpus=0.25)
    agent.wait_state(c["id"], "RUNNING")
    bt.wait_for(lambda: len(agent.procs(c["id"])) >= 2, 5, what="two sleeps")
    pids = agent.procs(c["id"])
    r = agent.ctl("kill", "--signal", "KILL", c["id"])
    assert r.returncode == 0, r.stderr
    agent.wait_terminal(c["id"])
    bt.wait_for(lambda: not any(bt.alive(p) for p in pids), 5, what="the sleeps gone")
    assert bt.read(os.path.join(hold, "freezer.state")).strip() == "FROZEN"
    assert agent.stop() == 0
    assert not os.path.exists(hold)
    assert not os.path.exists(agent.parent_dirs["freezer"])
