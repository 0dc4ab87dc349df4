# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_completion.py - berthctl's bash completion (packaging/completion/berthctl)
in a real interactive bash on a pty: TAB after `berthctl ki`, after a prefix of a running
container's id, and after a prefix of its name (with --socket on the line), against a running
agent. tests/packages checks the verb and option lists against berthctl's help."""

import os
import pty
import re
import select
import signal
import time

import berthtest as bt

COMPLETION = os.path.join(bt.REPO, "packaging", "completion", "berthctl")


class Bash:
    """An interactive bash (no rc files) on a pty."""

    def __init__(self, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self.out = ""

    def expect(self, pattern, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    self.out += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:
                    break
        raise AssertionError("bash did not print %r; it printed:\n%s" % (pattern, self.out))

    def send(self, text):
        os.write(self.fd, text.encode())

    def close(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_tab_completes_verbs_ids_and_names(agent, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(bt.CTL_BIN, bindir / "berthctl")
    r = agent.ctl("run", "--name", "web-tab", "--cpus", "0.1", "--mem", "32MiB", "--",
                  "/bin/sleep", "100")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    agent.wait_state(cid, "RUNNING")

    env = {"PATH": "%s:/usr/sbin:/usr/bin:/sbin:/bin" % bindir, "TERM": "dumb",
           "HOME": str(tmp_path), "PS1": "PROMPT> ", "BERTH_SOCKET": agent.sock,
           "LC_ALL": "C.UTF-8"}
    sh = Bash(env)
    try:
        sh.expect("PROMPT> ")
        sh.send("source %s && echo loaded\n" % COMPLETION)
        sh.expect("\nloaded")
        sh.expect("PROMPT> ")
        # a verb: "ki" -> "kill "
        sh.send("berthctl ki\t")
        sh.expect(r"berthctl kill ")
        sh.send("\x15")  # ^U: clear the line
        # a running container's id from the agent (BERTH_SOCKET): 4 chars -> the 12 of ps
        sh.send("berthctl kill %s\t" % cid[:4])
        sh.expect(r"berthctl kill %s " % cid[:12])
        sh.send("\x15")
        # its name, with --socket given on the line
        sh.send("berthctl --socket %s inspect web-t\t" % agent.sock)
        sh.expect(r"inspect web-tab ")
        sh.send("\x15")
        sh.send("exit\n")
    finally:
        sh.close()
    r = agent.ctl("kill", "--signal", "KILL", cid)
    assert r.returncode == 0, r.stderr
    agent.wait_terminal(cid)
