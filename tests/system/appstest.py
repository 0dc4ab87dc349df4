# SPDX-License-Identifier: Apache-2.0
"""tests/system/appstest.py - helpers of the berth-apps tests (issue #16): a running
berth-apps (its own work_dir and token, TLS with the session's master certificate) subscribed
to a master of mastertest.py, the cluster the tests share (one master with short intervals,
two agents with distinct hostnames, attributes and port ranges of their own), calls of the
apps API, and finding an instance's process. test_apps.py uses it; the fixture `apps_env`
builds the cluster and its finalizer stops berth-apps (the master and agent fixtures clean up
the rest)."""

import http.client
import json
import os
import random
import shutil
import ssl
import tempfile
import time

import pytest

import berthtest as bt
import mastertest as mt

APPS_BIN = os.path.join(bt.BUILD, "berth-apps")
FAST = ["--heartbeat_interval=500ms", "--allocation_interval=200ms"]


class Apps(bt.Daemon):
    """berth-apps on a free loopback port, subscribed to master m."""

    NAME = "berth-apps"

    def __init__(self, tmp, m, flags=()):
        super().__init__(tmp, "apps.log")
        self.m = m
        self.work = os.path.join(tmp, "apps")
        self.port = mt.free_port()
        self.token_file = os.path.join(tmp, "apps.token")
        self.token = mt.write_token(self.token_file)
        d = mt.tls_dir()
        self.ca = os.path.join(d, "ca.crt")
        self.url = "https://127.0.0.1:%d" % self.port
        self.argv = [APPS_BIN, "--config=/dev/null", "--listen=127.0.0.1:%d" % self.port,
                     "--work_dir=" + self.work, "--token_file=" + self.token_file,
                     "--tls_cert=" + os.path.join(d, "master.crt"),
                     "--tls_key=" + os.path.join(d, "master.key"),
                     "--master=" + m.url, "--master_token_file=" + m.token_file,
                     "--log_level=debug"]
        if m.ca:
            self.argv.append("--master_ca=" + m.ca)
        self.argv += list(flags)

    def request(self, method, path, body=None, raw=None, token=True, headers=None, timeout=10):
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        try:
            data = raw if raw is not None else (json.dumps(body).encode()
                                                if body is not None else None)
            h = {"Content-Type": "application/json"} if data is not None else {}
            if token is True:
                h["Authorization"] = "Bearer " + self.token
            elif token:
                h["Authorization"] = token
            h.update(headers or {})
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    # -- the API --
    def deploy(self, app, expect=201):
        st, body = self.request("POST", "/v1/apps", app)
        assert st == expect, (st, body)
        return body

    def app(self, app_id):
        st, body = self.get("/v1/apps/" + app_id)
        assert st == 200, (st, body)
        return body["app"]

    def tasks(self, app_id):
        st, body = self.get("/v1/apps/%s/tasks" % app_id)
        assert st == 200, (st, body)
        return body["tasks"]

    def deployments(self):
        st, body = self.get("/v1/deployments")
        assert st == 200, (st, body)
        return body["deployments"]

    def wait_tasks(self, app_id, cond, timeout=30, what="tasks"):
        """Wait until cond(tasks) is true; the tasks."""
        def ok():
            ts = self.tasks(app_id)
            return ts if cond(ts) else None
        return bt.wait_for(ok, timeout, interval=0.1, what="%s of app %s" % (what, app_id))

    def wait_healthy(self, app_id, n, timeout=30):
        return self.wait_tasks(
            app_id, lambda ts: len(ts) == n and all(t["state"] == "RUNNING" and t.get("healthy")
                                                    for t in ts),
            timeout, what="%d RUNNING and healthy" % n)

    def wait_no_deployment(self, app_id, timeout=60):
        return bt.wait_for(lambda: not [d for d in self.deployments() if d["app_id"] == app_id],
                           timeout, interval=0.2, what="the deployments of %s to end" % app_id)

    def wait_subscribed(self, timeout=20):
        return bt.wait_for(lambda: self.get("/health")[1].get("reconciled"), timeout,
                           interval=0.1, what="berth-apps subscribed and reconciled")


def agent_conf(name, ports, attrs=None, address=None):
    text = ("[agent]\nhostname = %s\n" % name + ("address = %s\n" % address if address else "") +
            "[resources]\ncpus = 2\nmem = 2GiB\npids = 4194304\n"
            "ports = %s\n[reserved]\ncpus = 0\nmem = 0\n" % ports)
    if attrs:
        text += "[attributes]\n" + "".join("%s = %s\n" % kv for kv in attrs.items())
    return text


class Env:
    def __init__(self, m, agents, apps, ranges):
        self.m, self.agents, self.apps, self.ranges = m, agents, apps, ranges


@pytest.fixture
def apps_env(master_factory, agent_factory):
    """apps_env(n_agents=2, apps_flags=(), addresses=None) -> Env: a master, agents named
    apps-a, apps-b (attribute rack r1, r2) with 40 ports each ([agent] address from
    addresses[i] when given), and berth-apps subscribed and reconciled."""
    made = []

    def make(n_agents=2, apps_flags=(), addresses=None):
        m = master_factory(FAST)
        base = random.randrange(20000, 29000, 100)
        ranges = ["[%d-%d]" % (base + 50 * i, base + 50 * i + 39) for i in range(n_agents)]
        agents = [agent_factory(conf=agent_conf("apps-%s" % "ab"[i], ranges[i],
                                                {"rack": "r%d" % (i + 1)},
                                                (addresses or [None] * n_agents)[i]),
                                flags=m.agent_flags()) for i in range(n_agents)]
        m.wait_agents(n_agents)
        tmp = tempfile.mkdtemp(prefix="berth-test-apps-%d-" % os.getpid(), dir=bt.TMP_BASE)
        a = Apps(tmp, m, apps_flags)
        made.append(a)
        a.start(timeout=10)
        a.wait_subscribed()
        return Env(m, agents, a, ranges)

    yield make
    problems = []
    for a in made:
        rc = a.stop()
        if rc not in (0, None, -9):
            problems.append("berth-apps stop: exit status %s\n%s" % (rc, a.log[-3000:]))
        problems += a.sanitizer_reports()
        shutil.rmtree(a.tmp, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# A web server for the instances: on 127.0.0.1:$PORT0, exec'd so the task's process is it.
WEB = "exec python3 -m http.server --bind 127.0.0.1 $PORT0"


def web_app(app_id="web", instances=3, **extra):
    app = {"id": app_id, "command": WEB, "instances": instances, "cpus": 0.25, "mem": "64MiB",
           "ports": [{"name": "http"}],
           "health_checks": [{"type": "http", "port_index": 0, "path": "/", "interval": 0.5,
                              "timeout": 2, "grace": 20, "consecutive_failures": 3}],
           "backoff": {"seconds": 0.2, "factor": 2, "max_seconds": 2, "reset_seconds": 5}}
    app.update(extra)
    return app


def get_ok(port, timeout=3):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    finally:
        conn.close()


def pid_listening(port):
    """The pid of the process whose command line holds http.server and port."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"http.server" in args and str(port).encode() in args:
            return int(d)
    return None


def now():
    return time.monotonic()
