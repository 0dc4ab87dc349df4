# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_pids.py - issue #3 item 4: a fork bomb under --pids 64 is contained by
pids.max (the kernel says so in pids.current, the task sees EAGAIN), can be killed, and the
host can still fork."""

import os
import subprocess
import time

import pytest

import berthtest as bt


def test_forkbomb_contained_and_killable(agent):
    if not any("pids" in k.split(",") for k in agent.parent_dirs) and not bt.is_v2_host():
        pytest.skip("no v1 pids controller on this host")
    c = agent.probe("forkbomb", pids=64, mem="256MiB")
    cid = c["id"]
    # fork_errno=, the last line: the probe's stdout is line-buffered, so its printf of
    # forks= and fork_errno= is two writes, and a read between them once failed this test
    out = agent.wait_output(cid, "fork_errno", timeout=15)
    dirs = agent.cgroup_dirs(cid)
    pdir = agent.ctrl_dir(dirs, "pids.current")
    assert bt.read(os.path.join(pdir, "pids.max")).strip() == "64"
    cur = bt.read_int(os.path.join(pdir, "pids.current"))
    assert cur <= 64, "pids.current %d > 64" % cur
    assert out["fork_errno"] == "EAGAIN", out
    assert 0 < int(out["forks"]) < 64, out
    pids = agent.procs(cid)
    assert len(pids) <= 64
    # the host is unaffected
    assert subprocess.run(["true"]).returncode == 0
    assert agent.healthy()

    t0 = time.monotonic()
    r = agent.ctl("kill", cid)
    assert r.returncode == 0, r.stderr
    end = agent.wait_terminal(cid, timeout=15)
    assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end
    assert time.monotonic() - t0 < 12
    for d in dirs.values():
        bt.wait_for(lambda: not os.path.isdir(d), 3, what="%s removed" % d)
    bt.wait_for(lambda: not any(bt.alive(p) for p in pids), 3, what="fork bomb processes gone")
