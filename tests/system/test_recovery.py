# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_recovery.py - issue #6, nothing lost: the agent restarted (SIGTERM) or
crashed (SIGKILL) with tasks running keeps them (same pids, start times, logs, usage; kill
and exec still work); tasks that ended while it was down are reported truthfully (exit 0,
exit 7, OOM, vanished -> LOST); a reused pid is not adopted; orphans (cgroups, processes,
mounts, dirs no record owns) are removed; a corrupt or missing state.db stops the start
without touching running tasks, and --recover=cleanup kills everything and starts empty.
test_recovery_faults.py crashes the agent at every fault point and at random moments;
test_gc.py covers sandbox GC."""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time


import berthtest as bt

from recoverytest import (  # the helpers both recovery files share
    BURNER,
    TICKER,
    check_consistent,
    child_dirs,
    containers,
    crash,
    sh,
    start,
    stdout,
)




# ---- restart with tasks running -----------------------------------------------------------

def test_restart_keeps_20_running_tasks(agent):
    """SIGTERM, then SIGKILL, with 20 tasks running: same pids and start times, RUNNING in
    ps, logs continue, usage keeps counting, kill and exec work."""
    cs = [agent.launch(**sh(BURNER if i < 2 else TICKER, name="t%02d" % i, cpus=0.1))
          for i in range(20)]
    for c in cs:
        agent.wait_state(c["id"], "RUNNING")
    before = {c["id"]: agent.inspect(c["id"]) for c in cs}
    starts = {cid: bt.proc_start_time(c["pid"]) for cid, c in before.items()}
    assert all(starts.values())
    ids = sorted(before)
    burner, ticker = cs[0]["id"], cs[5]["id"]

    def cpu_seconds(cid):
        st, s = agent.get("/v1/containers/%s/stats" % cid)
        assert st == 200, s
        u = s.get("usage", s) if isinstance(s, dict) else None
        return u.get("cpu_seconds") if isinstance(u, dict) else None

    killed = set()
    for how in ("SIGTERM", "SIGKILL"):
        cpu0 = bt.wait_for(lambda: cpu_seconds(burner), 5, what="a usage sample")
        if how == "SIGTERM":
            assert agent.stop() == 0, agent.log[-2000:]
        else:
            crash(agent)
        # the tasks do not notice
        for cid in ids:
            if cid not in killed:
                assert bt.alive(before[cid]["pid"], starts[cid]), "%s died with the agent" % cid
        lines = len(stdout(agent, ticker).splitlines())
        bt.wait_for(lambda: len(stdout(agent, ticker).splitlines()) > lines, 5,
                    what="the ticker's output while the agent is down")
        t0 = time.monotonic()
        start(agent)
        up = time.monotonic() - t0
        ps = agent.ctl("ps", "-o", "json")
        assert ps.returncode == 0, ps.stderr
        listed = {c["id"]: c for c in json.loads(ps.stdout)["containers"]}
        for cid in ids:
            if cid in killed:
                continue
            c = listed[cid]
            assert c["state"] == "RUNNING", c
            assert c["pid"] == before[cid]["pid"], (how, c["pid"], before[cid]["pid"])
            assert c["started_at"] == before[cid]["started_at"], (how, c, before[cid])
            assert c["created_at"] == before[cid]["created_at"]
            assert bt.alive(c["pid"], starts[cid])
        n_live = 20 - len(killed)
        assert re.findall(r"recovered \d+ record\(s\) in [0-9.]+ ms \(reconnect\): (\d+) "
                          r"re-adopted", agent.log)[-1] == str(n_live), agent.log[-2000:]
        # logs continue (written while the agent was down, and after)
        bt.wait_for(lambda: len(stdout(agent, ticker).splitlines()) > lines + 3, 5,
                    what="log lines after the restart")
        r = agent.ctl("logs", ticker)
        assert r.returncode == 0 and len(r.stdout.splitlines()) > lines + 3, r
        # usage keeps counting from where it was
        bt.wait_for(lambda: (cpu_seconds(burner) or 0) > cpu0 + 0.05, 10,
                    what="cpu usage of the burner to grow after the restart")
        # names are found again, and still taken (the index is rebuilt from the records)
        r = agent.ctl("inspect", "t04")
        assert r.returncode == 0 and json.loads(r.stdout)["id"] == cs[4]["id"], r
        st, err = agent.post("/v1/containers", {"name": "t05", "command": {"argv": ["true"]},
                                                "resources": {"cpus": 0.25, "mem": "32MiB"}})
        assert st == 409 and err["error"]["code"] == "CONFLICT", (st, err)
        # exec and kill still work
        r = agent.ctl("exec", cs[3]["id"], "--", "/bin/sh", "-c", "echo inside $(hostname)",
                      timeout=20)
        want = "inside t03"
        assert r.returncode == 0 and want in r.stdout, (r.returncode, r.stdout, r.stderr)
        victim = cs[10 if how == "SIGTERM" else 11]["id"]
        r = agent.ctl("kill", victim)
        assert r.returncode == 0, r.stderr
        end = agent.wait_terminal(victim)
        assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end
        assert not bt.alive(before[victim]["pid"], starts[victim])
        killed.add(victim)
        assert up < 5 * bt.SLOW  # a latency bound, scaled (a TCG VM once took 5.6 s)
    check_consistent(agent)


def test_tasks_ended_while_down_are_reported_truthfully(agent):
    """exit 0, exit 7 and an OOM kill while the agent is down are reported after the
    restart as FINISHED/EXITED 0, FAILED/EXITED 7, FAILED/MEMORY_LIMIT; a task whose
    executor vanished without a status is LOST/AGENT_RESTARTED_LOST."""
    gate = "while [ ! -e go ]; do sleep 0.05; done; "
    ok = agent.launch(**sh(gate + "exit 0"))
    seven = agent.launch(**sh(gate + "exit 7"))
    oom = agent.launch(**sh(gate + "exec %s alloc 200" % bt.PROBE, mem="64MiB"))
    vanish = agent.launch(**sh("sleep 600"))
    cs = [ok, seven, oom, vanish]
    for c in cs:
        agent.wait_state(c["id"], "RUNNING")
    pids = {c["id"]: agent.inspect(c["id"])["pid"] for c in cs}
    crash(agent)
    for c in (ok, seven, oom):
        with open(os.path.join(agent.work, "sandboxes", c["id"], "go"), "w"):
            pass
    os.kill(pids[vanish["id"]], signal.SIGKILL)  # no status.json: nobody knows how it ended
    for cid, pid in pids.items():
        bt.wait_for(lambda: not bt.alive(pid), 10, what="executor of %s to end" % cid)
    start(agent)
    got = {c["id"]: agent.inspect(c["id"]) for c in cs}
    assert (got[ok["id"]]["state"], got[ok["id"]]["reason"], got[ok["id"]]["exit_code"]) == \
        ("FINISHED", "EXITED", 0), got[ok["id"]]
    assert (got[seven["id"]]["state"], got[seven["id"]]["reason"],
            got[seven["id"]]["exit_code"]) == ("FAILED", "EXITED", 7), got[seven["id"]]
    assert (got[oom["id"]]["state"], got[oom["id"]]["reason"]) == \
        ("FAILED", "MEMORY_LIMIT"), got[oom["id"]]
    assert (got[vanish["id"]]["state"], got[vanish["id"]]["reason"]) == \
        ("LOST", "AGENT_RESTARTED_LOST"), got[vanish["id"]]
    # reported once: another restart changes nothing
    crash(agent)
    start(agent)
    again = {c["id"]: agent.inspect(c["id"]) for c in cs}
    for cid in got:
        for k in ("state", "reason", "exit_code", "signal", "finished_at", "message"):
            assert again[cid][k] == got[cid][k], (cid, k, again[cid][k], got[cid][k])
    check_consistent(agent)


def test_reused_pid_is_not_adopted(agent):
    """A record whose executor is gone and whose pid now belongs to another process -
    even one whose command line names the container - is not re-adopted (start time and
    cgroup differ): the task is LOST and the other process is left alone."""
    c = agent.launch(**sh("sleep 600"))
    cid = c["id"]
    exe = agent.wait_state(cid, "RUNNING")["pid"]
    crash(agent)
    os.kill(exe, signal.SIGKILL)
    bt.wait_for(lambda: not bt.alive(exe), 5, what="executor gone")
    # an impostor: same words on its command line, another start time, another cgroup
    imp = subprocess.Popen(["/bin/sh", "-c", "sleep 600; : --runtime-dir %s/containers/%s"
                            % (agent.work, cid)])
    try:
        db = sqlite3.connect(os.path.join(agent.work, "state.db"))
        row = json.loads(db.execute("SELECT json FROM containers WHERE id=?", (cid,))
                         .fetchone()[0])
        row["pid"] = imp.pid
        db.execute("UPDATE containers SET json=? WHERE id=?", (json.dumps(row), cid))
        db.commit()
        db.close()
        start(agent)
        got = agent.inspect(cid)
        assert (got["state"], got["reason"]) == ("LOST", "AGENT_RESTARTED_LOST"), got
        assert imp.poll() is None, "the impostor was killed"
        assert ": 0 re-adopted, 0 ended while the agent was down, 1 lost" in agent.log
    finally:
        imp.kill()
        imp.wait()
    check_consistent(agent)


def test_orphans_are_removed(agent):
    """After a crash: a container whose record is gone (its executor still running), a
    stray cgroup with a process in it, sandbox/runtime dirs and a mount that no record
    owns are all removed at the next start; a live container is kept."""
    keep = agent.launch(**sh("sleep 600"))
    gone = agent.launch(**sh("sleep 600"))
    for c in (keep, gone):
        agent.wait_state(c["id"], "RUNNING")
    keep_pid = agent.inspect(keep["id"])["pid"]
    gone_c = agent.inspect(gone["id"])
    crash(agent)
    db = sqlite3.connect(os.path.join(agent.work, "state.db"))
    db.execute("DELETE FROM containers WHERE id=?", (gone["id"],))
    db.commit()
    db.close()
    fake = "0123456789abcdef"
    stray = subprocess.Popen(["sleep", "600"])
    try:
        for d in agent.parent_dirs.values():
            if os.path.isdir(d):
                os.mkdir(os.path.join(d, fake))
        mem = agent.parent_dirs.get("memory") or agent.parent_dirs["unified"]  # v1 or v2
        with open(os.path.join(mem, fake, "cgroup.procs"), "w") as f:
            f.write(str(stray.pid))
        for sub in ("containers", "sandboxes"):
            os.makedirs(os.path.join(agent.work, sub, fake, "rootfs"))
        mnt = os.path.join(agent.work, "containers", fake, "rootfs")
        subprocess.run(["mount", "-t", "tmpfs", "berth-test-orphan", mnt], check=True)
        start(agent)
        assert stray.wait(5) == -signal.SIGKILL
        for d in agent.parent_dirs.values():
            assert not os.path.exists(os.path.join(d, fake))
        assert not bt.mounts_mentioning(mnt)
        assert not bt.alive(gone_c["pid"])
        for sub in ("containers", "sandboxes"):
            assert not os.path.exists(os.path.join(agent.work, sub, fake))
            assert not os.path.exists(os.path.join(agent.work, sub, gone["id"]))
        for d in gone_c["cgroups"].values():
            assert not os.path.exists(d)
        assert agent.inspect(keep["id"])["state"] == "RUNNING"
        assert agent.inspect(keep["id"])["pid"] == keep_pid and bt.alive(keep_pid)
        st, _ = agent.get("/v1/containers/" + gone["id"])
        assert st == 404
        assert re.search(r"orphans removed: 1 executor\(s\), 2 cgroup\(s\), 1 mount\(s\), "
                         r"4 dir\(s\)", agent.log), agent.log[-2000:]
        check_consistent(agent)
    finally:
        if stray.poll() is None:
            stray.kill()
        stray.wait()
        for m in bt.mounts_mentioning(agent.work):
            subprocess.run(["umount", "-l", m.split()[4]])




# ---- state.db missing or corrupt, --recover=cleanup ------------------------------------------

def test_corrupt_state_db_is_reported_and_never_kills(agent):
    c = agent.launch(**sh("sleep 600"))
    pid = agent.wait_state(c["id"], "RUNNING")["pid"]
    assert agent.stop() == 0
    db = os.path.join(agent.work, "state.db")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    # a row that is not a container's JSON stops the start
    con = sqlite3.connect(db)
    con.execute("UPDATE containers SET json='{not json' WHERE id=?", (c["id"],))
    con.commit()
    con.close()
    assert start(agent, expect_up=False) == 1
    assert "record '%s' is not a container's JSON" % c["id"] in agent.log, agent.log[-2000:]
    assert "refusing to start" in agent.log
    assert bt.alive(pid), "an unreadable record killed a running task"
    # so does a file that is not a database at all
    with open(db, "r+b") as f:
        f.write(b"this is not a database" * 100)
    assert start(agent, expect_up=False) == 1
    log = agent.log
    assert "cannot start: state.db:" in log and "not a readable berth state database" in log
    assert "running tasks are left alone" in log and "--recover=cleanup" in log
    assert bt.alive(pid), "a corrupt state.db killed a running task"
    # cleanup: kills it, moves the file aside, starts empty
    start(agent, extra=["--recover=cleanup"])
    bt.wait_for(lambda: not bt.alive(pid), 5, what="the task to be killed by cleanup")
    assert containers(agent) == []
    assert [n for n in os.listdir(agent.work) if n.startswith("state.db.corrupt-")]
    check_consistent(agent)


def test_missing_state_db_is_reported_and_never_kills(agent):
    c = agent.launch(**sh("sleep 600"))
    pid = agent.wait_state(c["id"], "RUNNING")["pid"]
    crash(agent)
    for n in os.listdir(agent.work):
        if n.startswith("state.db"):
            os.unlink(os.path.join(agent.work, n))
    assert start(agent, expect_up=False) == 1
    assert re.search(r"state.db' is missing, but 1 executor\(s\) and 1 cgroup\(s\) with processes "
                     r"of this agent are still there \(and 2 container dir\(s\)\)", agent.log), \
        agent.log[-2000:]
    assert "refusing to start" in agent.log and "--recover=cleanup" in agent.log
    assert bt.alive(pid), "a missing state.db killed a running task"
    assert not os.path.exists(os.path.join(agent.work, "state.db")), \
        "the refused start created an empty state.db (the next start would sweep)"
    start(agent, extra=["--recover=cleanup"])
    bt.wait_for(lambda: not bt.alive(pid), 5, what="the task to be killed by cleanup")
    assert containers(agent) == []
    check_consistent(agent)


def test_fresh_work_dir_next_to_empty_cgroups_starts(agent):
    """Issue #19: an agent stopped while a task's cgroups are still there, the task then
    killed (its cgroups left empty: nobody removes them while the agent is down), its
    work_dir deleted: a new agent on a fresh work_dir must start and remove those empty
    cgroups with a warning, not refuse as if a live task could be lost. A live task still
    stops it (test_missing_state_db_is_reported_and_never_kills)."""
    c = agent.launch(**sh("sleep 600"))
    pid = agent.wait_state(c["id"], "RUNNING")["pid"]
    dirs = agent.cgroup_dirs(c["id"])
    assert dirs and all(os.path.isdir(d) for d in dirs.values())
    assert agent.stop() == 0
    os.kill(pid, signal.SIGKILL)  # the executor, pid 1 of the sandbox: the task goes with it
    bt.wait_for(lambda: not any(bt.cgroup_procs(d) for d in dirs.values() if os.path.isdir(d)),
                5, what="the task's cgroups to empty")
    assert all(os.path.isdir(d) for d in dirs.values()), "the empty cgroups went by themselves"
    shutil.rmtree(agent.work)
    start(agent)
    log = agent.log
    assert "refusing to start" not in log, log[-2000:]
    assert re.search(r"state.db' is missing; removing what an earlier agent left without a "
                     r"process: 1 empty cgroup\(s\)", log), log[-2000:]
    for d in dirs.values():
        assert not os.path.exists(d), "the empty cgroup %s was left" % d
    assert containers(agent) == []
    done = agent.launch(**sh("true"))
    assert agent.wait_terminal(done["id"])["state"] == "FINISHED"
    check_consistent(agent)


def test_recover_cleanup_kills_everything_and_starts_empty(agent):
    live = [agent.launch(**sh("sleep 600")) for _ in range(3)]
    done = agent.launch(**sh("true"))
    agent.wait_terminal(done["id"])
    pids = [agent.wait_state(c["id"], "RUNNING")["pid"] for c in live]
    crash(agent)
    start(agent, extra=["--recover=cleanup"])
    for p in pids:
        bt.wait_for(lambda: not bt.alive(p), 5, what="task killed")
    assert containers(agent) == []
    for d in agent.parent_dirs.values():
        assert child_dirs(d) == set()
    for sub in ("containers", "sandboxes"):
        assert os.listdir(os.path.join(agent.work, sub)) == []
    assert "(cleanup)" in agent.log and "4 dropped" in agent.log
    # and the next normal start is an ordinary one
    assert agent.stop() == 0
    start(agent)
    c = agent.launch(**sh("true"))
    assert agent.wait_terminal(c["id"])["state"] == "FINISHED"
