# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_endings.py - issue #3 item 6: how tasks end (states, reasons, exit
codes, signals, kills with and without a grace period, daemonized grandchildren, launch
errors), that nothing of a task outlives it (processes, cgroup dirs), and that
`berthctl wait` / `run --wait` exit with the task's status."""

import os
import signal
import time

import berthtest as bt


def gone(agent, c, pids=()):
    """Assert the ended container left no cgroup dir and none of pids runs."""
    for d in (c.get("cgroups") or {}).values():
        bt.wait_for(lambda: not os.path.isdir(d), 3, what="cgroup %s removed" % d)
    bt.wait_for(lambda: not [p for p in pids if bt.alive(p)], 3, what="task processes gone")


def test_exit_codes_and_signals(agent):
    specs = {"ok": ("exit", 0), "three": ("exit", 3), "segv": ("kill", "SEGV"),
             "term": ("kill", "TERM")}
    created = {k: agent.probe(*v) for k, v in specs.items()}
    done = agent.wait_all_terminal([c["id"] for c in created.values()])
    r = {k: done[c["id"]] for k, c in created.items()}
    assert (r["ok"]["state"], r["ok"]["reason"], r["ok"]["exit_code"]) == \
        ("FINISHED", "EXITED", 0), r["ok"]
    assert (r["three"]["state"], r["three"]["reason"], r["three"]["exit_code"]) == \
        ("FAILED", "EXITED", 3), r["three"]
    assert (r["segv"]["state"], r["segv"]["reason"], r["segv"]["signal"]) == \
        ("FAILED", "SIGNALED", signal.SIGSEGV), r["segv"]
    assert (r["term"]["state"], r["term"]["reason"], r["term"]["signal"]) == \
        ("FAILED", "SIGNALED", signal.SIGTERM), r["term"]
    for k, c in created.items():
        gone(agent, c, [c["pid"]] if c.get("pid") else [])
        # berthctl wait exits with the task's status
        want = {"ok": 0, "three": 3, "segv": 128 + 11, "term": 128 + 15}[k]
        w = agent.ctl("wait", c["id"])
        assert w.returncode == want, "berthctl wait %s: %s %r" % (k, w.returncode, w.stderr)


def test_run_wait_exit_status(agent):
    r = agent.ctl("run", "--wait", "--cpus", "0.25", "--mem", "32MiB", "--", bt.PROBE,
                  "exit", "3")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    r = agent.ctl("run", "--wait", "--cpus", "0.25", "--mem", "32MiB", "--", "true")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)


def test_kill_by_request(agent):
    c = agent.launch(["sleep", "30"])
    agent.wait_state(c["id"], "RUNNING")
    pids = agent.procs(c["id"])
    assert pids
    t0 = time.monotonic()
    r = agent.ctl("kill", c["id"])
    assert r.returncode == 0, r.stderr
    end = agent.wait_terminal(c["id"])
    assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end
    assert time.monotonic() - t0 < 3, "SIGTERM did not end sleep promptly"
    gone(agent, c, pids)
    # killing it again is a conflict, and berthctl says so in one line
    st, err = agent.post("/v1/containers/%s/kill" % c["id"], {})
    assert st == 409, (st, err)


def test_kill_escalates_after_grace(agent):
    c = agent.probe("ignoreterm", 60)
    agent.wait_output(c["id"], "ignoring")
    pids = agent.procs(c["id"])
    t0 = time.monotonic()
    r = agent.ctl("kill", "--grace", "2", c["id"])
    assert r.returncode == 0, r.stderr
    end = agent.wait_terminal(c["id"], timeout=10)
    took = time.monotonic() - t0
    assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end
    assert 1.7 <= took <= 3.5, "kill took %.2fs with a 2s grace" % took
    gone(agent, c, pids)


def test_kill_reaches_daemonized_grandchild(agent):
    c = agent.probe("daemonize")
    kv = agent.wait_output(c["id"], "child_pid")
    pids = agent.procs(c["id"])
    inner = int(kv["child_pid"])
    grand = [p for p in pids if bt.proc_nspid(p)[-1:] == [inner]]
    assert len(grand) == 1, "grandchild (ns pid %d) not found among %s" % (inner, pids)
    host_pid = grand[0]
    r = agent.ctl("kill", "--grace", "2", c["id"])
    assert r.returncode == 0, r.stderr
    end = agent.wait_terminal(c["id"], timeout=10)
    assert end["state"] == "KILLED", end
    gone(agent, c, pids)
    assert not bt.alive(host_pid), "daemonized grandchild %d survived" % host_pid


def test_launch_failures(agent):
    nocmd = agent.launch(["/no/such/command"])
    # an unknown user is refused when submitted (#12, review L3), not at launch
    st, body = agent.post("/v1/containers", {"command": {"argv": ["true"]},
                                             "user": "no-such-user-berth",
                                             "resources": {"cpus": 0.25, "mem": "64MiB"}})
    assert st == 400 and "no-such-user-berth" in body["error"]["message"], body
    done = agent.wait_all_terminal([nocmd["id"]])
    a = done[nocmd["id"]]
    assert (a["state"], a["reason"]) == ("FAILED", "LAUNCH_FAILED"), a
    assert "No such file or directory" in a["message"], a
    gone(agent, a)
    w = agent.ctl("wait", nocmd["id"])
    assert w.returncode != 0
