# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_release_order.py - issue #18: at a task's end, the answer to
GET .../wait goes out before the container's cgroups are removed (agentd/release.c: the
release's first look is the next loop turn's, and the answer's write is made as soon as the
loop polls). The removal (a look at each hierarchy's tasks, six rmdirs on v1) used to come
first: 0.2-0.3 ms of every `berthctl run --wait` on this machine kind. strace on the loop's
thread says in which order the two were made."""

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
