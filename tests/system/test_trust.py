# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_trust.py - issue #11, the trust model (docs/security.md), each attack of
the December security review replayed: a `nobody` task that takes the master's port while it
restarts (C1) gets nothing it can use and launches nothing; nobody subscribes as an agent
with a client token, a join token or another agent's key (H5); the agent's own policy refuses
what the master (or anyone) may not ask (volumes, uid 0); root in a sandbox is root in a user
namespace only and reads no host secret (M4); local users read no task's env (M7).
Helpers: berthtest.py, mastertest.py; fixtures: conftest.py."""

import json
import os
import secrets
import subprocess

import pytest

import berthtest as bt
import mastertest as mt

FAST = ["--heartbeat_interval=500ms"]

# A master impostor, run as a task: it binds the master's port as soon as it is free and
# answers whatever connects the way the review's fake master did (a CHALLENGE it cannot
# prove, SUBSCRIBED, and a LAUNCH of a root task with the host's / as a volume). It logs
# every TLS refusal and every request it reads, headers and body, one JSON line each.
FAKE_MASTER = r'''
import json, socket, ssl, sys, threading, time
port, mode, certdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def log(k, v):
    print("%s=%s" % (k, json.dumps(v)), flush=True)
while True:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        break
    except OSError:
        s.close()
        time.sleep(0.02)
s.listen(64)
log("bound", port)
ctx = None
if mode == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certdir + "/fake.crt", certdir + "/fake.key")
def frame(ev):
    b = json.dumps(ev).encode()
    rec = str(len(b)).encode() + b"\n" + b
    return b"%x\r\n" % len(rec) + rec + b"\r\n"
def serve(c):
    try:
        if ctx:
            try:
                c = ctx.wrap_socket(c, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log("tls_refused", str(e))
                return
        c.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(body) < n:
            body += c.recv(65536)
        log("request", {"head": head.decode("latin-1"), "body": body.decode("latin-1")})
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/recordio\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        c.sendall(frame({"type": "CHALLENGE", "challenge": {
            "stream_id": "f" * 32, "nonce": "0" * 64, "proof": "1" * 64}}))
        c.sendall(frame({"type": "SUBSCRIBED", "subscribed": {
            "agent_id": "x", "stream_id": "f" * 32, "heartbeat_interval_seconds": 5}}))
        c.sendall(frame({"type": "LAUNCH", "launch": {"task_id": "t-00000000deadbeef",
            "container": {"name": "t-00000000deadbeef", "user": "root",
                          "command": {"shell": "id > hostroot/var/tmp/pwned"},
                          "resources": {"cpus": 0.1, "mem": "32MiB"},
                          "volumes": [{"host": "/", "container": "hostroot"}]}}}))
        time.sleep(3)
    except OSError:
        pass
    finally:
        c.close()
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''


def fake_dir(agent):
    """A directory every task can read, with the impostor's script and its own certificate
    (self-signed: what any task could make)."""
    d = os.path.join(agent.tmp, "fake")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "fake.py"), "w") as f:
        f.write(FAKE_MASTER)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/fake.key", "-out",
                    d + "/fake.crt", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True,
                   env=dict(os.environ, OPENSSL_CONF="/dev/null"))
    for n in os.listdir(d):
        os.chmod(os.path.join(d, n), 0o644)
    os.chmod(d, 0o755)
    return d


def fake_lines(agent, cid, key):
    return [json.loads(l.split("=", 1)[1]) for l in agent.output(cid).splitlines()
            if l.startswith(key + "=")]


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain-http"])
def test_a_task_on_the_masters_port_gets_nothing(master_factory, agent_factory, tls):
    """C1 replayed: the master stops; a nobody task binds its port and plays the master. The
    agent says nothing it could use and launches nothing; the real master, started while the
    port is taken, says who holds it; once it is back the agent reconnects with its own key."""
    m = master_factory(FAST, tls=tls)
    a = agent_factory(flags=m.agent_flags())
    node = m.wait_agents(1)[0]
    key = bt.read(os.path.join(a.work, "master.key")).strip()
    d = fake_dir(a)
    fake = a.launch(["python3", os.path.join(d, "fake.py"), str(m.port),
                     "tls" if tls else "plain", d], user="nobody")["id"]
    a.wait_state(fake, "RUNNING")
    assert m.stop() == 0  # a restart: the port is free for a moment
    bt.wait_for(lambda: fake_lines(a, fake, "bound"), 10, what="the impostor to bind the port")
    seen = "tls_refused" if tls else "request"
    bt.wait_for(lambda: len(fake_lines(a, fake, seen)) >= 2, 20,
                what="the agent to try the impostor twice")
    if tls:
        assert not fake_lines(a, fake, "request"), "the agent spoke HTTP to an unproven peer"
        assert "SSL certificate problem" in a.log or "certificate" in a.log, a.log[-2000:]
    else:
        reqs = fake_lines(a, fake, "request")
        for r in reqs:
            text = r["head"] + r["body"]
            assert "authorization" not in r["head"].lower(), r
            assert key not in text and m.join_token not in text, "a secret went to the impostor"
            assert '"SUBSCRIBE"' in r["body"], "the agent sent more than SUBSCRIBE: %r" % r
        assert "did not prove it knows" in a.log, a.log[-2000:]
    # nothing was launched: the impostor is the only container, and no file appeared
    ids = [c["id"] for c in a.get("/v1/containers")[1]["containers"]]
    assert ids == [fake], ids
    assert not os.path.exists("/var/tmp/pwned")
    # the real master cannot bind, and says who holds its port
    holder = a.inspect(fake)["pid"]
    task_pids = a.procs(fake)
    with pytest.raises(AssertionError):
        m.start()
    assert "Address already in use" in m.log, m.log[-2000:]
    assert any("held by pid %d " % p in m.log for p in task_pids + [holder]), m.log[-2000:]
    # the impostor goes; the real master comes back and the agent with the same key
    a.post("/v1/containers/%s/kill" % fake, {"signal": "KILL", "grace_seconds": 0})
    a.wait_terminal(fake)
    m.start()
    again = m.wait_agents(1, timeout=30)[0]
    assert again["id"] == node["id"]
    assert bt.read(os.path.join(a.work, "master.key")).strip() == key
    t = m.submit("true", name="after")
    assert m.wait_task(t["id"], bt.TERMINAL)["state"] == "FINISHED"
    if not tls:
        # what the impostor saw is useless at the real master: the SUBSCRIBE gets a
        # challenge nobody without the key can answer
        body = fake_lines(a, fake, "request")[0]["body"]
        conn, resp, ch = open_subscribe(m, json.loads(body))
        st, err = authenticate(m, node["id"], ch["stream_id"], "0" * 64)
        conn.close()
        assert st == 401, err
        assert m.agents()[0]["connected"]


# the handshake, from outside (docs/protocol.md "Authentication"): mastertest.py
proof, open_subscribe, authenticate = mt.proof, mt.open_subscribe, mt.authenticate
subscribe_call, token_id = mt.subscribe_call, mt.token_id


def test_nobody_subscribes_as_an_agent_without_its_key(master_factory, agent_factory):
    """H5 replayed: a client token, the join token, or another agent's key cannot make a
    SUBSCRIBE as agent A go through; A's stream and tasks are untouched (nothing LOST, nothing
    killed); and an agent's key is no client token."""
    m = master_factory(FAST)
    a = agent_factory(flags=m.agent_flags())
    b = agent_factory(flags=m.agent_flags())
    m.wait_agents(2)
    a_id = a.get("/v1/node")[1]["id"]
    ts = [m.submit("sleep 600", name="keep-%d" % i) for i in range(2)]
    ts = [m.wait_task(t["id"], "RUNNING") for t in ts]
    on_a = [t for t in ts if t["agent_id"] == a_id]
    b_key = bytes.fromhex(bt.read(os.path.join(b.work, "master.key")).strip())
    a_key_hex = bt.read(os.path.join(a.work, "master.key")).strip()
    nonce = secrets.token_hex(32)
    # a client token, as bearer or as a join token
    _, st, body = open_subscribe(m, subscribe_call(a_id, "agent-key", nonce),
                                 headers={"Authorization": "Bearer " + m.token})
    assert st == 401 and "no bearer token" in body["error"]["message"], body
    _, st, body = open_subscribe(m, subscribe_call("f" * 32, "join", nonce, token_id(m.token)))
    assert st == 401 and "no join token" in body["error"]["message"], body
    # the join token cannot take over a registered id
    _, st, body = open_subscribe(m, subscribe_call(a_id, "join", nonce, token_id(m.join_token)))
    assert st == 401 and "own key" in body["error"]["message"], body
    # B's key for A's id: the master's challenge is A's; B's proof is refused
    conn, resp, ch = open_subscribe(m, subscribe_call(a_id, "agent-key", nonce))
    forged = proof(b_key, "berth agent proof v1", a_id, nonce, ch["nonce"], ch["stream_id"])
    st, body = authenticate(m, a_id, ch["stream_id"], forged)
    conn.close()
    assert st == 401, body
    assert "wrong proof" in m.log
    # an agent's key is no client token
    st, body = m.get("/v1/tasks", token="Bearer " + a_key_hex)
    assert st == 401, body
    # A was never disturbed: still connected, its tasks RUNNING at the master and on A
    ag = [x for x in m.agents() if x["id"] == a_id][0]
    assert ag["connected"] and ag["hostname"] != "impostor", ag
    assert ag["resources"]["allocatable"]["cpus"] == 4, ag
    for t in ts:
        assert m.task(t["id"])["state"] == "RUNNING"
    for t in on_a:
        assert a.inspect(t["container_id"])["state"] == "RUNNING"
    # the calls of A's stream need its signature: a replayed or forged HEARTBEAT is refused
    hb = {"type": "HEARTBEAT", "agent_id": a_id, "heartbeat": {"usage": {}}}
    st, body = m.request("POST", "/api/v1/agent", hb, token=False,
                         headers={"Berth-Stream-Id": "0" * 32})
    assert st == 409, body
    st, metrics = m.get("/metrics", token=False)
    assert "berth_master_auth_failures_total" in metrics


def test_tokens_carry_rights(master_factory, agent_factory):
    """Tokens made by the admin: read sees, submit runs in its roles only, join cannot call
    the client API; a removed token stops working."""
    m = master_factory(FAST)
    agent_factory(flags=m.agent_flags())
    m.wait_agents(1)
    tokens = {}
    for rights, roles in (("read", None), ("submit", ["web"]), ("join", None)):
        body = {"rights": rights, "name": rights}
        if roles:
            body["roles"] = roles
        st, t = m.request("POST", "/v1/tokens", body)
        assert st == 201, t
        tokens[rights] = t
    st, _ = m.request("POST", "/v1/tokens", {"rights": "admin"})
    assert st == 400
    bearer = {k: "Bearer " + t["token"] for k, t in tokens.items()}
    task = {"command": {"shell": "true"}, "resources": {"cpus": 0.1, "mem": "32MiB"}}
    assert m.get("/v1/tasks", token=bearer["read"])[0] == 200
    assert m.request("POST", "/v1/tasks", task, token=bearer["read"])[0] == 403
    st, body = m.request("POST", "/v1/tasks", task, token=bearer["submit"])
    assert st == 403 and "role '*'" in body["error"]["message"], body
    st, t = m.request("POST", "/v1/tasks", dict(task, role="web"), token=bearer["submit"])
    assert st == 201, t
    assert m.get("/v1/tokens", token=bearer["submit"])[0] == 403
    assert m.get("/v1/tasks", token=bearer["join"])[0] == 403
    listed = m.get("/v1/tokens")[1]["tokens"]
    assert {x["rights"] for x in listed} == {"admin", "join", "read", "submit"}
    assert all("token" not in x for x in listed)
    assert m.request("DELETE", "/v1/tokens/" + tokens["read"]["info"]["id"])[0] == 204
    assert m.get("/v1/tasks", token=bearer["read"])[0] == 401
    # and through berthctl
    r = m.ctl("token", "create", "--rights", "read", "--name", "ops")
    assert r.returncode == 0 and len(r.stdout.strip()) >= 32, r.stderr
    ops = os.path.join(m.tmp, "ops.token")
    mt.write_token(ops, r.stdout.strip())
    r = m.ctl("tasks", token_file=ops)
    assert r.returncode == 0, r.stderr
    r = m.ctl("run", "--cpus", "0.1", "--mem", "32MiB", "--", "true", token_file=ops)
    assert r.returncode == 1 and "may not submit" in r.stderr, r.stderr


def test_the_agents_policy_binds_the_master(master_factory, agent_factory, tmp_path):
    """A launch from the master with a volume of / or as root is refused by the agent and
    nothing is created; an agent whose config allows them runs them; the local API has its
    own volume list, and a symlink out of an allowed directory does not count."""
    m = master_factory(FAST)
    strict = agent_factory(flags=m.agent_flags())
    m.wait_agents(1)
    root_vol = m.submit("id", mem="32MiB", cpus=0.1, volumes=[{"host": "/", "container": "h"}])
    as_root = m.submit("id", mem="32MiB", cpus=0.1, user="root")
    for t, text in ((root_vol, "volume_paths"), (as_root, "allow_root")):
        end = m.wait_task(t["id"], bt.TERMINAL)
        assert (end["state"], end["reason"]) == ("FAILED", "POLICY_DENIED"), end
        assert text in end["message"], end
    assert strict.get("/v1/containers")[1]["containers"] == []
    assert os.listdir(os.path.join(strict.work, "sandboxes")) == []
    # an agent that allows them (and only them)
    shared = str(tmp_path / "shared")  # not below an agent's dir: its leak check would see
    os.makedirs(shared)                # the next agent's flags mention it
    os.chmod(shared, 0o777)
    os.symlink("/", os.path.join(shared, "escape"))
    strict.stop()
    open_ = agent_factory(flags=m.agent_flags() + ["--volume_paths=" + shared,
                                                    "--allow_root=all"])
    m.wait_agents(1)
    ok = m.submit("id -u > vol/uid", cpus=0.1, mem="32MiB", user="root",
                  volumes=[{"host": shared, "container": "vol"}])
    end = m.wait_task(ok["id"], bt.TERMINAL)
    assert end["state"] == "FINISHED", end
    assert bt.read(os.path.join(shared, "uid")).strip() == "0"
    esc = m.submit("true", cpus=0.1, mem="32MiB",
                   volumes=[{"host": shared + "/escape", "container": "vol"}])
    end = m.wait_task(esc["id"], bt.TERMINAL)
    assert end["reason"] == "POLICY_DENIED" and "('/')" in end["message"], end
    # the local API: its own list
    local = agent_factory(flags=["--local_volume_paths=" + shared])
    st, body = local.post("/v1/containers", {"command": {"argv": ["true"]},
                                             "resources": {"cpus": 0.1, "mem": "32MiB"},
                                             "volumes": ["/etc:etc"]})
    assert st == 403 and body["error"]["code"] == "FORBIDDEN", body
    assert local.get("/v1/containers")[1]["containers"] == []
    none_root = agent_factory(flags=["--allow_root=none"])
    st, body = none_root.post("/v1/containers", {"command": {"argv": ["true"]}, "user": "0",
                                                 "resources": {"cpus": 0.1, "mem": "32MiB"}})
    assert st == 403 and "allow_root" in body["error"]["message"], body
    assert open_.healthy()


def test_root_in_a_sandbox_is_not_root_on_the_host(agent_factory):
    """uid 0 in a task is a slice of userns_range on the host (uid_map, and a file it makes in
    a volume); it cannot read a root-only host file that plain root can; host secrets are
    masked whatever the mode; exec joins the same user namespace."""
    secret = os.path.join(bt.TMP_BASE, "berth-test-secret-%d" % os.getpid())
    with open(secret, "w") as f:
        f.write("top-secret\n")
    os.chmod(secret, 0o600)
    try:
        for mode in ("root", "none"):
            a = agent_factory(flags=["--userns=" + mode])
            vol = os.path.join(a.tmp, "vol")
            os.makedirs(vol)
            os.chmod(vol, 0o777)
            script = ("id -u; cat /proc/self/uid_map; touch vol/made; "
                      "cat %s /etc/shadow /etc/gshadow && echo read=ok; ls -A /root | wc -l; "
                      "sleep 30" % secret)
            c = a.launch(["/bin/sh", "-c", script], user="root", volumes=[vol + ":vol"])
            bt.wait_for(lambda: os.path.exists(os.path.join(vol, "made")), 10,
                        what="the task's file in the volume")
            pid = a.procs(c["id"], "sleep")[0]
            out, err = a.output(c["id"]), a.output(c["id"], "stderr")
            assert out.splitlines()[0] == "0", out
            assert "root:" not in out and "shadow" not in out, "host secrets read: %r" % out
            made = os.stat(os.path.join(vol, "made"))
            uid_map = bt.read("/proc/%d/uid_map" % pid).split()
            info = a.inspect(c["id"])
            if mode == "root":
                base = int(uid_map[1])
                assert uid_map[0] == "0" and uid_map[2] == "65536", uid_map
                assert 1879048192 <= base <= 2147483647 - 65535, uid_map
                assert made.st_uid == base and made.st_gid == base, made
                assert info["userns"] == {"host_uid": base, "size": 65536}, info
                assert "top-secret" not in out and "Permission denied" in err, (out, err)
                # berthctl exec: the same user namespace
                r = a.ctl("exec", c["id"], "--", "cat", "/proc/self/uid_map")
                assert r.returncode == 0 and r.stdout.split() == uid_map, (r.stdout, r.stderr)
            else:
                assert uid_map[:2] == ["0", "0"], uid_map
                assert made.st_uid == 0
                assert info["userns"] is None
                assert "top-secret" in out  # the control: plain root can
            a.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL", "grace_seconds": 0})
            a.wait_terminal(c["id"])
    finally:
        os.unlink(secret)


def test_local_users_cannot_read_state_or_env(agent):
    """state.db, the runtime dirs (spec.json) and the task's environment stay root's."""
    c = agent.launch(["sleep", "30"], env={"DB_PASSWORD": "hunter2"})
    agent.wait_state(c["id"], "RUNNING")
    pid = agent.procs(c["id"], "sleep")[0]
    assert os.stat(agent.work).st_mode & 0o777 == 0o700
    for f in ("state.db", "state.db-wal", "state.db-shm"):
        p = os.path.join(agent.work, f)
        if os.path.exists(p):
            assert os.stat(p).st_mode & 0o777 == 0o600, f
    spec = os.path.join(agent.work, "containers", c["id"], "spec.json")
    as_user = ["setpriv", "--reuid=12345", "--regid=12345", "--clear-groups", "--"]
    for target in [os.path.join(agent.work, "state.db"), spec, "/proc/%d/environ" % pid]:
        r = subprocess.run(as_user + ["cat", target], capture_output=True)
        assert r.returncode != 0 and b"hunter2" not in r.stdout, (target, r)
    r = subprocess.run(as_user + ["sh", "-c", "cat %s/state.db* 2>&1; grep -r hunter2 %s 2>&1"
                                  % (agent.work, agent.work)], capture_output=True)
    assert b"hunter2" not in r.stdout, r.stdout
    agent.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL", "grace_seconds": 0})
    agent.wait_terminal(c["id"])
