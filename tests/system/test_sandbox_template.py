# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_sandbox_template.py - issue #18: the read-only host view, the masks and
/dev of every sandbox are built once per agent, in a mount namespace the agent holds (the
template, agentd/template.c, isolator/mount-template.c), and each executor enters a copy of
it and adds only what is its own (isolator/mount.c). Checked: the agent holds the template;
a launch makes at most 30 mount calls (46 when each executor built everything); the view a
task sees is the host's, read-only, with the agent's dirs masked, as before; and a host
mount made or removed after the agent started is seen by the tasks launched once the
template was built again (the agent notices the change itself and builds off the launch
path: GET /metrics' berth_agent_template_builds_total counts the builds), so the template
holds no unmounted filesystem; a launch never waits for a build under way, the agent's own
launches and ends change nothing of its mounts (no build), and changes during a build make
exactly one more."""

import glob
import os
import re
import shutil
import subprocess
import time

import pytest

import berthtest as bt

MOUNT_CALLS = ("mount", "umount2", "pivot_root", "open_tree", "move_mount", "mount_setattr",
               "fsopen", "fsmount", "fsconfig", "setns", "unshare")


def link_or_none(path):
    """readlink, or None for an fd the agent closed since it was listed."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def template_ns(agent):
    """The mount namespaces the agent holds fds of ("mnt:[...]"), not its own."""
    own = os.readlink("/proc/%d/ns/mnt" % agent.proc.pid)
    held = set()
    for fd in glob.glob("/proc/%d/fd/*" % agent.proc.pid):
        link = link_or_none(fd)
        if link and link.startswith("mnt:[") and link != own:
            held.add(link)
    return held


def builds(agent):
    """berth_agent_template_builds_total: the templates the agent built (the first one too)."""
    st, text = agent.get("/metrics")
    assert st == 200, st
    m = re.search(r"^berth_agent_template_builds_total (\d+)$", text, re.M)
    assert m, "no berth_agent_template_builds_total in /metrics"
    return int(m.group(1))


def wait_builds(agent, n):
    """Until the agent built its n-th template (no launch needed to start it)."""
    return bt.wait_for(lambda: builds(agent) >= n, 30, interval=0.05,
                       what="template build %d" % n)


def assert_builds_stay(agent, n, seconds=1.0):
    """A negative, so bounded in time: the agent looks at its mountinfo every 100 ms; over
    ten looks and more it builds nothing beyond its n-th template."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert builds(agent) == n, "template builds: %d, expected %d" % (builds(agent), n)
        time.sleep(0.1)


def private_agent(agent_factory, executor_script=None):
    """An agent (started) in a mount namespace of its own (unshare, private propagation):
    what this test mounts in it (agent_mount) is all that changes its mount table, whatever
    else mounts and unmounts on this host meanwhile. executor_script: the text of a wrapper
    run as its executor, given the agent's tmp dir."""
    agent = agent_factory(start=False)
    if executor_script:
        wrapper = os.path.join(agent.tmp, "executor")
        with open(wrapper, "w") as f:
            f.write(executor_script(agent.tmp))
        os.chmod(wrapper, 0o755)
        agent.argv = [("--executor=" + wrapper) if a.startswith("--executor=") else a
                      for a in agent.argv]
    agent.argv = ["unshare", "--mount", "--propagation", "private", "--"] + agent.argv
    return agent.start()


def in_agent_ns(agent, script, check=True):
    subprocess.run(["nsenter", "--mount=/proc/%d/ns/mnt" % agent.proc.pid, "sh", "-ec", script],
                   check=check, timeout=30)


def agent_mount(agent, path, name, content):
    """A tmpfs on path (made here) with the file f holding content, in the agent's mount
    namespace: for the agent, a host mount made after its start."""
    os.mkdir(path)
    os.chmod(path, 0o755)
    in_agent_ns(agent, "mount -t tmpfs -o size=1m,mode=0755 %s %s; printf '%s' > %s/f; "
                "chmod 644 %s/f" % (name, path, content, path, path))


def agent_umount(agent, path, check=True):
    """(check=False in a finally: an agent that died took its namespace and mounts along.)"""
    in_agent_ns(agent, "umount %s" % path, check)


def mountinfo(text):
    """[(mount point, per-mount options, fstype)] of a mountinfo text."""
    out = []
    for line in text.splitlines():
        f = line.split()
        i = f.index("-")
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4])
        out.append((point, set(f[5].split(",")), f[i + 1]))
    return out


def test_a_launch_copies_the_agents_template(agent_factory):
    """strace counts the executor's mount calls: the template's copy (setns, unshare), the
    sandbox dir, the /etc files, /tmp, /proc and its read-only and hidden parts, devpts and
    /dev/shm - and none of the host view, the masks, /dev or pivot_root."""
    strace = shutil.which("strace")
    assert strace, "strace is needed (apt-get install strace)"
    agent = agent_factory(start=False)
    traces = os.path.join(agent.tmp, "traces")
    os.mkdir(traces)
    wrapper = os.path.join(agent.tmp, "executor")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec %s -f -qq -e trace=%s -o \"$(mktemp %s/t.XXXXXX)\" %s \"$@\"\n"
                % (strace, ",".join(MOUNT_CALLS), traces, bt.EXECUTOR_BIN))
    os.chmod(wrapper, 0o755)
    agent.argv = [("--executor=" + wrapper) if a.startswith("--executor=") else a
                  for a in agent.argv]
    agent.start()
    assert template_ns(agent), "the agent holds no template mount namespace"
    c = agent.launch(["/bin/true"])
    end = agent.wait_terminal(c["id"])
    assert end["state"] == "FINISHED", end
    calls = None
    for t in glob.glob(os.path.join(traces, "t.*")):
        text = bt.read(t, "")
        if "--runtime-dir" in text or "/containers/%s" % c["id"] in text:
            calls = [l for l in text.splitlines()
                     if re.match(r"\d+ +(%s)\(" % "|".join(MOUNT_CALLS), l)]
    assert calls is not None, "no trace of the task's executor in %s" % os.listdir(traces)
    names = [re.match(r"\d+ +(\w+)\(", l).group(1) for l in calls]
    assert "setns" in names and "unshare" in names, calls
    assert "pivot_root" not in names, calls
    assert 10 <= len(calls) <= 30, "%d mount calls per launch:\n%s" % (len(calls),
                                                                     "\n".join(calls))


def test_the_sandbox_view_is_the_hosts_read_only(agent):
    """The task's mount table: every mount of the host's that no mask, /tmp, /proc or /dev
    covers is there, read-only; the agent's work_dir and socket dir are empty read-only
    tmpfs but for the task's own sandbox dir (writable, in a read-only tmpfs of its own);
    /tmp, /proc, devpts and /dev/shm are the sandbox's own, /dev a read-only tmpfs."""
    c = agent.launch(["/bin/cat", "/proc/self/mountinfo"], user="root")
    end = agent.wait_terminal(c["id"])
    assert end["state"] == "FINISHED", (end, agent.output(c["id"], "stderr"))
    seen = {}
    for point, opts, fstype in mountinfo(agent.output(c["id"])):
        seen[point] = (opts, fstype)  # the last mount on a point is the one visible
    sock_dir = os.path.dirname(agent.sock)
    hidden = ("/tmp", "/proc", "/dev", "/sys/firmware", "/sys/kernel/debug", agent.tmp,
              "/root")

    def under(p, d):
        return p == d or p.startswith(d.rstrip("/") + "/")
    for point, opts, fstype in mountinfo(bt.read("/proc/self/mountinfo")):
        if any(under(point, d) for d in hidden):
            continue
        assert point in seen, "host mount %s missing in the sandbox" % point
        assert "ro" in seen[point][0], "host mount %s writable in the sandbox: %s" % (
            point, seen[point])
    sandbox = end["sandbox"]
    assert "rw" in seen[sandbox][0], seen.get(sandbox)
    parent = os.path.dirname(sandbox)
    assert seen[parent][1] == "tmpfs" and "ro" in seen[parent][0], seen.get(parent)
    for d in (agent.work, sock_dir):
        assert seen[d][1] == "tmpfs" and "ro" in seen[d][0], (d, seen.get(d))
    for point, fstype, mode in (("/tmp", "tmpfs", "rw"), ("/proc", "proc", "rw"),
                                ("/proc/sys", "proc", "ro"), ("/dev", "tmpfs", "ro"),
                                ("/dev/pts", "devpts", "rw"), ("/dev/shm", "tmpfs", "rw")):
        assert point in seen and seen[point][1] == fstype and mode in seen[point][0], \
            (point, seen.get(point))


def test_the_proc_masks_are_no_superblocks_of_their_own(agent):
    """/proc/acpi (and /proc/scsi where the host has it) is hidden under an empty read-only
    directory of the template's /dev, bound (isolator/mount.c sb_empty_ro), not under a
    tmpfs of each sandbox's own: every superblock a sandbox holds makes each memory
    cgroup's removal walk two more of the kernel's lists (docs/performance.md)."""
    masked = [p for p in ("/proc/acpi", "/proc/scsi") if os.path.isdir(p)]
    assert masked, "this host has neither /proc/acpi nor /proc/scsi to mask"
    c = agent.launch(["/bin/sh", "-c", "cat /proc/self/mountinfo; for d in %s; do "
                      "echo \"list $d: $(ls -A $d | wc -l)\"; touch $d/x 2>/dev/null || "
                      "echo \"ro $d\"; done" % " ".join(masked)], user="root")
    end = agent.wait_terminal(c["id"])
    assert end["state"] == "FINISHED", (end, agent.output(c["id"], "stderr"))
    out = agent.output(c["id"])
    devs = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) > 6 and "-" in f:
            devs[f[4]] = (f[2], set(f[5].split(",")))  # the last mount on a point wins
    for d in masked:
        assert d in devs and "ro" in devs[d][1], (d, devs.get(d))
        assert devs[d][0] == devs["/dev"][0], "%s is not the template's /dev: %s vs %s" % (
            d, devs[d], devs["/dev"])
        assert "list %s: 0" % d in out and "ro %s" % d in out, out


def test_a_host_mount_made_after_the_start_is_seen_and_not_held(agent_factory):
    """The template is a snapshot of the host's mounts: a mount made (or removed) on the
    host afterwards makes the agent build a new one by itself, without a launch (and drop
    the old one, which held the mount); the tasks launched after that see it."""
    agent = private_agent(agent_factory)
    before, n = template_ns(agent), builds(agent)
    assert n == 1, n
    later = os.path.join(agent.tmp, "later")
    agent_mount(agent, later, "berth-later", "mounted-later\n")
    try:
        wait_builds(agent, n + 1)
        c = agent.launch(["/bin/cat", os.path.join(later, "f")])
        end = agent.wait_terminal(c["id"])
        assert end["state"] == "FINISHED", (end, agent.output(c["id"], "stderr"))
        assert agent.output(c["id"]) == "mounted-later\n"
        after = template_ns(agent)
        assert after and after != before, "the template was not built again: %s" % after
    finally:
        agent_umount(agent, later)
    wait_builds(agent, n + 2)
    c = agent.launch(["/bin/sh", "-c", "ls -a %s; grep -c berth-later /proc/self/mountinfo; true"
                      % later])
    end = agent.wait_terminal(c["id"])
    assert agent.output(c["id"]).split() == [".", "..", "0"], agent.output(c["id"])
    # nothing of the agent's (its template included) holds the unmounted tmpfs any more
    held = template_ns(agent)
    for ns in held:
        fd = [f for f in glob.glob("/proc/%d/fd/*" % agent.proc.pid)
              if link_or_none(f) == ns][0]
        r = subprocess.run(["nsenter", "--mount=" + fd, "cat", "/proc/self/mountinfo"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r
        assert "berth-later" not in r.stdout, "the template still holds the unmounted tmpfs"
    assert end["state"] == "FINISHED", end


def test_own_launches_and_ends_build_no_template(agent_factory):
    """50 launches and their ends change nothing of the agent's mounts: no template is
    built (each would have been one when a launch rebuilt on a change, and a stall). The
    agent has a mount namespace of its own: only it and its children could change it."""
    agent = private_agent(agent_factory)
    n = builds(agent)
    assert n == 1, n
    ids = [agent.launch(["/bin/true"], cpus=0.01, mem="16MiB")["id"] for _ in range(50)]
    for cid in ids:
        assert agent.wait_terminal(cid, timeout=60)["state"] == "FINISHED"
        agent.delete("/v1/containers/" + cid)
    assert_builds_stay(agent, n)


def test_a_launch_never_waits_for_a_build(agent_factory):
    """The builder is held (a wrapper waits for a file to go) after a host mount: a launch
    meanwhile runs to its end on the old template (when the launch built it, the POST
    waited for the builder: 60 s); a second mount during the build makes one more build
    after it, not one each; the new template has both mounts."""
    def script(tmp):
        hold, started = os.path.join(tmp, "hold"), os.path.join(tmp, "started")
        return ("#!/bin/sh\nif [ \"$1\" = --template ] && [ -e %s ]; then\n  : > %s\n"
                "  while [ -e %s ]; do sleep 0.05; done\nfi\nexec %s \"$@\"\n"
                % (hold, started, hold, bt.EXECUTOR_BIN))
    agent = private_agent(agent_factory, script)
    hold, started = os.path.join(agent.tmp, "hold"), os.path.join(agent.tmp, "started")
    n = builds(agent)
    assert n == 1, n
    one, two = os.path.join(agent.tmp, "one"), os.path.join(agent.tmp, "two")
    mounted = []
    try:
        open(hold, "w").close()
        agent_mount(agent, one, "berth-one", "one\n")
        mounted.append(one)
        # right after the mount: the launch sees the change (or the agent saw it first) and
        # must not wait for the build it starts
        t0 = time.monotonic()
        c = agent.launch(["/bin/sh", "-c", "cat %s/f 2>/dev/null; echo done" % one])
        end = agent.wait_terminal(c["id"], timeout=30)
        took = time.monotonic() - t0
        assert end["state"] == "FINISHED" and agent.output(c["id"]) == "done\n", \
            (end, agent.output(c["id"]))
        assert took < 20, "the launch took %.1f s with a build under way" % took
        bt.wait_for(lambda: os.path.exists(started), 30, what="the template builder to start")
        assert builds(agent) == n, "a build finished while its builder was held"
        agent_mount(agent, two, "berth-two", "two\n")  # during the build: one more after it
        mounted.append(two)
        os.unlink(hold)
        wait_builds(agent, n + 2)
        c = agent.launch(["/bin/sh", "-c", "cat %s/f %s/f" % (one, two)])
        end = agent.wait_terminal(c["id"])
        assert agent.output(c["id"]) == "one\ntwo\n", (end, agent.output(c["id"], "stderr"))
        assert_builds_stay(agent, n + 2)  # nothing changed since: no third build
    finally:
        if os.path.exists(hold):
            os.unlink(hold)
        for p in mounted:
            agent_umount(agent, p, check=False)


@pytest.mark.parametrize("readonly", [True, False])
def test_volumes_still_bind_the_hosts_view(agent, tmp_path, readonly):
    """Volume host paths are taken from the host's view (the template masks what lies
    below the agent's dirs, and knows nothing of later mounts): read-only stays so."""
    src = os.path.join(agent.tmp, "vol")
    os.mkdir(src)
    os.chmod(src, 0o777)
    with open(os.path.join(src, "in"), "w") as f:
        f.write("from-host\n")
    os.chmod(os.path.join(src, "in"), 0o644)
    c = agent.launch(["/bin/sh", "-c", "cat v/in; echo x > v/out && echo wrote"],
                     volumes=[{"host": src, "container": "v", "readonly": readonly}])
    end = agent.wait_terminal(c["id"])
    out = agent.output(c["id"])
    assert "from-host" in out, (end, out, agent.output(c["id"], "stderr"))
    assert ("wrote" in out) != readonly, out
    assert os.path.exists(os.path.join(src, "out")) != readonly
