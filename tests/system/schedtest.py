# SPDX-License-Identifier: Apache-2.0
"""tests/system/schedtest.py - helpers of the scheduler API tests (issue #14): a framework
written in Python from docs/protocol.md alone ("The scheduler API"): SUBSCRIBE on its own
connection, a thread that reads the RecordIO event stream into a queue (and acknowledges
updates, as the C library does), the calls, and waits on events; plus the cluster the tests
share (one master, agents with given resources) and readers of the master's state.
test_sched_*.py use it; mastertest.py and conftest.py hold the master and agent fixtures."""

import json
import queue
import threading
import time

import berthtest as bt
import mastertest as mt

PATH = "/api/v1/scheduler"
FAST = ["--heartbeat_interval=500ms", "--allocation_interval=200ms"]


def agent_conf(cpus, mem, roles=None, ports=None):
    """An agent.conf with this many cpus and mem, [role.NAME] reservations and ports."""
    text = "[resources]\ncpus = %s\nmem = %s\npids = 4194304\n" % (cpus, mem)
    if ports:
        text += "ports = %s\n" % ports
    text += "[reserved]\ncpus = 0\nmem = 0\n"
    for name, (rc, rm) in (roles or {}).items():
        text += "[role.%s]\ncpus = %s\nmem = %s\n" % (name, rc, rm)
    return text


def cluster(master_factory, agent_factory, confs, flags=()):
    """A master (FAST + flags) and one agent per conf text, all registered."""
    m = master_factory(FAST + list(flags))
    agents = [agent_factory(conf=c, flags=m.agent_flags()) for c in confs]
    m.wait_agents(len(agents))
    return m, agents


class Framework:
    """One framework: subscribe(), calls, and events read by a thread into a queue."""

    def __init__(self, m, name, roles=("*",), token=None, failover_timeout=None,
                 framework_id=None, auto_ack=True):
        self.m, self.name, self.roles = m, name, list(roles)
        self.token = token or m.token
        self.failover_timeout = failover_timeout
        self.framework_id = framework_id
        self.auto_ack = auto_ack
        self.events = queue.Queue()
        self.stream_id = None
        self.conn = None
        self.thread = None
        self.updates = {}      # task id -> last status seen
        self.acked = []

    # -- the stream --
    def subscribe(self, expect=200):
        body = {"name": self.name, "roles": self.roles}
        if self.failover_timeout is not None:
            body["failover_timeout"] = self.failover_timeout
        call = {"type": "SUBSCRIBE", "subscribe": body}
        if self.framework_id:
            call["framework_id"] = self.framework_id
        conn = self.m.connection(timeout=30)
        conn.request("POST", PATH, body=json.dumps(call).encode(),
                     headers={"Content-Type": "application/json",
                              "Authorization": "Bearer " + self.token})
        resp = conn.getresponse()
        if resp.status != 200:
            body = json.loads(resp.read())
            conn.close()
            assert resp.status == expect, (resp.status, body)
            return resp.status, body
        assert expect == 200, "SUBSCRIBE answered 200, expected %s" % expect
        ev = mt.read_record(resp)
        assert ev["type"] == "SUBSCRIBED", ev
        assert resp.getheader("Berth-Stream-Id") == ev["subscribed"]["stream_id"]
        self.framework_id = ev["subscribed"]["framework_id"]
        self.stream_id = ev["subscribed"]["stream_id"]
        self.subscribed = ev["subscribed"]
        conn.sock.settimeout(None)
        self.conn = conn
        self.thread = threading.Thread(target=self._read, args=(conn, resp), daemon=True)
        self.thread.start()
        return 200, ev["subscribed"]

    def _read(self, conn, resp):
        while True:
            try:
                ev = mt.read_record(resp)
            except Exception:  # noqa: BLE001 - the stream ended, however it ended
                ev = None
            if ev is None:
                self.events.put({"type": "_CLOSED", "_t": time.monotonic()})
                return
            ev["_t"] = time.monotonic()  # when it arrived
            if ev["type"] == "UPDATE":
                st = ev["update"]["status"]
                self.updates[st["task_id"]] = st
                if self.auto_ack and st.get("uuid"):
                    try:
                        self.call("ACKNOWLEDGE", {"task_id": st["task_id"], "uuid": st["uuid"]})
                        self.acked.append((st["task_id"], st["state"]))
                    except OSError:
                        pass
            self.events.put(ev)

    def close(self):
        """Drop the stream (a crash of the scheduler, as the master sees it)."""
        if self.conn:
            try:
                self.conn.sock.shutdown(2)
            except OSError:
                pass
            self.conn.close()
            self.conn = None

    # -- calls --
    def call(self, kind, payload=None, stream_id=None, token=None):
        call = {"type": kind, "framework_id": self.framework_id, kind.lower(): payload or {}}
        return self.m.request("POST", PATH, call, token="Bearer " + (token or self.token),
                              headers={"Berth-Stream-Id": stream_id or self.stream_id or ""})

    def accept(self, offer_ids, tasks, refuse=None, expect=202):
        payload = {"offer_ids": list(offer_ids),
                   "operations": [{"type": "LAUNCH", "launch": {"tasks": list(tasks)}}]}
        if refuse is not None:
            payload["filters"] = {"refuse_seconds": refuse}
        st, body = self.call("ACCEPT", payload)
        assert st == expect, (st, body)
        return body

    def decline(self, offer_ids, refuse=None):
        payload = {"offer_ids": list(offer_ids)}
        if refuse is not None:
            payload["filters"] = {"refuse_seconds": refuse}
        st, body = self.call("DECLINE", payload)
        assert st == 202, (st, body)

    # -- events --
    def next_event(self, types, timeout=10):
        """The next event of one of these types (others are dropped); None on timeout."""
        end = time.monotonic() + timeout * bt.SLOW
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if ev["type"] in types:
                return ev

    def offers(self, timeout=10):
        ev = self.next_event(("OFFERS",), timeout)
        return ev["offers"]["offers"] if ev else []

    def wait_state(self, task_id, states, timeout=20):
        if isinstance(states, str):
            states = (states,)
        return bt.wait_for(lambda: self.updates.get(task_id, {}).get("state") in states
                           and self.updates[task_id], timeout, interval=0.05,
                           what="task %s in %s at framework %s" % (task_id, states, self.name))


class Hungry(threading.Thread):
    """Launches one task of (cpus, mem) from every offer it fits in (the rest back at once),
    declines the others for a second."""

    def __init__(self, fw, cpus, mem, prefix):
        super().__init__(daemon=True)
        self.fw, self.cpus, self.mem, self.prefix = fw, cpus, mem, prefix
        self.launched = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            ev = self.fw.next_event(("OFFERS", "_CLOSED"), timeout=0.3)
            if not ev or ev["type"] == "_CLOSED":
                continue
            for o in ev["offers"]["offers"]:
                res = o["resources"]
                if res["cpus"] >= self.cpus and res["mem"] >= self.mem:
                    name = "%s-%d" % (self.prefix, len(self.launched))
                    t = task(name, cpus=self.cpus, mem=self.mem)
                    body = self.fw.accept([o["id"]], [t], refuse=0)
                    self.launched.append(body["tasks"][0]["task_id"])
                else:
                    self.fw.decline([o["id"]], refuse=1)


def settle(frameworks, quiet=2.0, timeout=60):
    """Wait until no framework launched anything for quiet seconds; the counts."""
    last, since = None, time.monotonic()

    def still():
        nonlocal last, since
        now = [len(f.launched) for f in frameworks]
        if now != last:
            last, since = now, time.monotonic()
        return now if time.monotonic() - since >= quiet * bt.SLOW else None
    return bt.wait_for(still, timeout, interval=0.1, what="the frameworks to stop launching")


def run_hungry(m, specs):
    """Subscribe one Hungry framework per (name, roles, cpus, mem); run until settled."""
    drivers = []
    for name, roles, cpus, mem in specs:
        fw = Framework(m, name, roles=roles)
        fw.subscribe()
        drivers.append(Hungry(fw, cpus, mem, name))
    for d in drivers:
        d.start()
    try:
        counts = settle(drivers)
    finally:
        for d in drivers:
            d.stop.set()
        for d in drivers:
            d.join()
    for d in drivers:  # every launched task really runs
        for tid in d.launched:
            d.fw.wait_state(tid, "RUNNING")
    return drivers, counts


def task(name, shell="sleep 600", cpus=1, mem="64MiB", **extra):
    t = {"name": name, "command": {"shell": shell}, "resources": {"cpus": cpus, "mem": mem}}
    t.update(extra)
    return t


def frameworks(m):
    st, body = m.get("/v1/frameworks")
    assert st == 200, body
    return {f["id"]: f for f in body["frameworks"]}


def outstanding(m):
    st, body = m.get("/v1/offers")
    assert st == 200, body
    return body["offers"]


def metric(m, name):
    st, text = m.get("/metrics")
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError("%s not in /metrics" % name)
