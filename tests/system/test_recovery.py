"""tests/system/test_recovery.py - issue #6, nothing lost: the agent restarted (SIGTERM) or
crashed (SIGKILL) with tasks running keeps them (same pids, start times, logs, usage; kill
and exec still work); tasks that ended while it was down are reported truthfully (exit 0,
exit 7, OOM, vanished -> LOST); a reused pid is not adopted; orphans (cgroups, processes,
mounts, dirs no record owns) are removed; the agent dying at every fault point of the
launch, kill, end, remove and recovery paths (BERTH_FAULT, agentd/fault.c) and at 200
random moments leaves every container in exactly one truthful state with nothing left
over; a corrupt or missing state.db stops the start without touching running tasks, and
--recover=cleanup kills everything and starts empty. test_gc.py covers sandbox GC."""

import http.client
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

import berthtest as bt

ID_IN_PATH = re.compile(r"/(?:containers|sandboxes)/([0-9a-f]{16})(?:/|$|\x00| )")
API_ERRORS = (OSError, http.client.HTTPException)


# ---- helpers -------------------------------------------------------------------------------

def start(a, fault=None, extra=(), expect_up=True):
    """Start agent a again (same work_dir, socket, cgroup parent), optionally with
    BERTH_FAULT=fault and extra flags. expect_up=False: it must exit during start-up;
    returns its exit status."""
    saved_argv = list(a.argv)
    a.argv += list(extra)
    old = os.environ.get("BERTH_FAULT")
    if fault:
        os.environ["BERTH_FAULT"] = fault
    else:
        os.environ.pop("BERTH_FAULT", None)
    try:
        if expect_up:
            a.start()
            return 0
        return a.spawn().wait(15)
    finally:
        a.argv = saved_argv
        if old is None:
            os.environ.pop("BERTH_FAULT", None)
        else:
            os.environ["BERTH_FAULT"] = old


def crash(a):
    """SIGKILL the agent (tasks keep running)."""
    a.proc.kill()
    a.proc.wait(10)


def wait_died(a, timeout=15):
    """The agent is expected to kill itself at a fault point."""
    try:
        rc = a.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the agent did not die at its fault point:\n" + a.log[-3000:])
    assert rc == -signal.SIGKILL, "agent exit status %s, want SIGKILL:\n%s" % (rc, a.log[-3000:])
    assert "BERTH_FAULT: dying at" in a.log


def containers(a):
    st, body = a.get("/v1/containers")
    assert st == 200, body
    for c in body["containers"]:
        a.note(c)
    return body["containers"]


def cmdline(pid):
    return bt.read("/proc/%d/cmdline" % pid, "")


def proc_ids(a):
    """{pid: container id} of every process that names one of a's container dirs in its
    command line or cwd (executors, exec helpers, tasks)."""
    out = {}
    for pid in bt.procs_mentioning(a.work):
        if a.proc and pid == a.proc.pid:
            continue
        start = bt.proc_start_time(pid)
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            cwd = ""
        m = ID_IN_PATH.search(cmdline(pid)) or ID_IN_PATH.search(cwd + "/")
        if not m and not bt.alive(pid, start):
            continue  # a short-lived process that ended while we looked
        out[pid] = m.group(1) if m else None
    return out


def stdout(a, cid):
    """The task's output, read from its sandbox (works while the agent is down)."""
    return bt.read(os.path.join(a.work, "sandboxes", cid, "stdout"), "")


def child_dirs(d):
    try:
        return {n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n))}
    except FileNotFoundError:
        return set()


def check_consistent(a):
    """Every container is in exactly one truthful state and nothing is left that no record
    owns. Tasks may end while this runs: what must hold is checked between two listings
    (a container live in the second was live in the first; the agent serves one request
    at a time, so a listing never sees half a transition)."""
    first = containers(a)
    ids = [c["id"] for c in first]
    assert len(ids) == len(set(ids)), "a container is listed twice: %s" % ids
    live1 = {c["id"] for c in first if c["state"] not in bt.TERMINAL}
    # the hierarchies the agent uses (its parent exists there)
    cg = {k: child_dirs(d) for k, d in a.parent_dirs.items() if os.path.isdir(d)}
    procs = proc_ids(a)
    dirs = {s: set(os.listdir(os.path.join(a.work, s))) for s in ("containers", "sandboxes")}
    mounts = bt.mounts_mentioning(a.work)
    second = containers(a)
    assert [c["id"] for c in second] == ids, "records changed while nothing was launched"
    live2 = {c["id"]: c for c in second if c["state"] not in bt.TERMINAL}
    for key, names in cg.items():
        assert names <= live1, "cgroups no live container owns in %s: %s (live %s)" % (
            key, sorted(names - live1), sorted(live1))
        assert set(live2) <= names, "live containers without a cgroup in %s: %s" % (
            key, sorted(set(live2) - names))
    stray = {p: i for p, i in procs.items() if i not in live1}
    # one killed just before (its cgroup emptied, its exit not finished) may still be seen
    # on its way out: only one that is still there a moment later is left over
    starts = {p: bt.proc_start_time(p) for p in stray}
    end = time.monotonic() + 2
    while stray and time.monotonic() < end:
        stray = {p: i for p, i in stray.items() if bt.alive(p, starts[p])}
        time.sleep(0.05)
    assert not stray, "processes of no live container: %s" % {
        p: (i, bt.proc_comm(p), cmdline(p)[:120]) for p, i in stray.items()}
    for sub, names in dirs.items():
        assert names <= set(ids), "%s dirs without a record: %s" % (sub, sorted(names - set(ids)))
        assert set(live2) <= names, "live containers without a %s dir" % sub
    assert not mounts, "mounts left in our namespace: %s" % mounts
    for cid, c in live2.items():
        assert c["state"] == "RUNNING", c
        pid = c["pid"]
        inside = pid in set().union(*(bt.cgroup_procs(d) for d in c["cgroups"].values()
                                      if os.path.isdir(d)))
        if not (bt.alive(pid) and inside):
            now = a.inspect(cid)
            assert now["state"] in bt.TERMINAL, \
                "RUNNING container %s: executor %s alive=%s in its cgroup=%s" % (
                    cid, pid, bt.alive(pid), inside)
    return {c["id"]: c for c in second}


def sh(cmd, **kw):
    """Keyword arguments of Agent.launch for a shell command."""
    return dict(shell=cmd, cpus=kw.pop("cpus", 0.05), mem=kw.pop("mem", "32MiB"), **kw)


def body(cmd, name, cpus=0.05, mem="32MiB"):
    """The POST /v1/containers body for a shell command."""
    return {"name": name, "command": {"shell": cmd}, "resources": {"cpus": cpus, "mem": mem}}


TICKER = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done"
BURNER = "while :; do :; done"


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
        assert up < 5
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


# ---- fault injection ------------------------------------------------------------------------

# point -> what the crash there must turn into after the restart
GONE, RUNNING, KILLED, FINISHED = "gone", "RUNNING", "KILLED", "FINISHED"
POINTS = {
    # before the 201: the launch never finished, nothing of it may remain
    "launch-after-record": GONE,
    "launch-after-dirs": GONE,
    "launch-after-cgroup": GONE,
    "launch-after-limits": GONE,
    "spawn-after-clone": GONE,
    "launch-after-exec": GONE,
    # after the 201: the container exists and its task runs on
    "launch-after-starting": RUNNING,
    "launch-after-running": RUNNING,
    # mid-kill: the kill is completed at the restart
    "kill-after-record": KILLED,
    "kill-after-signal": KILLED,
    # the end recorded, its cgroups not yet removed
    "finish-after-record": FINISHED,
    "finish-after-kill": FINISHED,
    # DELETE: the record gone, the dirs not yet
    "remove-after-record": GONE,
    # a crash during the recovery itself
    "recover-after-load": RUNNING,
    "recover-before-sweep": RUNNING,
}


def test_fault_points_are_all_walked():
    """The walk below covers every agent_fault() point in agentd/."""
    found = set()
    for name in os.listdir(os.path.join(bt.REPO, "agentd")):
        if name.endswith(".c"):
            src = bt.read(os.path.join(bt.REPO, "agentd", name))
            found.update(re.findall(r'agent_fault\(\s*[\w>-]+\s*,\s*"([a-z-]+)"\s*\)', src))
    assert found == set(POINTS), "untested: %s, gone: %s" % (
        sorted(found - set(POINTS)), sorted(set(POINTS) - found))


@pytest.mark.parametrize("point", sorted(POINTS))
def test_fault_point(agent_factory, point):
    """The agent dies at `point`; after a restart every container is in exactly one
    truthful state and nothing is left that no container owns. A bystander container
    launched first must be untouched."""
    a = agent_factory(start=False)
    target = None
    if point.startswith("recover-"):
        start(a)
    else:
        # launch points fire on the 2nd launch, the bystander's being the 1st
        start(a, fault=point + (":2" if point.startswith(("launch-", "spawn-")) else ""))
    by = a.launch(**sh("sleep 600", name="bystander"))
    by_pid = a.wait_state(by["id"], "RUNNING")["pid"]
    if point.startswith(("launch-", "spawn-")):
        try:
            st, c = a.post("/v1/containers", body("sleep 600", "target"))
            assert st in (201,), (st, c)
            target = c["id"]
        except API_ERRORS:
            pass
        wait_died(a)
    elif point.startswith("kill-"):
        target = a.launch(**sh("sleep 600", name="target"))["id"]
        a.wait_state(target, "RUNNING")
        try:
            a.post("/v1/containers/%s/kill" % target, {"signal": "TERM", "grace_seconds": 30})
        except API_ERRORS:
            pass
        wait_died(a)
    elif point.startswith("finish-"):
        target = a.launch(**sh("sleep 0.3", name="target"))["id"]
        wait_died(a)
    elif point.startswith("remove-"):
        target = a.launch(**sh("true", name="target"))["id"]
        a.wait_terminal(target)
        try:
            a.delete("/v1/containers/" + target)
        except API_ERRORS:
            pass
        wait_died(a)
    else:  # recover-*: crash with one task running and one ending meanwhile, then die
        target = a.launch(**sh("sleep 600", name="target"))["id"]
        ends = a.launch(**sh("while [ ! -e go ]; do sleep 0.05; done; exit 3", name="ends"))
        a.wait_state(target, "RUNNING")
        a.wait_state(ends["id"], "RUNNING")
        ends_pid = a.inspect(ends["id"])["pid"]
        crash(a)
        with open(os.path.join(a.work, "sandboxes", ends["id"], "go"), "w"):
            pass
        bt.wait_for(lambda: not bt.alive(ends_pid), 10, what="task to end")
        assert start(a, fault=point, expect_up=False) == -signal.SIGKILL, a.log[-2000:]
    start(a)
    got = check_consistent(a)
    assert got[by["id"]]["state"] == "RUNNING" and got[by["id"]]["pid"] == by_pid
    assert bt.alive(by_pid)
    want = POINTS[point]
    named = [i for i, n in got.items() if n["name"] == "target"]
    if target is None and named:  # died before its 201: the container exists all the same
        target = named[0]
    others = set(got) - {by["id"]} - ({target} if target else set())
    if point.startswith("recover-"):
        assert (got[ends["id"]]["state"], got[ends["id"]]["exit_code"]) == ("FAILED", 3)
        others -= {ends["id"]}
    assert not others, "unexpected containers: %s" % [got[i] for i in others]
    if want == GONE:
        assert target is None or target not in got, got.get(target)
        assert not named, [got[i] for i in named]
        return
    assert target in got, "the container of an announced launch was forgotten"
    if want == RUNNING:
        assert got[target]["state"] == "RUNNING", got[target]
        return
    end = a.wait_terminal(target)
    if want == KILLED:
        assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end
    else:
        assert (end["state"], end["reason"], end["exit_code"]) == ("FINISHED", "EXITED", 0), end
    check_consistent(a)


def test_200_launches_with_random_agent_kills(agent_factory):
    """200 launches (tasks that exit 0, exit 7 or run until killed) while the agent is
    SIGKILLed at random moments and restarted: after every restart the state is consistent
    (check_consistent), no launch that got its 201 is forgotten, and a container seen ended
    is never reported again with another ending. At the end every container ended
    truthfully."""
    a = agent_factory()
    seed = int(os.environ.get("BERTH_TEST_SEED", "6"))
    rng, wrng = random.Random(seed), random.Random(seed + 1)
    kinds = {"ok": "sleep 0.%d; exit 0", "seven": "sleep 0.%d; exit 7", "long": "sleep 600 #%d"}
    launched, ended, kind_of = {}, {}, {}
    state = {"attempts": 0, "killed": set()}

    def worker(stop):
        while not stop.is_set() and state["attempts"] < 200:
            kind = wrng.choice(sorted(kinds))
            name = "r%03d-%s" % (state["attempts"], kind)
            state["attempts"] += 1
            req = body(kinds[kind] % wrng.randint(0, 5), name, cpus=0.01, mem="16MiB")
            try:
                st, c = a.post("/v1/containers", req, timeout=5)
            except API_ERRORS:
                return
            if st == 201:
                launched[c["id"]] = name
            longs = [i for i, n in launched.items() if n.endswith("long")
                     and i not in state["killed"]]
            if longs and wrng.random() < 0.3:
                victim = wrng.choice(longs)
                try:
                    a.post("/v1/containers/%s/kill" % victim,
                           {"signal": "KILL", "grace_seconds": 0}, timeout=5)
                    state["killed"].add(victim)
                except API_ERRORS:
                    return

    restarts = 0
    while state["attempts"] < 200:
        stop = threading.Event()
        t = threading.Thread(target=worker, args=(stop,))
        t.start()
        time.sleep(rng.uniform(0.0, 0.25))
        crash(a)
        stop.set()
        t.join(30)
        assert not t.is_alive()
        start(a)
        restarts += 1
        got = check_consistent(a)
        for cid, c in got.items():
            kind_of[cid] = c["name"].split("-")[1]
        forgotten = set(launched) - set(got)
        assert not forgotten, "launches that got a 201 were forgotten: %s" % sorted(forgotten)
        for cid, c in got.items():
            if c["state"] in bt.TERMINAL:
                end = (c["state"], c["reason"], c["exit_code"], c["signal"], c["finished_at"])
                assert ended.setdefault(cid, end) == end, \
                    "%s reported again: %s, before %s" % (cid, end, ended[cid])
    # the end: kill what still runs forever, then every ending must match what the task did
    for cid, c in check_consistent(a).items():
        if c["state"] not in bt.TERMINAL and kind_of[cid] == "long":
            a.post("/v1/containers/%s/kill" % cid, {"signal": "KILL", "grace_seconds": 0})
    final = a.wait_all_terminal(list(kind_of), timeout=30)
    want = {"ok": ("FINISHED", "EXITED", 0), "seven": ("FAILED", "EXITED", 7),
            "long": ("KILLED", "KILLED_BY_REQUEST", None)}
    for cid, c in final.items():
        got_end = (c["state"], c["reason"], c["exit_code"])
        assert got_end == want[kind_of[cid]], (c["name"], got_end, c["message"], [
            l for l in a.log.splitlines() if cid in l or "dying" in l or "recovered" in l])
    check_consistent(a)
    print("seed %d: %d launches, %d accepted, %d restarts" % (seed, state["attempts"],
                                                              len(kind_of), restarts))


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
