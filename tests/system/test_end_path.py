# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_end_path.py - issue #18: a task's end before GET .../wait answers.
(1) The answer goes out before the container's cgroups are removed (agentd/release.c: the
release's first look is the next loop turn's, and the answer's write is made as soon as the
loop polls). The removal (a look at each hierarchy's tasks, six rmdirs on v1) used to come
first: 0.2-0.3 ms of every `berthctl run --wait` on this machine kind; strace on the loop's
thread says in which order the two were made. (2) An executor whose exit a tracer holds
(ptrace) ends its container once the tracer lets it go: the agent's pidfd wake-up that
came while only the tracer could reap it used to be dropped, the container left live."""

import ctypes
import os
import shutil
import subprocess

import berthtest as bt


def test_the_wait_is_answered_before_the_cgroups_go(agent):
    strace = shutil.which("strace")
    assert strace, "strace is needed (apt-get install strace)"
    # ends by itself once told (its sandbox is its cwd): its executor reaps it, and the
    # cgroups are empty when its end is known
    c = agent.launch(shell="while [ ! -e go ]; do sleep 0.01; done")
    cid = c["id"]
    agent.wait_state(cid, "RUNNING")
    dirs, go = agent.cgroup_dirs(cid), os.path.join(agent.sandbox(cid), "go")
    assert dirs and all(os.path.isdir(d) for d in dirs.values()), dirs
    out = os.path.join(agent.tmp, "loop.strace")
    tr = subprocess.Popen([strace, "-p", str(agent.proc.pid), "-e", "trace=writev,unlinkat",
                           "-s", "4096", "-o", out], stderr=subprocess.PIPE, text=True)
    try:
        assert "attached" in tr.stderr.readline()
        open(go, "w").close()
        st, end = agent.get("/v1/containers/%s/wait" % cid, timeout=30)
        assert st == 200 and end["state"] == "FINISHED", end
        bt.wait_for(lambda: not any(os.path.isdir(d) for d in dirs.values()), 10,
                    what="the container's cgroups removed")
    finally:
        tr.terminate()
        tr.wait(timeout=30)
    lines = bt.read(out, "").splitlines()
    answer = [i for i, line in enumerate(lines)
              if line.startswith("writev(") and cid in line and r'\"state\":\"FINISHED\"' in line]
    rmdirs = [i for i, line in enumerate(lines)
              if line.startswith("unlinkat(") and '"%s"' % cid in line and "AT_REMOVEDIR" in line]
    assert answer and rmdirs, "\n".join(lines[-40:])
    assert answer[0] < rmdirs[0], "the cgroups went before the answer:\n%s" % "\n".join(
        lines[min(rmdirs[0], answer[0]):answer[0] + 1])


class Tracer:
    """ptrace(2) on a process that is not ours (ctypes): seized with PTRACE_O_TRACEEXIT, it
    stops at the start of its exit, after all it did, before the kernel tears anything
    down; once it exited, its real parent can reap it only when the tracer lets go."""

    SEIZE, CONT, DETACH, O_TRACEEXIT, WALL = 0x4206, 7, 17, 0x40, 0x40000000

    def __init__(self, pid):
        self.pid, self.libc = pid, ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.attached = self.call(self.SEIZE, self.O_TRACEEXIT) == 0

    def call(self, req, data=0):
        r = self.libc.ptrace(req, self.pid, None, ctypes.c_void_p(data))
        assert r == 0, "ptrace %#x: %s" % (req, os.strerror(ctypes.get_errno()))
        return r

    def stopped(self):
        return os.waitpid(self.pid, os.WNOHANG | self.WALL)[0] == self.pid

    def release(self):
        """Let it go: a stopped one goes on (detached), an exited one is reaped by us as
        its tracer, which hands it to its parent."""
        if not self.attached:
            return
        self.attached = False
        if bt.read("/proc/%d/stat" % self.pid, ") Z").split(") ")[-1][:1] == "Z":
            os.waitpid(self.pid, self.WALL)
        else:
            self.libc.ptrace(self.DETACH, self.pid, None, None)


def state(pid):
    return bt.read("/proc/%d/stat" % pid, ") -").split(") ")[-1][:1]


def test_an_exit_a_tracer_holds_ends_the_container_once_let_go(agent):
    """A pidfd wake-up before the executor can be reaped (its tracer is told of its exit
    first) is looked at again: returning left the container live for good."""
    c = agent.launch(shell="while [ ! -e go ]; do sleep 0.01; done; exit 3")
    cid = c["id"]
    executor = agent.wait_state(cid, "RUNNING")["pid"]
    go = os.path.join(agent.sandbox(cid), "go")
    tracer = Tracer(executor)
    try:
        open(go, "w").close()
        bt.wait_for(tracer.stopped, 10, what="the executor %d stopped at its exit" % executor)
        tracer.call(Tracer.CONT)
        bt.wait_for(lambda: state(executor) == "Z", 10, what="the executor %d exited" % executor)
    finally:
        tracer.release()
    st, end = agent.get("/v1/containers/%s/wait" % cid, timeout=10)
    assert st == 200 and (end["state"], end["exit_code"]) == ("FAILED", 3), end
    bt.wait_for(lambda: not os.path.exists("/proc/%d" % executor), 10,
                what="the executor %d reaped by the agent" % executor)
