# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_master.py - issue #7: berth-master and the agents' master link, with one
master and three agents on this host (each agent with its own work_dir, cgroup_parent and
socket): registration and heartbeat usage, the seed's two tasks placed through the master
with their limits in the kernel's files and their updates in order, a master SIGKILLed for
30 s while tasks end, an agent gone past the timeout (LOST, then reconciled), and refusals
of bad calls on both sides. Helpers: mastertest.py; fixtures: conftest.py."""

import http.server
import json
import os
import socketserver
import sqlite3
import threading
import time

import pytest

import berthtest as bt
import mastertest as mt

FAST = ["--heartbeat_interval=500ms"]


def start_cluster(master_factory, agent_factory, n=3, master_flags=FAST, agent_flags=()):
    m = master_factory(master_flags)
    agents = [agent_factory(flags=m.agent_flags() + list(agent_flags)) for _ in range(n)]
    m.wait_agents(n)
    return m, agents


def agent_of(agents, task):
    for a in agents:
        st, node = a.get("/v1/node")
        if node["id"] == task["agent_id"]:
            return a
    raise AssertionError("no agent %s" % task["agent_id"])


def master_counter(m, name):
    """The value of an unlabelled counter in the master's /metrics."""
    st, text = m.get("/metrics")
    assert st == 200, text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("%s not in the master's /metrics" % name)


def unacknowledged(a, task_id):
    """Updates of task_id the master has not acknowledged yet: the rows of the agent's
    durable outbox (link_updates in its state.db; WAL lets us read beside the agent). The
    agent deletes a row when the ACKNOWLEDGE arrives, which the master sends only after it
    has applied or ignored the update."""
    db = sqlite3.connect(os.path.join(a.work, "state.db"), timeout=5)
    try:
        return db.execute("SELECT count(*) FROM link_updates WHERE task_id = ?",
                          (task_id,)).fetchone()[0]
    finally:
        db.close()


def test_agents_register_with_resources_and_measured_usage(master_factory, agent_factory):
    m, agents = start_cluster(master_factory, agent_factory)
    ids = {a.get("/v1/node")[1]["id"] for a in agents}
    listed = m.wait_agents(3, with_usage=True)
    assert {a["id"] for a in listed} == ids
    for a in listed:
        assert a["resources"]["allocatable"]["cpus"] == 4
        assert a["resources"]["total"]["mem"] - a["resources"]["reserved"]["mem"] == \
            a["resources"]["allocatable"]["mem"]
        assert a["usage"]["node_mem"] > 0
    # a busy task: its agent's heartbeats carry the CPU it burns
    t = m.submit("while :; do :; done", cpus=1, mem="64MiB", name="burn")
    m.wait_task(t["id"], "RUNNING")

    def busy():
        ag = [a for a in m.agents() if a["id"] == t["agent_id"]][0]
        task = m.task(t["id"])
        u = task.get("usage") or {}
        return (ag, task) if ag["usage"]["cpus"] > 0.5 and u.get("cpu_cores", 0) > 0.5 else None
    ag, task = bt.wait_for(busy, 15, interval=0.2, what="heartbeats with the task's CPU")
    beats = ag["heartbeats"]
    bt.wait_for(lambda: [a for a in m.agents() if a["id"] == ag["id"]][0]["heartbeats"] > beats,
                3, interval=0.1, what="the next heartbeat (every 500 ms)")
    # berthctl --master URL agents shows each one with allocatable and usage
    r = m.ctl("agents")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "ALLOCATABLE" in lines[0] and "USED" in lines[0]
    for i in ids:
        row = [line for line in lines if line.startswith(i[:12])]
        assert row and "REACHABLE" in row[0] and "4 / " in row[0], r.stdout
    r = m.ctl("agents", "-o", "json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["agents"]) == 3
    assert m.ctl("kill", t["id"]).returncode == 0
    done = m.wait_task(t["id"], bt.TERMINAL)
    assert done["state"] == "KILLED" and done["reason"] == "KILLED_BY_REQUEST"
    mt.check_history(done)


def test_seed_tasks_placed_with_limits_and_ordered_updates(master_factory, agent_factory):
    m, agents = start_cluster(master_factory, agent_factory)
    r1 = m.ctl("run", "--name", "seed-a", "--cpus", "2", "--mem", "1GiB", "--", "sleep", "3")
    r2 = m.ctl("run", "--name", "seed-b", "--cpus", "1", "--mem", "2GiB", "--", "sleep", "3")
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
    ta, tb = r1.stdout.strip(), r2.stdout.strip()
    want = {ta: (200000, 1 << 30), tb: (100000, 2 << 30)}
    for tid, (quota, mem) in want.items():
        t = m.wait_task(tid, "RUNNING")
        a = agent_of(agents, t)
        c = a.inspect(t["container_id"])
        assert c["name"] == tid and c["state"] == "RUNNING"
        dirs = c["cgroups"]
        assert bt.read_int(os.path.join(a.ctrl_dir(dirs, "cpu.cfs_quota_us"),
                                        "cpu.cfs_quota_us")) == quota
        assert bt.read_int(os.path.join(a.ctrl_dir(dirs, "memory.limit_in_bytes"),
                                        "memory.limit_in_bytes")) == mem
    # spread: the two tasks are on different agents
    assert m.task(ta)["agent_id"] != m.task(tb)["agent_id"]
    r = m.ctl("tasks")
    assert r.returncode == 0 and "seed-a" in r.stdout and "seed-b" in r.stdout
    for tid in want:
        t = m.wait_task(tid, bt.TERMINAL, timeout=15)
        assert (t["state"], t["reason"], t["exit_code"]) == ("FINISHED", "EXITED", 0)
        assert mt.check_history(t) == ["STAGING", "STARTING", "RUNNING", "FINISHED"]
        assert [h["source"] for h in t["history"]] == ["master", "agent", "agent", "agent"]
    # no room anywhere: refused with the reason
    st, body = m.request("POST", "/v1/tasks", {"command": {"shell": "true"},
                                                "resources": {"cpus": 64, "mem": "1GiB"}})
    assert st == 409 and body["error"]["code"] == "INSUFFICIENT_RESOURCES"
    assert "no agent has 64 cpus" in body["error"]["message"]


@pytest.mark.slow
def test_master_down_30s_every_update_arrives_once(master_factory, agent_factory):
    m, agents = start_cluster(master_factory, agent_factory)
    tids = [m.submit("sleep %d" % (2 + i % 3), name="down-%d" % i)["id"] for i in range(6)]
    for tid in tids:
        m.wait_task(tid, "RUNNING")
    m.kill9()
    down_at = time.monotonic()
    # the tasks end on their agents while the master is away
    for a in agents:
        st, body = a.get("/v1/containers")
        a.wait_all_terminal([c["id"] for c in body["containers"]], timeout=15)
    time.sleep(max(0, 30 - (time.monotonic() - down_at)))
    m.start()
    m.wait_agents(3, timeout=20)
    for tid in tids:
        t = m.wait_task(tid, bt.TERMINAL, timeout=20)
        assert t["state"] == "FINISHED", t
        assert mt.check_history(t) == ["STAGING", "STARTING", "RUNNING", "FINISHED"]
    # every update was acknowledged: nothing left queued on the agents
    for a in agents:
        assert "stream to" in a.log  # it noticed the master was gone
    st, metrics = m.get("/metrics")
    assert "berth_master_updates_total" in metrics


def test_agent_gone_past_timeout_tasks_lost_then_reconciled(master_factory, agent_factory):
    m, agents = start_cluster(master_factory, agent_factory, n=1,
                              master_flags=FAST + ["--agent_timeout=2s", "--lost_grace=1s"])
    a = agents[0]
    t = m.submit("sleep 600", name="victim")
    t = m.wait_task(t["id"], "RUNNING")
    ctr = a.inspect(t["container_id"])
    a.proc.send_signal(9)
    a.proc.wait()
    lost = m.wait_task(t["id"], "LOST", timeout=15)
    assert lost["reason"] == "AGENT_UNREACHABLE"
    assert [x for x in m.agents() if x["id"] == t["agent_id"]][0]["state"] == "UNREACHABLE"
    assert bt.alive(ctr["pid"]), "the task must survive the agent's death"
    # the agent comes back: it re-adopts the task, the master kills it (it is LOST there)
    dup0 = master_counter(m, "berth_master_updates_duplicate_total")
    a.start()
    m.wait_agents(1)
    c = a.wait_terminal(ctr["id"], timeout=20)
    assert c["state"] == "KILLED"
    # the KILLED update reaches the master, which acknowledges it and leaves the task LOST
    bt.wait_for(lambda: unacknowledged(a, t["id"]) == 0, 10, interval=0.1,
                what="the master to acknowledge the task's KILLED update")
    assert master_counter(m, "berth_master_updates_duplicate_total") > dup0
    final = m.task(t["id"])
    assert final["state"] == "LOST" and mt.check_history(final)[-1] == "LOST"
    assert "killing it" in m.log

    # a task the master thinks alive but the agent lacks becomes LOST: the agent restarts
    # with --recover=cleanup, which kills and forgets its containers
    t2 = m.wait_task(m.submit("sleep 600", name="forgotten")["id"], "RUNNING")
    a.stop()
    a.argv.append("--recover=cleanup")
    a.start()
    lost2 = m.wait_task(t2["id"], "LOST", timeout=15)
    assert lost2["reason"] == "AGENT_RESTARTED_LOST"
    mt.check_history(lost2)


def test_bad_calls_are_refused_and_nothing_crashes(master_factory, agent_factory):
    m, agents = start_cluster(master_factory, agent_factory, n=1)
    agent_id = m.agents()[0]["id"]
    path = "/api/v1/agent"
    hb = {"type": "HEARTBEAT", "agent_id": agent_id, "heartbeat": {"usage": {}}}
    cases = [
        (dict(body=hb, token=True), 401, "UNAUTHORIZED", "takes no bearer token"),
        (dict(body=hb, token="Bearer wrong-token-wrong-token"), 401, "UNAUTHORIZED",
         "no bearer token"),
        (dict(raw=b'{"type": "HEARTBEAT", '), 400, "INVALID_ARGUMENT", "malformed JSON"),
        (dict(raw=b"[" * 100000), 400, "INVALID_ARGUMENT", "nested deeper"),
        (dict(body={"type": "FROBNICATE", "agent_id": agent_id}), 400, "INVALID_ARGUMENT",
         "unknown call type"),
        (dict(body={"type": "HEARTBEAT", "agent_id": "../etc"}), 400, "INVALID_ARGUMENT",
         "agent_id"),
        (dict(body=dict(hb, agent_id="f" * 32)), 404, "UNKNOWN_AGENT", "SUBSCRIBE first"),
        (dict(body=hb, headers={"Berth-Stream-Id": "0" * 32}), 409, "STALE_STREAM",
         "SUBSCRIBE again"),
        (dict(body=hb), 409, "STALE_STREAM", "Berth-Stream-Id"),
        (dict(raw=b" " * (3 << 19)), 413, "BODY_TOO_LARGE", "limit"),
        (dict(body={"type": "UPDATE", "agent_id": agent_id, "update": {"status": {}}},
              headers={"Berth-Stream-Id": "0" * 32}), 409, "STALE_STREAM", ""),
    ]
    for kw, status, code, text in cases:
        kw.setdefault("token", False)  # agents never send one; the first two cases do
        st, body = m.request("POST", path, **kw)
        assert st == status, (kw.get("body"), st, body)
        assert body["error"]["code"] == code and text in body["error"]["message"], body
    # the client API refuses bad tasks with the reason
    for bad, text in [({"command": {"shell": "x"}}, "resources"),
                      ({"command": {}, "resources": {"cpus": 1, "mem": 1}}, "command"),
                      ({"command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1},
                        "frobnicate": []}, "unknown field")]:
        st, body = m.request("POST", "/v1/tasks", bad)
        assert st == 400 and text in body["error"]["message"], body
    st, body = m.get("/v1/tasks", token=False)
    assert st == 401
    assert m.get("/health", token=False)[0] == 200
    # neither side crashed: the agent is still subscribed and a task still runs through
    t = m.submit("true")
    assert m.wait_task(t["id"], bt.TERMINAL)["state"] == "FINISHED"
    assert m.proc.poll() is None and agents[0].proc.poll() is None
    st, metrics = m.get("/metrics", token=False)
    assert "berth_master_refused_total" in metrics


class _BadMaster(http.server.BaseHTTPRequestHandler):
    """Answers SUBSCRIBE with a broken RecordIO stream, or a 401."""
    mode = "garbage"
    hits = 0

    def do_POST(self):
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "401":
            body = b'{"error": {"code": "UNAUTHORIZED", "message": "wrong bearer token"}}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/recordio")
        self.end_headers()
        if self.mode == "garbage":
            self.wfile.write(b"not a length\n{}")
        else:  # oversized record
            self.wfile.write(b"99999999999\n{")
        self.wfile.flush()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("mode,logged", [("garbage", "bad event stream"),
                                         ("huge", "the limit is"),
                                         ("401", "HTTP 401: wrong bearer token")])
def test_agent_survives_a_bad_master(agent_factory, mode, logged, tmp_path):
    join = str(tmp_path / "join.token")
    mt.write_token(join)
    handler = type("H", (_BadMaster,), {"mode": mode, "hits": 0})
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        a = agent_factory(flags=["--master=http://127.0.0.1:%d" % srv.server_address[1],
                                 "--master_plain_http=true", "--token_file=" + join])
        bt.wait_for(lambda: logged in a.log and handler.hits >= 3, 15,
                    what="the agent to refuse the stream and retry")
        assert a.healthy() and a.proc.poll() is None
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow
def test_chaos_300_tasks_while_master_and_agents_die(master_factory, agent_factory):
    """300 submissions while the master and the agents are SIGKILLed and restarted at
    random: every task ends with exactly one terminal state at the master, the one its
    agent saw; the fixtures then check that no cgroup or process is left."""
    import random
    rnd = random.Random(int(os.environ.get("BERTH_CHAOS_SEED", "7")))
    m, agents = start_cluster(master_factory, agent_factory,
                              master_flags=FAST + ["--agent_timeout=20s", "--lost_grace=30s"])
    stop = threading.Event()
    kills = {"master": 0, "agent": 0}
    lock = threading.Lock()  # a victim is restarted before the next one dies

    def chaos():
        while not stop.wait(rnd.uniform(0.5, 2.0)):
            with lock:
                victim = rnd.choice(["master"] + agents)
                if victim == "master":
                    m.kill9()
                    kills["master"] += 1
                    time.sleep(rnd.uniform(0.1, 1.0))
                    m.start()
                else:
                    victim.proc.send_signal(9)
                    victim.proc.wait()
                    kills["agent"] += 1
                    time.sleep(rnd.uniform(0.1, 1.0))
                    victim.start(timeout=15)

    th = threading.Thread(target=chaos, daemon=True)
    th.start()
    tids = []
    try:
        while len(tids) < 300:
            body = {"command": {"shell": "sleep 0.%d; exit %d" % (rnd.randint(1, 9),
                                                                  len(tids) % 3)},
                    "resources": {"cpus": 0.05, "mem": "16MiB"}, "name": "chaos-%d" % len(tids)}
            try:
                st, t = m.request("POST", "/v1/tasks", body, timeout=5)
            except OSError:
                time.sleep(0.05)
                continue
            if st == 201:
                tids.append(t["id"])
                time.sleep(0.1)  # ~30 s of submissions: a dozen kills or more
            else:
                time.sleep(0.05)  # no agent connected right now
    finally:
        stop.set()
        th.join()
    assert kills["master"] > 0 and kills["agent"] > 0, kills
    m.wait_agents(3, timeout=30)

    def all_terminal():
        ts = {t["id"]: t for t in m.tasks()}
        return ts if all(ts[i]["state"] in bt.TERMINAL for i in tids) else None
    final = bt.wait_for(all_terminal, 120, interval=0.5, what="300 tasks terminal at the master")
    by_agent = {a.get("/v1/node")[1]["id"]: a for a in agents}
    outcomes = {}
    for tid in tids:
        t = m.task(tid)
        states = mt.check_history(t)
        assert sum(s in bt.TERMINAL for s in states) == 1, (tid, states)
        ag = by_agent[t["agent_id"]]
        c = None
        if t["container_id"]:
            st, c = ag.get("/v1/containers/" + t["container_id"])
            c = c if st == 200 else None
        if c is None:
            # the launch never made a container there (cut short by a crash)
            assert t["state"] in ("LOST", "FAILED"), t
        else:
            ag.note(c)
            assert (c["state"], c["reason"], c["exit_code"]) == \
                (t["state"], t["reason"], t["exit_code"]), (t, c)
            if c["state"] == "FINISHED" or c["reason"] == "EXITED":
                want = int(final[tid]["name"].split("-")[1]) % 3
                assert c["exit_code"] == want
        outcomes[t["state"]] = outcomes.get(t["state"], 0) + 1
    print("chaos: kills %r, outcomes %r" % (kills, outcomes))
