# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_apps_events.py - issue #17: berth-apps' GET /v1/events (docs/apps.md
"Events") with a real master, agents and berth-apps: the snapshot lists every app and its
instances (address, ports, healthy, version), the agent's address coming from its [agent]
address or else from the address the master saw it connect from; scaling up and down and a
SIGKILLed instance arrive as instance_* events in order with consecutive ids, and a table
kept from them matches GET /v1/apps/ID/tasks; Last-Event-ID resumes with exactly the missed
events; a subscriber that never reads is cut off while another keeps every event and
berth-apps' memory stays bounded; no token is 401; after a restart of berth-apps an old id
gets a fresh snapshot. Helpers: appstest.py (the cluster), ssetest.py (the client)."""

import http.client
import json
import os
import signal
import ssl
import subprocess
import threading

import appstest as at
import berthtest as bt
import ssetest
from appstest import apps_env  # noqa: F401 - the fixture


def open_events(apps, token=True, last_id=None, timeout=30):
    ctx = ssl.create_default_context(cafile=apps.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", apps.port, timeout=timeout, context=ctx)
    return ssetest.Stream(conn, "/v1/events", apps.token if token is True else token, last_id,
                          timeout)


def consecutive(evs, after=None):
    """The ids of evs are one epoch and consecutive (after: the id before the first)."""
    seqs = [e.seq() for e in evs]
    if after is not None:
        seqs.insert(0, tuple(int(x) for x in after.split("-")))
    assert len({e for e, _ in seqs}) <= 1, seqs
    assert [s for _, s in seqs] == list(range(seqs[0][1], seqs[0][1] + len(seqs))), seqs


class Table:
    """What a client of the stream keeps: the instances of every app, from the snapshot and
    the instance_* events (berth-lb's endpoint table)."""

    def __init__(self, snap):
        assert snap.event == "snapshot", snap
        self.insts = {t["id"]: t for app in snap.data["apps"] for t in app["tasks"]}

    def apply(self, ev):
        if ev.event in ("instance_added", "instance_changed"):
            assert (ev.event == "instance_added") == (ev.data["instance"]["id"] not in self.insts)
            self.insts[ev.data["instance"]["id"]] = ev.data["instance"]
        elif ev.event == "instance_removed":
            assert self.insts.pop(ev.data["instance"]["id"], None) is not None, ev

    def serving(self, app_id):
        return sorted(t["id"] for t in self.insts.values() if t["app_id"] == app_id and
                      t["state"] == "RUNNING" and t.get("healthy") and not t["killing"])


def read_until(s, table, pred, timeout=60, what="an event"):
    """Events up to the first for which pred (seeing the table with it applied) is true."""
    def step(e):
        table.apply(e)
        return pred(e)
    return s.until(step, timeout=timeout, what=what)


def test_snapshot_lists_apps_and_instances_with_their_address(apps_env):
    env = apps_env(addresses=[None, "127.0.0.2"])
    # the agents' addresses: apps-a's as the master saw it connect, apps-b's from its config
    agents = {a["hostname"]: a for a in env.m.agents()}
    assert agents["apps-a"]["address"] == "127.0.0.1", agents
    assert agents["apps-b"]["address"] == "127.0.0.2", agents
    want = {"apps-a": "127.0.0.1", "apps-b": "127.0.0.2"}
    a = env.apps
    a.deploy(at.web_app("web", 2, ports=[{"name": "http", "service_port": 10000}],
                        constraints=[["hostname", "UNIQUE"]],
                        labels={"lb.vhost": "web.example"}))
    tasks = a.wait_healthy("web", 2, timeout=60)
    assert {t["hostname"]: t["address"] for t in tasks} == want, tasks
    version = a.app("web")["version"]

    s = open_events(a)
    assert s.status == 200 and s.headers["Content-Type"].startswith("text/event-stream")
    snap = s.next()
    assert snap.event == "snapshot", snap
    apps = {x["id"]: x for x in snap.data["apps"]}
    web = apps["web"]
    assert web["version"] == version and web["instances"] == 2, web
    assert web["labels"] == {"lb.vhost": "web.example"}, web
    assert web["ports"] == [{"name": "http", "service_port": 10000}], web
    assert web["health_check"] is True
    assert sorted(t["id"] for t in web["tasks"]) == sorted(t["id"] for t in tasks)
    for t in web["tasks"]:
        assert t["address"] == want[t["hostname"]], t
        assert t["state"] == "RUNNING" and t["healthy"] is True and t["killing"] is False, t
        assert t["version"] == version and t["app_id"] == "web" and t["agent_id"]
        assert len(t["ports"]) == 1 and at.get_ok(t["ports"][0]) == 200
    s.close()

    # the token is needed
    for token in (None, "not-the-token-0123456789"):
        s = open_events(a, token=token)
        assert s.status == 401, s.status
        assert json.loads(s.body)["error"]["code"] == "UNAUTHORIZED"
        s.close()
    st, body = a.request("POST", "/v1/events", {})
    assert st == 405, body


def test_scale_and_a_killed_instance_arrive_in_order(apps_env):
    env = apps_env()
    a = env.apps
    a.deploy(at.web_app("web", 1))
    a.wait_healthy("web", 1, timeout=60)
    a.wait_no_deployment("web")
    s = open_events(a)
    snap = s.next()
    table = Table(snap)
    assert len(table.serving("web")) == 1
    evs = []

    # 1 -> 3: two instances added, then RUNNING and healthy; the scale deployment ends
    st, body = a.request("PATCH", "/v1/apps/web", {"instances": 3})
    assert st == 200, body
    evs += read_until(s, table, lambda e: e.event == "deployment_removed", what="scaled to 3")
    assert len(table.serving("web")) == 3, table.insts
    names = [e.event for e in evs]
    assert names.index("app_changed") < names.index("deployment_added")
    assert [e.data["app"]["instances"] for e in evs if e.event == "app_changed"] == [3]
    added = [e.data["instance"]["id"] for e in evs if e.event == "instance_added"]
    assert len(added) == 2 and all(e.data["instance"]["state"] == "STAGING"
                                   for e in evs if e.event == "instance_added")
    for tid in added:  # each one's states only move forward
        order = ["STAGING", "STARTING", "RUNNING"]
        mine = [e.data["instance"] for e in evs if e.event.startswith("instance_") and
                e.data["instance"]["id"] == tid]
        idx = [order.index(x["state"]) for x in mine]
        assert idx == sorted(idx) and mine[-1]["healthy"] is True, mine

    # SIGKILL one: it is removed (ended), and a replacement is added and turns healthy
    victim = table.insts[table.serving("web")[0]]
    pid = at.pid_listening(victim["ports"][0])
    assert pid, victim
    os.kill(pid, signal.SIGKILL)
    got = read_until(s, table, lambda e: e.event == "instance_removed" and
                     e.data["instance"]["id"] == victim["id"], what="the killed one removed")
    assert got[-1].data["instance"]["state"] in ("FAILED", "KILLED"), got[-1]
    evs += got
    evs += read_until(s, table, lambda e: len(table.serving("web")) == 3, timeout=60,
                      what="a replacement serving")
    assert victim["id"] not in table.insts

    # 3 -> 1: two are asked to end (killing), then removed
    st, body = a.request("PATCH", "/v1/apps/web", {"instances": 1})
    assert st == 200, body
    got = read_until(s, table, lambda e: e.event == "deployment_removed" and
                     e.data["deployment"]["kind"] == "scale", what="scaled to 1")
    evs += got
    killing = [e.data["instance"]["id"] for e in got if e.event == "instance_changed" and
               e.data["instance"]["killing"]]
    removed = [e.data["instance"]["id"] for e in got if e.event == "instance_removed"]
    assert len(set(killing)) == 2 and set(removed) == set(killing), (killing, removed)
    for tid in removed:
        pos = [i for i, e in enumerate(got) if e.event.startswith("instance_") and
               e.data["instance"]["id"] == tid]
        assert got[pos[-1]].event == "instance_removed"
        assert got[pos[-1]].data["instance"]["killing"] is True
        # kill_delay (1 s by default): marked killing (out of every rotation), it is asked
        # to end only that much later, so it answers what reaches it meanwhile
        marked = min(e.data["time"] for e in got if e.event == "instance_changed" and
                     e.data["instance"]["id"] == tid and e.data["instance"]["killing"])
        gone = got[pos[-1]].data["time"]
        assert gone - marked >= 0.95, "ended %.3f s after it was marked killing" % (gone - marked)
    # every event after the snapshot, ids one after another
    consecutive(evs, after=snap.id)
    # the table kept from the stream is what the API says
    tasks = a.tasks("web")
    assert sorted(table.insts) == sorted(t["id"] for t in tasks)
    assert table.serving("web") == [t["id"] for t in tasks if t.get("healthy")]
    s.close()


def test_resume_gets_exactly_the_missed_events(apps_env):
    env = apps_env(n_agents=1)
    a = env.apps
    a.deploy(at.web_app("web", 1))
    a.wait_healthy("web", 1, timeout=60)
    a.wait_no_deployment("web")
    watcher = open_events(a)
    assert watcher.next().event == "snapshot"
    b = open_events(a)
    assert b.next().event == "snapshot"
    a.request("PATCH", "/v1/apps/web", {"instances": 2})
    seen = b.until(lambda e: e.event == "deployment_removed", timeout=60)
    last = seen[-1].id
    b.close()
    a.request("PATCH", "/v1/apps/web", {"instances": 1})  # while b is away
    everything = watcher.until(lambda e: e.event == "deployment_removed" and e.id != last,
                               timeout=60)
    missed = everything[[e.id for e in everything].index(last) + 1:]
    assert len(missed) >= 5 and any(e.event == "instance_removed" for e in missed), missed
    c = open_events(a, last_id=last)
    assert c.status == 200
    got = [c.next() for _ in missed]
    assert [(e.id, e.event, e.text) for e in got] == [(e.id, e.event, e.text) for e in missed]
    assert any(x.startswith("resumed after " + last) for x in c.comments), c.comments
    # and nothing else was queued: the next event is the next change, for both
    a.request("PATCH", "/v1/apps/web", {"instances": 2})
    nxt = c.next()
    assert nxt.event == "app_changed" and nxt.data["app"]["instances"] == 2, nxt
    assert watcher.next().id == nxt.id
    consecutive([missed[-1], nxt])
    c.close()
    watcher.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_stalled_subscriber_is_cut_off_others_keep_up(apps_env):
    env = apps_env(n_agents=1, apps_flags=["--events_buffer=64KiB"])
    a = env.apps
    # an app no agent can hold (it never launches): each scale is app_changed and deployment
    # events, ~2.5 KB of them with its label
    a.deploy(at.web_app("big", 0, cpus=64, labels={"pad": "x" * 2000}))
    reader = open_events(a, timeout=120)
    snap = reader.next()
    n = 300
    got, failed = [], []

    def read_all():
        try:
            got.extend(reader.until(lambda e: e.event == "app_changed" and
                                    e.data["app"]["instances"] == n, timeout=600))
        except Exception as e:  # noqa: BLE001 - reported below
            failed.append(e)

    th = threading.Thread(target=read_all, daemon=True)
    th.start()
    stuck = ssetest.stalled("127.0.0.1", a.port, "/v1/events", a.token, ca=a.ca)
    bt.wait_for(lambda: a.log.count("GET /v1/events: subscriber") >= 2, 10,
                interval=0.1, what="the stalled subscriber connected")
    rss0 = rss_kib(a.proc.pid)
    ctx = ssl.create_default_context(cafile=a.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", a.port, timeout=30, context=ctx)
    h = {"Authorization": "Bearer " + a.token, "Content-Type": "application/json"}
    try:
        for i in range(1, n + 1):
            conn.request("PATCH", "/v1/apps/big", body=json.dumps({"instances": i}), headers=h)
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
    finally:
        conn.close()
    th.join(180)
    assert not failed, failed
    assert "cut off" in a.log, a.log[-3000:]
    nbytes, ended = ssetest.drain(stuck, 20)
    stuck.close()
    assert ended, "the stalled subscriber's connection was not closed"
    # the reader got every event, in order: n app_changed among them
    consecutive(got, after=snap.id)
    assert len([e for e in got if e.event == "app_changed"]) == n
    total = sum(len(e.text) for e in got)
    assert total > 600 * 1024 and nbytes < total / 2, (nbytes, total)
    grew = rss_kib(a.proc.pid) - rss0
    if not a.sanitized():  # a sanitizer build's quarantine says nothing
        assert grew < 16 * 1024, "berth-apps grew %d KiB for %d bytes of events" % (grew, total)
    reader.close()


def test_after_a_restart_an_old_id_gets_a_snapshot(apps_env):
    env = apps_env(n_agents=1)
    a = env.apps
    a.deploy(at.web_app("web", 1))
    tasks = a.wait_healthy("web", 1, timeout=60)
    s = open_events(a)
    snap = s.next()
    a.request("PATCH", "/v1/apps/web", {"instances": 1, "labels": {"k": "v"}})
    last = s.until(lambda e: e.event == "app_changed", timeout=30)[-1].id
    s.close()
    assert a.stop() == 0
    a.start(timeout=10)
    a.wait_subscribed()
    c = open_events(a, last_id=last)
    ev = c.next()
    assert ev.event == "snapshot", ev
    assert ev.seq()[0] > snap.seq()[0]  # a new epoch
    web = [x for x in ev.data["apps"] if x["id"] == "web"][0]
    assert web["labels"] == {"k": "v"}, web
    ids = {t["id"] for t in web["tasks"]}
    assert ids and ids <= {t["id"] for t in a.tasks("web")}, (web, tasks)
    c.close()


# An instance that serves /ok from its own directory and ignores SIGTERM, so that one asked
# to end stays RUNNING (killing) for the agent's kill_grace (10 s).
STUBBORN = ("d=$(mktemp -d) && cd \"$d\" && echo ok >ok && trap '' TERM && "
            "exec python3 -m http.server --bind 127.0.0.1 $PORT0")


def endpoints(a, *args):
    r = subprocess.run([bt.CTL_BIN, "--apps", a.url, "--cacert", a.ca, "--token-file",
                        a.token_file, "app", "endpoints", "ep"] + list(args),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r
    return r.stdout


def rows(out):
    lines = out.splitlines()
    assert lines[0].split() == ["SERVICE_PORT", "ADDRESS:PORT", "TASK_ID"], out
    return sorted(tuple(x.split()) for x in lines[1:])


def test_app_endpoints_lists_only_serving_instances(apps_env):
    env = apps_env(addresses=[None, "127.0.0.2"])
    a = env.apps
    a.deploy(at.web_app("ep", 3, command=STUBBORN,
                        ports=[{"name": "http", "service_port": 10000}],
                        health_checks=[{"type": "http", "port_index": 0, "path": "/ok",
                                        "interval": 0.5, "timeout": 2, "grace": 20,
                                        "consecutive_failures": 1000}]))
    tasks = a.wait_healthy("ep", 3, timeout=60)

    def want(ts):
        return sorted(("10000", "%s:%d" % (t["address"], t["ports"][0]), t["id"]) for t in ts)

    assert {t["address"] for t in tasks} <= {"127.0.0.1", "127.0.0.2"}, tasks
    assert rows(endpoints(a)) == want(tasks)
    js = json.loads(endpoints(a, "-o", "json"))
    assert sorted(e["task_id"] for e in js["endpoints"]) == sorted(t["id"] for t in tasks)
    assert all(e["service_port"] == 10000 and e["port_index"] == 0 for e in js["endpoints"])

    # one turns unhealthy (its /ok is gone): no longer listed
    sick = tasks[0]
    os.remove("/proc/%d/cwd/ok" % at.pid_listening(sick["ports"][0]))
    a.wait_tasks("ep", lambda ts: any(t["id"] == sick["id"] and t.get("healthy") is False
                                      for t in ts), what="one unhealthy")
    rest = [t for t in tasks if t["id"] != sick["id"]]
    assert rows(endpoints(a)) == want(rest)

    # scale to 1: the unhealthy one and one healthy one are killed; the healthy one stays
    # RUNNING while it ignores SIGTERM, but is not listed
    st, body = a.request("PATCH", "/v1/apps/ep", {"instances": 1})
    assert st == 200, body
    ts = a.wait_tasks("ep", lambda ts: any(t.get("killing") and t["state"] == "RUNNING" and
                                           t.get("healthy") for t in ts), what="one killing")
    stay = [t for t in ts if not t.get("killing")]
    assert len(stay) == 1, ts
    assert rows(endpoints(a)) == want(stay)


def test_kill_delay_is_checked():
    """[apps] kill_delay takes a duration up to 1 h: anything else is one line on stderr."""
    for bad in ("soon", "2h", "-1s"):
        r = subprocess.run([at.APPS_BIN, "--config=/dev/null", "--kill_delay=" + bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r
        assert "kill_delay: bad duration '%s'" % bad in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
