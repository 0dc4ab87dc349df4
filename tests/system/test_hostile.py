# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_hostile.py - issue #12: hostile input and slow clients, one regression test
per finding of the December security review (../shared/reviews/security-2026-12.md) that
the trust issue did not take: each reproduces the finding and passes only with its fix.
H1 exec helper ptrace, H2 stalled follower, H3 tail on the loop, H4 timeouts and fd
exhaustion, M1 stale router segment, M2 USR1 kills, M3 output cap and GC, M6 volume target
symlinks, M8 pids, M9 names like ids, M10 shared work_dir and socket, M11 master registry,
L1 HTML errors, L2 NUL in JSON, L3 late validation, L4 config gaps, L5 host names, L6 /tmp,
L7 second kill and exec exit codes, L8 ps CPU%. Helpers: berthtest.py, mastertest.py."""

import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import threading
import time

import pytest

import berthtest as bt
import mastertest as mt

FAST = ["--heartbeat_interval=500ms"]


def rss_kib(pid):
    for line in bt.read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    return bt.proc_cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")


def log_lines(agent):
    return len(agent.log.splitlines())


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


# ---- H1 ---------------------------------------------------------------------------------

def test_exec_helpers_cannot_be_ptraced_before_their_filter(agent_factory):
    """A root task attaches to every new process of its sandbox the moment it appears (the
    exec helpers of `berthctl exec`) and looks at its Seccomp line: none may ever be caught
    without its filter (the review: 65 of 160)."""
    a = agent_factory(flags=["--userns=none"])  # the review's case: plain root
    c = a.probe("ptraceexec", 120, "stop", user="root", cpus=1)
    a.wait_state(c["id"], "RUNNING")
    done = []

    def execs(n):
        for _ in range(n):
            st, r = a.post("/v1/containers/%s/exec" % c["id"], {"argv": ["true"]})
            done.append(st)
    th = [threading.Thread(target=execs, args=(40,)) for _ in range(4)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    assert done.count(200) == 160, done
    with open(os.path.join(a.sandbox(c["id"]), "stop"), "w"):
        pass
    kv = a.wait_output(c["id"], "unfiltered", timeout=30)
    assert int(kv["found"]) >= 20, "the probe saw too few helpers to tell: %r" % kv
    assert kv["unfiltered"] == "0", "a task caught exec helpers without their filter: %r" % kv


# ---- H2, H3 -----------------------------------------------------------------------------

def test_a_follower_that_stops_reading_costs_the_agent_nothing(agent_factory):
    """512 MiB of output to a `logs -f` client that never reads: the agent holds at most a
    chunk of it (the review: 2 GB became 2.1 GB of agent memory)."""
    a = agent_factory(flags=["--log_max_size=0"])
    c = a.launch(shell="sleep 1; head -c 536870912 /dev/zero; sleep 60", mem="1GiB")
    out = os.path.join(a.sandbox(c["id"]), "stdout")
    before = rss_kib(a.proc.pid)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(a.sock)
    try:
        s.sendall(b"GET /v1/containers/%s/logs?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  % c["id"].encode())
        bt.wait_for(lambda: file_size(out) == 536870912, 60, interval=0.2,
                    what="512 MiB written")
        for _ in range(3):  # the agent has seen the file's growth
            assert a.healthy()
        grown = rss_kib(a.proc.pid) - before
        assert grown < 32 * 1024, "the agent grew by %d KiB for a stalled reader" % grown
    finally:
        s.close()
    a.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL", "grace_seconds": 0})
    a.wait_terminal(c["id"])


def test_tail_does_not_hold_the_loop(agent_factory):
    """logs?tail=2 of 1.5 GiB without a newline: the agent looks back a bounded distance, and
    /health keeps answering meanwhile (the review: 38 s)."""
    a = agent_factory(flags=["--log_max_size=0"])
    c = a.launch(shell="head -c 1610612736 /dev/zero; echo; echo last-line", mem="2GiB")
    a.wait_terminal(c["id"], timeout=120)
    worst = [0.0]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            t0 = time.monotonic()
            a.get("/health", timeout=60)
            worst[0] = max(worst[0], time.monotonic() - t0)
            time.sleep(0.01)
    th = threading.Thread(target=poll)
    th.start()
    try:
        for _ in range(3):
            conn = bt.UnixHTTPConnection(a.sock, timeout=60)
            conn.request("GET", "/v1/containers/%s/logs?tail=2" % c["id"])
            body = conn.getresponse().read()
            conn.close()
            assert body.endswith(b"\nlast-line\n"), body[-40:]
            assert len(body) <= (4 << 20) + 64, len(body)
    finally:
        stop.set()
        th.join()
    assert worst[0] < 0.25 * bt.SLOW, "/health waited %.2fs during tail" % worst[0]


# ---- H4 ---------------------------------------------------------------------------------

def connect_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def closed_by_peer(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (socket.timeout, ConnectionResetError):
        return False


def test_idle_and_slow_connections_are_closed(agent_factory):
    a = agent_factory(flags=["--http_timeout=1s"])
    idle = connect_unix(a.sock)
    slow = connect_unix(a.sock)
    slow.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
    try:
        assert closed_by_peer(idle, 5 * bt.SLOW), "an idle connection stayed open"
        assert closed_by_peer(slow, 5 * bt.SLOW), "a half-sent request stayed open"
    finally:
        idle.close()
        slow.close()
    assert a.healthy()


def test_exhausted_fds_cost_no_cpu_and_no_log(agent_factory, master_factory):
    """At the fd limit, accept() fails: the daemons pause their listeners instead of spinning
    and logging each failure (the review: 100% CPU, 16 million lines; the master without a
    token); once the connections go, they serve again."""
    a = agent_factory()
    m = master_factory(FAST)
    targets = [(a.proc.pid, lambda: connect_unix(a.sock), a.healthy,
                lambda: len(a.log.splitlines())),
               (m.proc.pid, lambda: socket.create_connection(("127.0.0.1", m.port)),
                lambda: m.request("GET", "/health", token=False)[0] == 200,
                lambda: len(m.log.splitlines()))]
    for pid, connect, healthy, lines in targets:
        hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, hard))
        held = []
        try:
            for _ in range(120):
                try:
                    held.append(connect())
                except OSError:
                    break
            cpu0, lines0, t0 = cpu_seconds(pid), lines(), time.monotonic()
            time.sleep(3)  # the measurement window: what the daemon does meanwhile
            cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            assert cpu < 0.1, "%.2f cores spent at the fd limit" % cpu
            assert lines() - lines0 < 20, "logged %d lines in 3 s" % (lines() - lines0)
        finally:
            for s in held:
                s.close()
        bt.wait_for(healthy, 10, what="serving again")
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))


# ---- M1, L1, L2 -------------------------------------------------------------------------

def test_router_never_reads_a_stale_segment(agent):
    victim = agent.launch(["true"], name="victim")["id"]
    agent.wait_terminal(victim)
    conn = bt.UnixHTTPConnection(agent.sock)
    try:
        for method, path in [("GET", "/v1/containers/victim"),
                             ("DELETE", "/v1/containers/" + "a" * 100),
                             ("DELETE", "/v1/containers/victim/stats/x"),
                             ("DELETE", "/v1/containers/victim/stats/x/y")]:
            conn.request(method, path)
            r = conn.getresponse()
            body = json.loads(r.read())
            if method == "DELETE":
                assert r.status == 404 and body["error"]["code"] == "NOT_FOUND", (path, body)
    finally:
        conn.close()
    assert agent.get("/v1/containers/" + victim)[0] == 200, "the victim was removed"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT"])
def test_every_method_gets_a_json_answer(agent, master_factory, method):
    st, body = agent.request(method, "/v1/containers")
    assert st in (404, 405) and body["error"]["code"] in ("NOT_FOUND", "METHOD_NOT_ALLOWED"), \
        (st, body)
    if method == "PUT":
        m = master_factory(FAST)
        for token in (False, True):
            st, body = m.request(method, "/v1/tasks", token=token)
            assert isinstance(body, dict) and "error" in body, (st, body)


def test_nul_in_json_strings_is_refused(agent):
    for body in ['{"name": "ab\\u0000cd", "command": {"argv": ["true"]}, '
                 '"resources": {"cpus": 0.1, "mem": "16MiB"}}',
                 '{"command": {"argv": ["a\\u0000b"]}, "resources": {"cpus": 0.1, "mem": 1}}']:
        st, r = agent.post("/v1/containers", raw=body.encode())
        assert st == 400 and "U+0000" in r["error"]["message"], r
    assert agent.get("/v1/containers")[1]["containers"] == []


# ---- M2, L7 -----------------------------------------------------------------------------

def test_usr1_is_passed_on_not_a_kill(agent):
    c = agent.launch(shell="trap 'echo got-usr1' USR1; i=0; while :; do sleep 0.1; "
                           "i=$((i+1)); echo tick=$i; done")
    agent.wait_output(c["id"], "tick")
    st, _ = agent.post("/v1/containers/%s/kill" % c["id"], {"signal": "USR1", "grace_seconds": 0})
    assert st == 202
    bt.wait_for(lambda: "got-usr1" in agent.output(c["id"]), 10, what="the task's trap")
    at = int(bt.parse_kv(agent.output(c["id"]))["tick"])
    # past the 2 s backstop that used to SIGKILL it: 30 more ticks of its own
    bt.wait_for(lambda: int(bt.parse_kv(agent.output(c["id"]))["tick"]) >= at + 30, 20,
                what="the task ticking on")
    got = agent.inspect(c["id"])
    assert got["state"] == "RUNNING" and not got["kill_requested"], got


def test_a_second_kill_does_not_extend_the_grace(agent):
    c = agent.probe("ignoreterm", 300)
    agent.wait_output(c["id"], "ignoring")
    t0 = time.monotonic()
    agent.post("/v1/containers/%s/kill" % c["id"], {"grace_seconds": 1})
    agent.post("/v1/containers/%s/kill" % c["id"], {"grace_seconds": 60})
    end = agent.wait_terminal(c["id"], timeout=20)
    assert end["state"] == "KILLED" and time.monotonic() - t0 < 10, end


def test_exec_exit_codes_are_not_signals(agent):
    c = agent.launch(["sleep", "60"])
    agent.wait_state(c["id"], "RUNNING")
    st, r = agent.post("/v1/containers/%s/exec" % c["id"], {"argv": ["sh", "-c", "exit 130"]})
    assert (r["exit_code"], r["signal"]) == (130, None), r
    st, r = agent.post("/v1/containers/%s/exec" % c["id"], {"argv": ["sh", "-c", "kill -9 $$"]})
    assert (r["exit_code"], r["signal"]) == (None, 9), r
    agent.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL", "grace_seconds": 0})
    agent.wait_terminal(c["id"])


# ---- M3 ---------------------------------------------------------------------------------

def test_output_is_capped_and_rotated(agent_factory):
    """10 MiB of output with log_max_size 1 MiB and 3 files: 3 MiB stay, the newest; a
    follower ends with the last line across the rotations."""
    a = agent_factory(flags=["--log_max_size=1MiB", "--log_max_files=3"])
    c = a.launch(shell="sleep 0.5; head -c 10485760 /dev/zero | tr '\\0' x; echo; echo THE-END")
    follow = a.ctl("logs", "-f", c["id"], timeout=60)
    a.wait_terminal(c["id"])
    sb = a.sandbox(c["id"])
    sizes = {n: file_size(os.path.join(sb, n)) for n in ("stdout", "stdout.1", "stdout.2",
                                                         "stdout.3")}
    assert sizes["stdout.3"] == -1 and sizes["stdout.1"] == sizes["stdout.2"] == 1 << 20, sizes
    assert 0 < sizes["stdout"] <= 1 << 20, sizes
    assert bt.read(os.path.join(sb, "stdout")).endswith("THE-END\n")
    assert follow.returncode == 0 and follow.stdout.endswith("THE-END\n"), follow.stdout[-80:]
    st, text = a.get("/v1/containers/%s/logs?tail=1" % c["id"])
    assert text == "THE-END\n", text


def test_gc_keeps_what_just_ended_while_a_live_task_fills_the_disk(agent_factory):
    """work_dir on a 64 MiB tmpfs at watermark 50%: a live task holds 40 MiB; a task that ends
    meanwhile keeps its sandbox and record (the review: erased at once)."""
    a = agent_factory(start=False, flags=["--gc_disk_watermark=50%", "--log_max_size=0"])
    os.makedirs(a.work)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "berth-test-gc", a.work],
                   check=True)
    try:
        a.start()
        filler = a.launch(shell="head -c 41943040 /dev/zero; exec sleep 600", mem="128MiB")
        bt.wait_for(lambda: file_size(os.path.join(a.sandbox(filler["id"]), "stdout")) ==
                    41943040, 20, what="40 MiB held")
        by = a.launch(shell="echo bystander", name="bystander")
        a.wait_terminal(by["id"])
        bt.wait_for(lambda: "ended less than gc_min_age ago are kept" in a.log, 10,
                    what="a GC pass under pressure")
        got = a.inspect(by["id"])
        assert got["state"] == "FINISHED" and a.output(by["id"]) == "bystander\n", got
    finally:
        a.kill_all()
        a.stop()
        subprocess.run(["umount", a.work], check=False)


# ---- M6 ---------------------------------------------------------------------------------

def test_volume_targets_are_not_resolved_through_task_symlinks(agent, tmp_path):
    shared, target = tmp_path / "shared", tmp_path / "target"
    shared.mkdir()
    target.mkdir()
    os.chmod(shared, 0o777)
    a = agent.launch(shell="ln -s %s shared/link" % target, volumes=["%s:shared" % shared])
    assert agent.wait_terminal(a["id"])["state"] == "FINISHED"
    assert os.path.islink(shared / "link")
    src = tmp_path / "file"
    src.write_text("x")
    for vol in ("%s:shared/link/created-file" % src, "%s:shared/link/newdir/sub" % target):
        b = agent.launch(["true"], user="root", volumes=["%s:shared" % shared, vol])
        end = agent.wait_terminal(b["id"])
        assert (end["state"], end["reason"]) == ("FAILED", "LAUNCH_FAILED"), end
        assert "symlinks" in end["message"], end
    assert os.listdir(target) == [], "files made through the planted link: %s" % \
        os.listdir(target)


# ---- M8, M9, M10 ------------------------------------------------------------------------

def test_pids_are_admitted_and_the_parent_is_bounded(agent_factory):
    a = agent_factory(conf="[resources]\ncpus = 4\npids = 4000\n[reserved]\npids = 1000\n"
                           "mem = 512MiB\n")
    st, node = a.get("/v1/node")
    assert node["resources"]["allocatable"]["pids"] == 3000, node["resources"]
    for key, d in a.parent_dirs.items():
        if os.path.exists(os.path.join(d, "pids.max")):
            assert bt.read(os.path.join(d, "pids.max")).strip() == "3000"
    one = a.launch(["sleep", "60"], pids=2000)
    st, body = a.post("/v1/containers", {"command": {"argv": ["true"]},
                                         "resources": {"cpus": 0.1, "mem": "16MiB", "pids": 2000}})
    assert st == 409 and body["error"]["message"].startswith("pids"), body
    st, body = a.post("/v1/containers", {"command": {"argv": ["true"]},
                                         "resources": {"cpus": 0.1, "mem": "16MiB", "pids": 4000}})
    assert st == 409, body
    a.post("/v1/containers/%s/kill" % one["id"], {"signal": "KILL", "grace_seconds": 0})
    a.wait_terminal(one["id"])


def test_names_cannot_look_like_ids(agent):
    a = agent.launch(["sleep", "60"])
    for name in (a["id"], a["id"][:6], "cafe", "0"):
        st, body = agent.post("/v1/containers", {"name": name, "command": {"argv": ["true"]},
                                                 "resources": {"cpus": 0.1, "mem": "16MiB"}})
        assert st == 400 and "looks like a container id" in body["error"]["message"], body
    agent.launch(["true"], name="cafe-1")
    st, _ = agent.post("/v1/containers/%s/kill" % a["id"], {"signal": "KILL"})
    assert st == 202 and agent.wait_terminal(a["id"])["state"] == "KILLED"


def test_one_agent_per_work_dir_and_per_socket(agent_factory):
    first = agent_factory()
    second = agent_factory(start=False)
    second.argv = [x if not x.startswith("--work_dir=") else "--work_dir=" + first.work
                   for x in second.argv]
    r = second.run_foreground()
    assert r.returncode == 1 and "in use by another berth-agent (pid %d)" % first.proc.pid in \
        r.stderr, r.stderr
    third = agent_factory(start=False)
    third.argv = [x if not x.startswith("--listen=") else "--listen=unix:" + first.sock
                  for x in third.argv]
    r = third.run_foreground()
    assert r.returncode == 1 and "live socket" in r.stderr, r.stderr
    assert first.healthy() and os.path.exists(first.sock)


def test_a_dead_agents_lock_still_held_for_a_moment_is_waited_for(agent_factory):
    """A restart right after a SIGKILL: the dead agent's work_dir lock can stay held for a
    moment by the child it was cloning (it shares the agent's fd table until its first
    call), and the new agent refused to start (CI, test_recovery_faults.py). Here another
    process holds the lock after the agent named in it died, until the new agent says it
    waits: then it lets go, and the new agent starts (the old one exited 1 "in use"); a live
    agent is still refused at once (the test above)."""
    a = agent_factory()
    a.kill9()
    lock = os.path.join(a.work, "agent.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys\n"
         "f = open(sys.argv[1], 'r+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('held', flush=True); sys.stdin.readline()", lock],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        a.spawn()
        bt.wait_for(lambda: "lock is still held after berth-agent pid" in a.log or
                    a.proc.poll() is not None, 30, what="the new agent to wait for the lock")
        assert a.proc.poll() is None, a.log
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(30)

        def up():
            assert a.proc.poll() is None, a.log
            try:
                return a.healthy()
            except OSError:
                return False
        bt.wait_for(up, 30, what="the new agent to start once the lock is free")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# ---- M11, L5 ----------------------------------------------------------------------------

def test_the_master_registry_is_bounded(master_factory, agent_factory):
    # the ended task must outlive the next task's launch (seconds in a TCG VM): scaled
    m = master_factory(FAST + ["--max_agents=2", "--task_gc_delay=%ds" % int(2 * bt.SLOW)])
    a1 = agent_factory(flags=m.agent_flags())
    a2 = agent_factory(flags=m.agent_flags())
    m.wait_agents(2)
    a3 = agent_factory(flags=m.agent_flags())
    bt.wait_for(lambda: "max_agents" in a3.log, 15, what="the third agent refused")
    assert len(m.agents()) == 2
    victim = a2.get("/v1/node")[1]["id"]
    st, body = m.request("DELETE", "/v1/agents/" + victim)
    assert st == 409, body
    a2.stop()
    bt.wait_for(lambda: not [x for x in m.agents() if x["id"] == victim][0]["connected"], 15,
                what="the second agent's stream gone")
    r = m.ctl("agent", "rm", victim)
    assert r.returncode == 0, r.stderr
    m.wait_agents(2, timeout=30)  # the third one gets in now
    assert {x["id"] for x in m.agents()} == {a1.get("/v1/node")[1]["id"],
                                               a3.get("/v1/node")[1]["id"]}
    # tasks: an ended one is removed on demand, and forgotten after task_gc_delay
    t1 = m.wait_task(m.submit("true")["id"], bt.TERMINAL)
    t2 = m.wait_task(m.submit("sleep 60")["id"], "RUNNING")
    assert m.request("DELETE", "/v1/tasks/" + t2["id"])[0] == 409
    r = m.ctl("rm", t1["id"])
    assert r.returncode == 0 and m.get("/v1/tasks/" + t1["id"])[0] == 404, r.stderr
    t3 = m.wait_task(m.submit("true")["id"], bt.TERMINAL)
    bt.wait_for(lambda: m.get("/v1/tasks/" + t3["id"])[0] == 404, 15,
                what="the ended task forgotten after task_gc_delay")
    assert m.task(t2["id"])["state"] == "RUNNING"
    m.request("POST", "/v1/tasks/%s/kill" % t2["id"], {})


def test_agent_host_names_are_checked(master_factory):
    m = master_factory(FAST)
    call = mt.subscribe_call("f" * 32, "join", secrets.token_hex(32), mt.token_id(m.join_token))
    call["subscribe"]["hostname"] = "evil\nINJECTED log line"
    _, st, body = mt.open_subscribe(m, call)
    assert st == 400 and "hostname" in body["error"]["message"], body
    assert "INJECTED" not in m.log


# ---- L3, L4 -----------------------------------------------------------------------------

def test_launches_are_checked_when_submitted(agent, master_factory):
    base = {"command": {"argv": ["true"]}, "resources": {"cpus": 0.1, "mem": "16MiB"}}
    for extra, text in [({"user": "nosuchuser"}, "unknown"),
                        ({"user": "4294967295"}, "invalid"),
                        ({"role": ""}, "role"),
                        ({"role": "Bad Role"}, "role"),
                        ({"volumes": ["/nonexistent-berth:x"]}, "No such file")]:
        st, body = agent.post("/v1/containers", dict(base, **extra))
        assert st == 400 and text in body["error"]["message"], (extra, body)
    assert agent.get("/v1/containers")[1]["containers"] == []
    m = master_factory(FAST)
    for extra in ({"env": {"A=B": "c"}}, {"user": "a:b"}, {"volumes": [{"host": "rel"}]}):
        st, body = m.request("POST", "/v1/tasks", dict(base, **extra))
        assert st == 400, (extra, body)


@pytest.mark.parametrize("text,flags,want", [
    ("[agent]\nwork_dir = rel/dir\n", (), ":2: [agent] work_dir: bad path"),
    ("[agent]\ntask_user = nosuchuser\n", (), ":2: [agent] task_user: user 'nosuchuser'"),
    ("[agent]\npids_max = 99999999999999\n", (), ":2: [agent] pids_max: bad count"),
    ("[agent]\n\x00\x01\xff\n", (), ":2: a NUL byte"),
    ("[agent]\nmaster = http://\n", (), ":2: [agent] master: bad URL"),
    ("[resources]\nmem = 0\n", (), ":2: [resources] mem: bad size '0'"),
    ("[agent]\ncgroup_parent = /\n", (), ":2: [agent] cgroup_parent: bad cgroup"),
    ("[agent]\ntoken_file = /nonexistent/token\n", (), ":2: [agent] token_file '/nonexistent"),
    ("[agent]\nlisten = unix:/var/tmp/" + "x" * 120 + "\n", ("-listen",),
     ":2: [agent] listen: socket"),
    ("", ("--config=/var/tmp",), "/var/tmp: is a directory"),
])
def test_bad_agent_configs_name_their_line(agent_factory, text, flags, want):
    a = agent_factory(start=False)
    with open(a.conf, "w") as f:
        f.write(text)
    for f in flags:  # "-listen": drop the fixture's --listen; else replace its --config
        if f.startswith("--"):
            a.argv = [x for x in a.argv if not x.startswith("--config=")] + [f]
        else:
            a.argv = [x for x in a.argv if not x.startswith("-" + f + "=")]
    r = a.run_foreground()
    assert r.returncode == 1, r
    assert want in r.stderr, r.stderr
    assert "recovered" not in r.stderr, "the check came after recovery: %s" % r.stderr


@pytest.mark.parametrize("flags,want", [
    (["--agent_timeout=1s", "--heartbeat_interval=10s"], "at least twice heartbeat_interval"),
    (["--heartbeat_interval=100000w"], "at most 1h"),
    (["--listen=999.1.1.1:5158"], "bad address '999.1.1.1:5158'"),
])
def test_bad_master_configs_are_refused(master_factory, flags, want):
    m = master_factory(flags, start=False)
    r = subprocess.run(m.argv, capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and want in r.stderr, r.stderr


# ---- L6, L8 -----------------------------------------------------------------------------

def test_socket_under_tmp_leaves_the_tasks_tmp_writable(agent_factory):
    sockdir = "/tmp/berth-test-sock-%d" % os.getpid()
    a = agent_factory(start=False)
    a.sock = os.path.join(sockdir, "agent.sock")
    a.argv = [x if not x.startswith("--listen=") else "--listen=unix:" + a.sock for x in a.argv]
    try:
        a.start()
        c = a.launch(shell="echo hi > /tmp/x && cat /tmp/x")
        end = a.wait_terminal(c["id"])
        assert end["state"] == "FINISHED" and a.output(c["id"]) == "hi\n", \
            (end, a.output(c["id"], "stderr"))
    finally:
        a.stop()
        subprocess.run(["rm", "-rf", sockdir])


def test_ps_cpu_of_a_short_task_stays_near_its_quota(agent):
    c = agent.launch(["id"], cpus=0.1)
    agent.wait_terminal(c["id"])
    r = agent.ctl("ps", "-a")
    row = [l for l in r.stdout.splitlines() if l.startswith(c["id"][:12])][0]
    pct = float([w for w in row.split() if w.endswith("%")][0][:-1])
    assert pct < 25, row
