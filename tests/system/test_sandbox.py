# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_sandbox.py - issue #3 item 5: what a task sees and may do inside its
sandbox: its own pid namespace and hostname, a private /tmp, a read-only host except its
cwd, no capabilities as nobody, docker's default set as root, and no mount, unshare, reboot,
module loading or raw block device access - checked with the probe and with real binaries.
Neither a task that chroots out nor `berthctl exec` leaves the sandbox's root. The VM suite
also runs this file on a guest whose root is the initramfs (issue #19: no pivot_root there,
isolator/mount.c moves the sandbox onto it instead)."""

import os
import socket

import pytest

import berthtest as bt


def run_all(agent, specs, timeout=20):
    """Launch {name: (argv, extra)} at once, wait for all; returns {name: (container, kv)}."""
    ids = {}
    for name, (argv, extra) in specs.items():
        ids[name] = agent.launch(argv, **extra)["id"]
    done = agent.wait_all_terminal(list(ids.values()), timeout)
    return {name: (done[cid], bt.parse_kv(agent.output(cid))) for name, cid in ids.items()}


def test_namespaces_and_filesystem(agent):
    mark = "berth-probe-%d" % os.getpid()
    P = bt.PROBE
    specs = {
        "ps": ([P, "ps"], {}),
        "hostname": ([P, "hostname"], {}),
        "tmp": ([P, "write", "/tmp/" + mark], {}),
        "cwd": ([P, "write", "cwd-file"], {}),
        "usr": ([P, "write", "/usr/" + mark], {"user": "root"}),
        "etc": ([P, "write", "/etc/" + mark], {"user": "root"}),
        "procsys": ([P, "write", "/proc/sys/vm/drop_caches"], {"user": "root"}),
        "sysfs": ([P, "write", "/sys/kernel/uevent_helper"], {"user": "root"}),
    }
    try:
        res = run_all(agent, specs)
    finally:
        leaked = [p for p in ("/tmp/" + mark, "/usr/" + mark, "/etc/" + mark)
                  if os.path.exists(p)]
        for p in leaked:
            os.unlink(p)
    assert not leaked, "the task wrote to the host: %s" % leaked
    for name, (c, kv) in res.items():
        assert c["state"] == "FINISHED", "%s: %r" % (name, c)

    kv = res["ps"][1]
    pids = {int(p) for p in kv["pids"].split(",")}
    assert pids == {1, int(kv["self"])}, "the task sees pids %s" % sorted(pids)
    assert res["hostname"][1]["hostname"] not in ("", socket.gethostname())
    assert res["tmp"][1]["write"] == "OK"            # private /tmp is writable ...
    assert not os.path.exists("/tmp/" + mark)       # ... and not the host's
    assert res["cwd"][1]["write"] == "OK"
    cwd_file = os.path.join(res["cwd"][0]["sandbox"], "cwd-file")
    assert bt.read(cwd_file) == "probe\n", "cwd is not the sandbox dir"
    for name in ("usr", "etc", "procsys", "sysfs"):
        assert res[name][1]["write"] in ("EROFS", "EACCES", "EPERM"), \
            "%s as root: %r" % (name, res[name][1])
    assert res["usr"][1]["write"] == "EROFS"


def caps_of(agent, **extra):
    cid = agent.probe("caps", **extra)["id"]
    c = agent.wait_terminal(cid)
    assert c["state"] == "FINISHED", c
    return bt.parse_kv(agent.output(cid))


def test_nobody_has_no_caps(agent):
    kv = caps_of(agent)  # default task_user = nobody
    assert kv["uid"] == "65534" and kv["euid"] == "65534", kv
    assert int(kv["CapEff"], 16) == 0, kv
    assert int(kv["CapPrm"], 16) == 0, kv
    assert int(kv["CapAmb"], 16) == 0, kv
    assert kv["NoNewPrivs"] == "1", kv
    assert int(kv["CapBnd"], 16) & ~bt.DOCKER_CAP_MASK == 0, kv


@pytest.mark.parametrize("userns", ["root", "none"])
def test_root_has_default_caps_only(agent_factory, userns):
    """Docker's capability set, inside the task's user namespace (the default for root
    tasks, #11) or, with userns = none, on the host."""
    agent = agent_factory(flags=["--userns=" + userns])
    kv = caps_of(agent, user="root")
    assert kv["uid"] == "0", kv
    assert int(kv["CapBnd"], 16) == bt.DOCKER_CAP_MASK, \
        "CapBnd %s, want docker's default %x" % (kv["CapBnd"], bt.DOCKER_CAP_MASK)
    assert int(kv["CapEff"], 16) & ~bt.DOCKER_CAP_MASK == 0, kv
    assert kv["NoNewPrivs"] == "1", kv
    assert kv["Seccomp"] == "2", "no seccomp filter: %r" % kv


@pytest.mark.parametrize("userns", ["root", "none"])
def test_root_cannot_escape(agent_factory, userns):
    agent = agent_factory(flags=["--userns=" + userns])
    cid = agent.probe("syscalls", user="root")["id"]
    uu = agent.launch(["/usr/bin/unshare", "-U", "/bin/true"], user="root")["id"]
    um = agent.launch(["/usr/bin/unshare", "-m", "/bin/true"], user="root")["id"]
    done = agent.wait_all_terminal([cid, uu, um])
    assert done[cid]["state"] == "FINISHED", done[cid]
    kv = bt.parse_kv(agent.output(cid))
    for k in ("mount", "unshare_user", "unshare_mount", "reboot", "init_module"):
        assert kv.get(k) == "EPERM", "%s: %r" % (k, kv)
    # (init_module: EPERM must come from the seccomp filter or the dropped capability even
    # on a kernel without module support, where an unfiltered call gives ENOSYS)
    # a host block device: mknod may be allowed, opening it must not be
    assert "root_dev" in kv, kv
    if userns == "root":
        # in a user namespace the kernel makes no device nodes at all
        assert kv.get("mknod_blk") == "EPERM", kv
    else:
        # CAP_MKNOD is in the default set and the device filter allows mknod (as docker's
        # does): the node gets made, and opening it is what the devices cgroup / BPF
        # program refuses
        assert kv.get("mknod_blk") == "OK", kv
        assert kv.get("open_blk") == "EPERM", "the task could open the host's disk: %r" % kv
    for k in ("kexec_load", "bpf", "keyctl", "perf_event_open"):
        assert kv.get(k) == "EPERM", "%s not refused by the filter: %r" % (k, kv)
    for x in (uu, um):
        c = done[x]
        assert (c["state"], c["reason"]) == ("FAILED", "EXITED"), c
        assert c["exit_code"] != 0
        assert "Operation not permitted" in agent.output(x, "stderr"), agent.output(x, "stderr")


def test_devices_minimal(agent):
    cid = agent.launch(["/bin/sh", "-c", "ls /dev; cat /dev/null && echo null=ok"],
                       user="root")["id"]
    c = agent.wait_terminal(cid)
    assert c["state"] == "FINISHED", (c, agent.output(cid, "stderr"))
    names = set(agent.output(cid).split())
    assert "null=ok" in names
    for d in ("null", "zero", "full", "random", "urandom", "tty"):
        assert d in names, "/dev/%s missing in the sandbox: %s" % (d, sorted(names))
    host_disks = [d for d in ("vda", "sda", "nvme0n1", "xvda") if os.path.exists("/dev/" + d)]
    if not host_disks:
        pytest.skip("no host disk node to compare")
    assert not (set(host_disks) & names), "host disks visible in /dev: %s" % sorted(names)


def test_socket_dir_containing_work_dir(agent_factory):
    """The agent's socket dir may contain its work_dir (both masked in the sandbox): tasks
    must still start."""
    a = agent_factory(start=False)
    a.sock = os.path.join(a.tmp, "agent.sock")
    a.argv = [x if not x.startswith("--listen=") else "--listen=unix:" + a.sock for x in a.argv]
    a.start()
    c = a.probe("exit", 0)
    end = a.wait_terminal(c["id"])
    assert end["state"] == "FINISHED", end["message"]


def test_agent_files_are_hidden(agent_factory):
    """What a task must not see: other sandboxes, state.db, the runtime dirs with the
    executors' status files, the agent's socket and its token; and it holds no fd but 0-2."""
    agent = agent_factory(start=False)
    token = os.path.join(agent.tmp, "token")
    with open(token, "w") as f:
        f.write("hidden-token-0123456789abcdef\n")
    join = os.path.join(agent.tmp, "join.token")
    with open(join, "w") as f:
        f.write("hidden-join-0123456789abcdef\n")
    agent.argv += ["--api_token_file=" + token, "--token_file=" + join]
    agent.start()
    other = agent.launch(["sleep", "30"])["id"]
    agent.wait_state(other, "RUNNING")
    script = ("ls -a %s/sandboxes; ls -a %s/containers; ls %s/state.db; ls %s; cat %s %s; "
              "ls /proc/self/fd; echo done=1" % (agent.work, agent.work, agent.work,
                                                 os.path.dirname(agent.sock), token, join))
    cid = agent.launch(["/bin/sh", "-c", script], user="root")["id"]
    c = agent.wait_terminal(cid)
    out, err = agent.output(cid), agent.output(cid, "stderr")
    assert "done=1" in out, (c, out, err)
    assert other not in out, "another sandbox is visible: %s" % out
    assert "state.db" in err and "No such file" in err, err
    assert "agent.sock" not in out, out
    assert "hidden-token" not in out, "the TCP API's token file is readable in the sandbox"
    assert "hidden-join" not in out, "the master link's join token is readable in the sandbox"
    # the host path of the sandbox dirs is closed to other users (a root task may plant
    # device nodes or setuid files there)
    assert os.stat(os.path.join(agent.work, "sandboxes")).st_mode & 0o777 == 0o700
    fds = [l for l in out.splitlines() if l.isdigit()]
    # ls itself opens one fd for the directory it lists
    assert set(fds) <= {"0", "1", "2", "3"}, "the task inherited fds %s" % fds


def test_root_cannot_chroot_out(agent):
    """A root task keeps CAP_SYS_CHROOT (docker's default set): the classic escape must end
    inside the sandbox, where the agent's work_dir (state.db) is masked. With pivot_root
    the namespace's root is the sandbox; on an initramfs root the sandbox is moved on top of
    it and a walk up lands back in it. As nobody, chroot is refused outright."""
    db = os.path.join(agent.work, "state.db")
    assert os.path.exists(db)
    as_root = agent.probe("escape", db, user="root")["id"]
    as_nobody = agent.probe("escape", db)["id"]
    done = agent.wait_all_terminal([as_root, as_nobody])
    for cid in (as_root, as_nobody):
        assert done[cid]["state"] == "FINISHED", (done[cid], agent.output(cid, "stderr"))
    kv = bt.parse_kv(agent.output(as_root))
    assert kv["chroot"] == "OK", kv  # the capability is there: the root is what holds
    assert kv["exists"] == "no", "a root task chrooted out of its sandbox: %r" % kv
    kv = bt.parse_kv(agent.output(as_nobody))
    assert kv == {"chroot": "EPERM", "exists": "no"}, kv


def test_exec_stays_in_the_sandbox(agent):
    """`berthctl exec` joins the sandbox's namespaces and must land on its root, not on
    what lies under it (rootfs, with the host's files, on an initramfs root: the sandbox is
    moved on top of it, and setns follows the mounts on "/" down to it)."""
    db = os.path.join(agent.work, "state.db")
    c = agent.launch(["sleep", "600"], user="root")
    agent.wait_state(c["id"], "RUNNING")
    r = agent.ctl("exec", c["id"], "--", "/bin/sh", "-c",
                  "pwd; test -e %s && echo host-visible; echo done" % db, timeout=30)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == agent.inspect(c["id"])["sandbox"], lines
    assert "host-visible" not in lines, "exec sees the host's root: %r" % lines
    assert lines[-1] == "done"
    r = agent.ctl("exec", c["id"], "--", bt.PROBE, "escape", db, timeout=30)
    assert r.returncode == 0, r
    assert bt.parse_kv(r.stdout) == {"chroot": "OK", "exists": "no"}, r.stdout


def raw_sigaction(sig, handler):
    """Set sig's disposition with the system call, which takes glibc's own signals (32, 33)
    that signal.signal() refuses; handler: 1 (SIG_IGN), 0 (SIG_DFL) or what this returned.
    Returns the old disposition (the kernel's struct sigaction, four words)."""
    import ctypes
    nr = {"x86_64": 13, "aarch64": 134}[os.uname().machine]
    libc = ctypes.CDLL(None, use_errno=True)
    new = handler if not isinstance(handler, int) else (ctypes.c_ulong * 4)(handler, 0, 0, 0)
    old = (ctypes.c_ulong * 4)()
    if libc.syscall(nr, sig, new, old, 8) != 0:
        raise OSError(ctypes.get_errno(), "rt_sigaction(%d)" % sig)
    return old


def signal_masks(text):
    kv = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k: int(kv[k], 16) for k in ("SigIgn", "SigBlk")}


@pytest.mark.parametrize("userns", ["root", "none"])
def test_signals_are_the_defaults(agent_factory, userns):
    """A task starts with no signal ignored or blocked, whatever the agent was started with
    (here SIGHUP and SIGUSR2 ignored, as under nohup, and 32, glibc's own, as dash leaves
    it to its children: make check's pytest had it so) and whatever the executor ignores for
    itself (SIGPIPE): the agent's spawn sets every disposition back, the executor's children
    the ones it changed (executor/main.c exe_signals_default). Both ways to the task: the
    child that shares the executor's memory (userns none) and the forked one (a user
    namespace), and `berthctl exec`'s command."""
    import signal
    saved = [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGHUP, signal.SIGUSR2)]
    saved32 = raw_sigaction(32, 1)  # glibc's SIGCANCEL, ignored under dash (make's shell)
    try:
        agent = agent_factory(flags=["--userns=" + userns])
    finally:
        raw_sigaction(32, saved32)
        for s, old in zip((signal.SIGHUP, signal.SIGUSR2), saved):
            signal.signal(s, old)
    ign = signal_masks(bt.read("/proc/%d/status" % agent.proc.pid))["SigIgn"]
    assert ign & (1 << (signal.SIGHUP - 1)) and ign & (1 << 31), \
        "the agent did not inherit SIGHUP and 32 ignored: %x" % ign
    c = agent.launch(["cat", "/proc/self/status"], user="root")
    assert agent.wait_terminal(c["id"])["state"] == "FINISHED"
    assert signal_masks(agent.output(c["id"])) == {"SigIgn": 0, "SigBlk": 0}
    c = agent.launch(["sleep", "600"], user="root")
    agent.wait_state(c["id"], "RUNNING")
    r = agent.ctl("exec", c["id"], "--", "cat", "/proc/self/status", timeout=30)
    assert r.returncode == 0, r
    assert signal_masks(r.stdout) == {"SigIgn": 0, "SigBlk": 0}
