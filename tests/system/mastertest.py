# SPDX-License-Identifier: Apache-2.0
"""tests/system/mastertest.py - helpers of the master tests (issues #7, #11): a running
berth-master on a free loopback port with its own work_dir, admin token and join token,
serving TLS with a certificate of the test session's own CA (packaging/berth-gen-tls), or
plain HTTP when asked (start, SIGKILL, restart, HTTP calls with or without the token,
berthctl --master), and the flags that hook an agent from conftest's agent_factory to it.
conftest.py's master_factory fixture builds it; test_master.py and test_trust.py use it."""

import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess

import berthtest as bt

MASTER_BIN = os.path.join(bt.BUILD, "berth-master")
GEN_TLS = os.path.join(bt.REPO, "packaging", "berth-gen-tls")
# One CA and master certificate per test session, outside /tmp like every test dir.
TLS_DIR = os.path.join(bt.TMP_BASE, "berth-test-tls-%d" % os.getpid())


def tls_dir():
    """The session's CA (ca.crt) and master certificate (master.crt, master.key)."""
    if not os.path.exists(os.path.join(TLS_DIR, "master.crt")):
        subprocess.run([GEN_TLS, TLS_DIR], check=True, capture_output=True, text=True)
    return TLS_DIR


def remove_tls():
    shutil.rmtree(TLS_DIR, ignore_errors=True)


def write_token(path, text=None):
    text = text or secrets.token_hex(20)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return text


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Master(bt.Daemon):
    """A running berth-master on a free loopback port (start, stop, kill9 and the log come
    from berthtest.Daemon)."""

    NAME = "berth-master"

    def __init__(self, tmp, flags=(), tls=True):
        super().__init__(tmp, "master.log")
        self.work = os.path.join(tmp, "master")
        self.port = free_port()
        self.tls = tls
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.token_file = os.path.join(tmp, "token")
        self.token = write_token(self.token_file)
        self.join_token_file = os.path.join(tmp, "join.token")
        self.join_token = write_token(self.join_token_file)
        self.argv = [MASTER_BIN, "--config=/dev/null", "--listen=127.0.0.1:%d" % self.port,
                     "--work_dir=" + self.work, "--token_file=" + self.token_file,
                     "--join_token_file=" + self.join_token_file]
        if tls:
            d = tls_dir()
            self.ca = os.path.join(d, "ca.crt")
            self.argv += ["--tls_cert=" + os.path.join(d, "master.crt"),
                          "--tls_key=" + os.path.join(d, "master.key")]
        else:
            self.ca = None
            self.argv.append("--plain_http=true")
        self.argv += list(flags)

    def agent_flags(self):
        """An agent registering with the join token, verifying the master's certificate."""
        f = ["--master=" + self.url, "--token_file=" + self.join_token_file]
        return f + (["--master_ca=" + self.ca] if self.tls else ["--master_plain_http=true"])

    def connection(self, timeout=10):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    # -- HTTP --
    def request(self, method, path, body=None, raw=None, token=True, headers=None, timeout=10):
        conn = self.connection(timeout)
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

    def agents(self):
        st, body = self.get("/v1/agents")
        assert st == 200, body
        return body["agents"]

    def task(self, tid):
        st, body = self.get("/v1/tasks/" + tid)
        assert st == 200, body
        return body

    def tasks(self):
        st, body = self.get("/v1/tasks")
        assert st == 200, body
        return body["tasks"]

    def submit(self, shell, cpus=0.25, mem="64MiB", name=None, expect=201, **extra):
        body = {"command": {"shell": shell}, "resources": {"cpus": cpus, "mem": mem}}
        if name:
            body["name"] = name
        body.update(extra)
        st, t = self.request("POST", "/v1/tasks", body)
        assert st == expect, "submit -> %s %r" % (st, t)
        return t

    def wait_agents(self, n, timeout=15, with_usage=False):
        def ok():
            ags = [a for a in self.agents() if a["state"] == "REACHABLE" and a["connected"]]
            if with_usage:
                ags = [a for a in ags if a.get("usage")]
            return ags if len(ags) >= n else None
        return bt.wait_for(ok, timeout, what="%d agents registered at the master" % n)

    def wait_task(self, tid, states, timeout=20):
        if isinstance(states, str):
            states = (states,)

        def ok():
            t = self.task(tid)
            return t if t["state"] in states else None
        return bt.wait_for(ok, timeout, interval=0.1, what="task %s in %s" % (tid, states))

    def ctl(self, *args, timeout=60, token_file=None):
        ca = ["--cacert", self.ca] if self.ca else []
        return subprocess.run([bt.CTL_BIN, "--master", self.url, "--token-file",
                               token_file or self.token_file] + ca + [str(a) for a in args],
                              capture_output=True, text=True, timeout=timeout)


def history_states(task):
    return [h["state"] for h in task["history"]]


def check_history(task):
    """Every state once, in order, one terminal state, unique uuids."""
    states = history_states(task)
    order = ["STAGING", "STARTING", "RUNNING"]
    uuids = [h["uuid"] for h in task["history"]]
    assert len(set(uuids)) == len(uuids), "duplicate uuid in %r" % task["history"]
    assert len(set(states)) == len(states), "a state twice in %s: %r" % (task["id"], states)
    terminal = [s for s in states if s in bt.TERMINAL]
    assert len(terminal) <= 1, "more than one terminal state: %r" % states
    live = [s for s in states if s not in bt.TERMINAL]
    assert live == [s for s in order if s in live], "out of order: %r" % states
    if terminal:
        assert states[-1] == terminal[0], "terminal state not last: %r" % states
    return states


# ---- the agent protocol's handshake, from outside (docs/protocol.md "Authentication") ------

def proof(key, label, agent_id, na, nm, sid):
    msg = b"".join(x.encode() + b"\0" for x in (label, agent_id, na, nm, sid))
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def read_record(resp):
    line = b""
    while not line.endswith(b"\n"):
        c = resp.read(1)
        if not c:
            return None
        line += c
    return json.loads(resp.read(int(line)))


def open_subscribe(m, call, headers=None):
    """POST a SUBSCRIBE and read its first event: (connection, response, challenge)."""
    conn = m.connection(timeout=10)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request("POST", "/api/v1/agent", body=json.dumps(call).encode(), headers=h)
    resp = conn.getresponse()
    if resp.status != 200:
        body = json.loads(resp.read())
        conn.close()
        return None, resp.status, body
    ev = read_record(resp)
    assert ev["type"] == "CHALLENGE", ev
    return conn, resp, ev["challenge"]


def authenticate(m, agent_id, stream_id, prf):
    call = {"type": "AUTHENTICATE", "agent_id": agent_id, "authenticate": {"proof": prf}}
    return m.request("POST", "/api/v1/agent", call, token=False,
                     headers={"Berth-Stream-Id": stream_id})


def subscribe_call(agent_id, method, nonce, key_id=None):
    auth = {"method": method, "nonce": nonce}
    if key_id:
        auth["key_id"] = key_id
    res = {"cpus": 100000, "mem": 1 << 60, "disk": 1}
    return {"type": "SUBSCRIBE", "agent_id": agent_id,
            "subscribe": {"hostname": "impostor", "tasks": [], "auth": auth,
                          "resources": {"total": res, "reserved": {}, "allocatable": res}}}


def token_id(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]
