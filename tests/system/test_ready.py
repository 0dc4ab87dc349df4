# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_ready.py - issue #18: a launch creates no inode of the work_dir's file
system (agentd/ready.c). A thread of the agent makes the next launches' sandbox and runtime
dirs ahead in work_dir/ready/<k>/{s,r}, with the files their writers create in them; a
launch renames a pair into place and the writers fill the files that are there. On this
machine kind an inode made on the root file system costs 0.02-0.8 ms, and a launch made
eight of them while its client waited, its executor a ninth at the end. The kernel's word
here is the inode numbers: what the task's container has is what was made before its POST.
When work_dir/ready is a file system of its own (a rename could not move a pair) the
launches make their dirs themselves, with the same modes."""

import fcntl
import os
import stat
import struct
import subprocess

import pytest

import berthtest as bt

SANDBOX_FILES = ("stdout", "stderr")
RUNTIME_FILES = ("executor.log", "spec.json.tmp", "status.json.tmp", "hosts.tmp",
                 "hostname.tmp")


def made_pairs(a):
    """{slot: {relative path: inode}} of the complete pairs in work_dir/ready."""
    ready = os.path.join(a.work, "ready")
    pairs = {}
    for k in sorted(os.listdir(ready)):
        paths = ["s", "r"] + ["s/" + f for f in SANDBOX_FILES] + ["r/" + f for f in RUNTIME_FILES]
        try:
            pairs[k] = {p: os.lstat(os.path.join(ready, k, p)).st_ino for p in paths}
        except FileNotFoundError:
            continue  # being made, or taken
    return pairs


def wait_made(a, n=2):
    return bt.wait_for(lambda: (lambda p: p if len(p) >= n else None)(made_pairs(a)), 10,
                       what="%d pairs made in %s/ready" % (n, a.work))


def modes(a, cid):
    """The modes of a container's dirs and files, as the launch's writers make them."""
    sb = os.path.join(a.work, "sandboxes", cid)
    rt = os.path.join(a.work, "containers", cid)
    m = {"sandbox": sb, "stdout": os.path.join(sb, "stdout"), "runtime": rt}
    for f in ("executor.log", "spec.json", "status.json", "hosts", "hostname"):
        m[f] = os.path.join(rt, f)
    return {k: stat.S_IMODE(os.lstat(p).st_mode) for k, p in m.items()}


EXPECTED_MODES = {"sandbox": 0o755, "stdout": 0o640, "runtime": 0o700, "executor.log": 0o600,
                  "spec.json": 0o600, "status.json": 0o644, "hosts": 0o644, "hostname": 0o644}


def test_a_launch_takes_the_dirs_made_ahead(agent):
    before = wait_made(agent)
    c = agent.launch(shell="echo made")
    end = agent.wait_terminal(c["id"])
    assert end["state"] == "FINISHED", end
    assert agent.output(c["id"]) == "made\n"
    sb = os.path.join(agent.work, "sandboxes", c["id"])
    rt = os.path.join(agent.work, "containers", c["id"])
    ino = lambda p: os.lstat(p).st_ino  # noqa: E731
    taken = [k for k, p in before.items() if p["s"] == ino(sb)]
    assert len(taken) == 1, "the sandbox dir (inode %d) was made at the launch, not ahead: %s" % (
        ino(sb), before)
    pair = before[taken[0]]
    # every file the launch and its executor wrote is one that was there before the POST
    assert ino(rt) == pair["r"]
    assert ino(os.path.join(sb, "stdout")) == pair["s/stdout"]
    assert ino(os.path.join(sb, "stderr")) == pair["s/stderr"]
    assert ino(os.path.join(rt, "executor.log")) == pair["r/executor.log"]
    assert ino(os.path.join(rt, "spec.json")) == pair["r/spec.json.tmp"]
    assert ino(os.path.join(rt, "hosts")) == pair["r/hosts.tmp"]
    assert ino(os.path.join(rt, "hostname")) == pair["r/hostname.tmp"]
    assert ino(os.path.join(rt, "status.json")) == pair["r/status.json.tmp"]
    assert not [f for f in os.listdir(rt) if f.endswith(".tmp")], os.listdir(rt)
    assert modes(agent, c["id"]) == EXPECTED_MODES
    # the thread makes the taken pair again
    after = wait_made(agent)
    assert pair["s"] not in {p["s"] for p in after.values()}


def test_what_a_run_left_made_goes_to_the_trash(agent_factory):
    a = agent_factory()
    first = wait_made(a)
    a.stop()
    # a mark in each of the last run's pairs (not their inode numbers: an inode freed by
    # the trash in the same second may come back in a new pair)
    strays = [os.path.join(a.work, "ready", k, "s", "stray") for k in first]
    for stray in strays:
        with open(stray, "w") as f:
            f.write("left by the last run\n")
    a.start()
    wait_made(a)
    assert not [s for s in strays if os.path.exists(s)]
    bt.wait_for(lambda: not os.listdir(os.path.join(a.work, "trash")), 10,
                what="the last run's pairs removed from the trash")


def test_a_ready_dir_of_its_own_file_system_makes_launches_make_theirs(agent_factory):
    a = agent_factory(start=False)
    ready = os.path.join(a.work, "ready")
    os.makedirs(ready)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "berth-test", ready],
                   check=True)
    try:
        a.start()
        c = a.launch(shell="echo inline")
        end = a.wait_terminal(c["id"])
        assert end["state"] == "FINISHED", end
        assert a.output(c["id"]) == "inline\n"
        assert "not on one file system: launches make their dirs" in a.log
        assert os.listdir(ready) == []  # nothing made there
        assert modes(a, c["id"]) == EXPECTED_MODES
        a.stop()
    finally:
        subprocess.run(["umount", ready], check=False)


def test_a_launch_behind_a_spawn_makes_its_own(agent_factory):
    """Pairs are for the launch that comes alone: one that finds another launch's executor
    still being spawned (a burst) makes its dirs itself."""
    import threading
    from test_spawn import NO_SPARES, held_launch, supervisor
    agent = agent_factory(env=NO_SPARES)
    before = wait_made(agent)
    inos = {p["s"] for p in before.values()}
    sb = lambda cid: os.lstat(os.path.join(agent.work, "sandboxes", cid)).st_ino  # noqa: E731
    _, _, thaw = supervisor(agent)
    out2 = {}
    try:
        th, out, held = held_launch(agent)  # its executor frozen while it is spawned
        assert sb(held["id"]) in inos  # it came alone
        th2 = threading.Thread(target=lambda: out2.update(r=agent.post(
            "/v1/containers", {"command": {"shell": "echo behind"},
                               "resources": {"cpus": 0.1, "mem": "32MiB"}}, timeout=60)))
        th2.start()

        def behind():
            st, listed = agent.get("/v1/containers")
            ids = [c["id"] for c in listed["containers"]
                   if c["state"] == "STAGING" and c["id"] != held["id"]]
            return ids[0] if ids else None
        cid = bt.wait_for(behind, 10, what="the second launch, STAGING behind the first")
        assert sb(cid) not in inos, "the launch behind a spawn took a pair made ahead"
    finally:
        thaw()
    th.join(60)
    th2.join(60)
    assert out["r"][0] == 201 and out2["r"][0] == 201, (out, out2)
    agent.note(out2["r"][1])
    end = agent.wait_terminal(cid)
    assert end["state"] == "FINISHED" and agent.output(cid) == "behind\n", end
    assert modes(agent, cid) == EXPECTED_MODES


FS_IOC_GETFLAGS, FS_TOPDIR_FL = 0x80086601, 0x00020000  # linux/fs.h


def fs_flags(path):
    """The dir's inode flags (lsattr's)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]
    finally:
        os.close(fd)


def test_container_dirs_are_spread_over_the_block_groups(agent):
    """The parents of every container's dirs carry ext4's top-directory flag (chattr +T): the
    allocator spreads what is made in them over the block groups. Without it, on an ext4
    without a journal (this machine kind's root), each inode made after a burst of removals
    scanned past every inode freed in its group in the last minutes: 1,000 launches took
    4.5-7 s there instead of ~2.2 s (docs/performance.md)."""
    fs = subprocess.run(["stat", "-f", "-c", "%t", agent.work], capture_output=True,
                        text=True, check=True).stdout.strip()
    if fs != "ef53":  # the flag is ext2/3/4's (tmpfs, for one, answers EOPNOTSUPP)
        pytest.skip("%s: not an ext2/3/4 file system (magic %s)" % (agent.work, fs))
    wait_made(agent)
    dirs = [os.path.join(agent.work, d) for d in ("sandboxes", "containers", "ready")]
    dirs += [os.path.join(agent.work, "ready", k) for k in os.listdir(dirs[2])]
    flags = {d: fs_flags(d) for d in dirs}
    assert all(f & FS_TOPDIR_FL for f in flags.values()), flags
    # a dir made before an upgrade gets it at the next start
    agent.stop()
    subprocess.run(["chattr", "-T", dirs[0]], check=True)
    assert not fs_flags(dirs[0]) & FS_TOPDIR_FL
    agent.start()
    assert fs_flags(dirs[0]) & FS_TOPDIR_FL
