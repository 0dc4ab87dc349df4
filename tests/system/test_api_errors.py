# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_api_errors.py - issue #3 item 7: bad input gets a 4xx JSON error and
the agent keeps serving; a bad config file stops start-up with file:line and the reason;
berthctl errors are one line on stderr with exit status 1."""

import os
import subprocess
import tempfile

import pytest

import berthtest as bt


def launch_body(cpus=0.25, mem="64MiB", **extra):
    body = {"command": {"argv": ["sleep", "1"]}, "resources": {"cpus": cpus, "mem": mem}}
    body.update(extra)
    return body


def check_error(agent, st, body, statuses, code=None, words=()):
    assert st in statuses, "status %s, want %s: %r" % (st, statuses, body)
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        "error is not JSON: %r" % (body,)
    assert body["error"].get("code") and isinstance(body["error"].get("message"), str), body
    if code:
        assert body["error"]["code"] == code, body
    for w in words:
        assert w in body["error"]["message"], "%r does not name %r" % (body, w)
    assert agent.healthy(), "agent stopped serving"


BAD_LAUNCHES = [
    ("malformed", b"{\"command\": {\"argv\": [\"sleep\""),
    ("not an object", b"[1, 2, 3]"),
    ("nan literal", b"{\"command\": {\"argv\": [\"true\"]}, \"resources\": {\"cpus\": NaN, "
                    b"\"mem\": \"64MiB\"}}"),
    ("command string", launch_body(command="sleep 1")),
    ("argv not strings", launch_body(command={"argv": [1, 2]})),
    ("empty argv", launch_body(command={"argv": []})),
    ("cpus list", launch_body(cpus=[1])),
    ("cpus bool", launch_body(cpus=True)),
    ("cpus negative", launch_body(cpus=-1)),
    ("cpus zero", launch_body(cpus=0)),
    ("cpus nan string", launch_body(cpus="nan")),
    ("cpus inf string", launch_body(cpus="inf")),
    ("cpus huge exponent", b"{\"command\": {\"argv\": [\"true\"]}, \"resources\": {\"cpus\": "
                           b"1e999, \"mem\": \"64MiB\"}}"),
    ("mem zero", launch_body(mem=0)),
    ("mem negative", launch_body(mem=-5)),
    ("mem garbage", launch_body(mem="12XB")),
    ("mem object", launch_body(mem={"a": 1})),
    ("pids negative", launch_body(resources={"cpus": 0.25, "mem": "64MiB", "pids": -1})),
    ("user number list", launch_body(user=[0])),
    ("env not object", launch_body(env="A=B")),
    ("env value not string", launch_body(env={"A": {"b": 1}})),
]


@pytest.mark.parametrize("name,body", BAD_LAUNCHES, ids=[b[0] for b in BAD_LAUNCHES])
def test_bad_launch_is_400(agent, name, body):
    raw = body if isinstance(body, bytes) else None
    st, resp = agent.request("POST", "/v1/containers", body=None if raw else body, raw=raw)
    check_error(agent, st, resp, (400,), "INVALID_ARGUMENT")
    st, lst = agent.get("/v1/containers")
    assert st == 200 and lst["containers"] == [], "a bad launch created a container: %r" % lst


def test_beyond_allocatable_is_409(agent):
    st, node = agent.get("/v1/node")
    assert st == 200, node
    alloc = node["resources"]["allocatable"]
    st, r = agent.post("/v1/containers", launch_body(mem=str(int(alloc["mem"]) + (1 << 30))))
    check_error(agent, st, r, (409,), "INSUFFICIENT_RESOURCES", ["mem"])
    st, r = agent.post("/v1/containers", launch_body(cpus=float(alloc["cpus"]) + 1))
    check_error(agent, st, r, (409,), "INSUFFICIENT_RESOURCES", ["cpus"])
    # the sum counts: what is allocated is no longer free
    half = int(alloc["mem"]) // 2
    a = agent.launch(["sleep", "30"], mem=half - (64 << 20))
    st, r = agent.post("/v1/containers", launch_body(mem=half + (128 << 20)))
    check_error(agent, st, r, (409,), "INSUFFICIENT_RESOURCES", ["mem"])
    agent.post("/v1/containers/%s/kill" % a["id"], {"signal": "KILL"})
    agent.wait_terminal(a["id"])


def test_deeply_nested_json(agent):
    raw = b"[" * 100000 + b"]" * 100000
    st, r = agent.request("POST", "/v1/containers", raw=raw)
    check_error(agent, st, r, (400,))
    raw = b"{\"a\":" * 100000 + b"1" + b"}" * 100000
    st, r = agent.request("POST", "/v1/containers", raw=raw)
    check_error(agent, st, r, (400, 413))


def post_sized(agent, size):
    """POST a body of size bytes; (status, body) of the answer."""
    conn = bt.UnixHTTPConnection(agent.sock, timeout=30)
    try:
        conn.putrequest("POST", "/v1/containers")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        chunk = b" " * (64 << 10)
        try:
            for _ in range(size // len(chunk)):
                conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent answered early and closed: fine, read its answer
        resp = conn.getresponse()
        return resp.status, bt._decode(resp.read(), resp.getheader("Content-Type"))
    finally:
        conn.close()


def test_huge_body_is_413(agent):
    """Over 1 MiB: our JSON 413. Over 2 MiB libevent stops reading and answers 413 itself (its
    HTML: libevent 2.1 has no hook for its own errors), so no body makes the agent hold more
    than 2 MiB (review M12: 64 MiB before)."""
    st, body = post_sized(agent, 3 << 19)
    check_error(agent, st, body, (413,), "BODY_TOO_LARGE")
    st, body = post_sized(agent, 10 << 20)
    assert st == 413, (st, body)
    assert agent.healthy()


@pytest.mark.parametrize("path", [
    "/v1/containers/../../../etc/passwd",
    "/v1/containers/..%2F..%2Fnode",
    "/v1/containers/..%2Fsandboxes",
    "/v1/containers/%2E%2E",
    "/v1/containers/ffffffffffffffff",
    "/v1/containers/nosuchname/logs",
    "/v1/containers/nosuchname/stats",
    "/v1/nosuchthing",
])
def test_bad_ids_and_paths(agent, path):
    st, r = agent.get(path)
    check_error(agent, st, r, (400, 404))
    st, r = agent.delete(path)
    check_error(agent, st, r, (400, 404, 405))
    assert os.path.isdir(agent.work), "a DELETE removed the agent's work_dir"
    st, r = agent.post("/v1/containers/ffffffffffffffff/kill", {})
    check_error(agent, st, r, (404,), "NOT_FOUND")


def test_bad_config_names_file_and_line():
    if not os.access(bt.AGENT_BIN, os.X_OK):
        pytest.skip("berth-agent not built: %s" % bt.AGENT_BIN)
    with tempfile.TemporaryDirectory(prefix="berth-test-cfg-", dir=bt.TMP_BASE) as tmp:
        conf = os.path.join(tmp, "agent.conf")
        with open(conf, "w") as f:
            f.write("[agent]\nlog_level = info\nno_such_key = 1\n")
        parent = "berth-test-%d-badcfg" % os.getpid()
        r = subprocess.run([bt.AGENT_BIN, "--config=" + conf,
                            "--work_dir=" + os.path.join(tmp, "work"),
                            "--listen=unix:" + os.path.join(tmp, "agent.sock"),
                            "--cgroup_parent=" + parent], capture_output=True, text=True,
                           timeout=10)
        leftovers = [os.path.join(d, parent) for d in bt.own_cgroup_dirs().values()
                     if os.path.isdir(os.path.join(d, parent))]
        for d in leftovers:
            bt.kill_cgroup_tree(d)
        assert r.returncode != 0
        assert "agent.conf:3" in r.stderr and "no_such_key" in r.stderr, r.stderr
        assert not leftovers, "a failed start-up left cgroups %s" % leftovers
        r = subprocess.run([bt.AGENT_BIN, "--config=" + os.path.join(tmp, "missing.conf")],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0 and "missing.conf" in r.stderr, r.stderr


def one_line_error(r):
    assert r.returncode == 1, "exit %s, stdout %r stderr %r" % (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("berthctl"), "stderr: %r" % r.stderr
    return lines[0]


def test_ctl_errors_are_one_line(agent):
    one_line_error(agent.ctl("inspect", "nosuchid"))
    msg = one_line_error(agent.ctl("run", "--cpus", "1000", "--mem", "64MiB", "--", "true"))
    assert "cpus" in msg
    one_line_error(agent.ctl("run", "--cpus", "nan", "--mem", "64MiB", "--", "true"))
    one_line_error(agent.ctl("kill", "ffffffffffffffff"))
    r = subprocess.run([bt.CTL_BIN, "--socket", "/nonexistent/agent.sock", "ps"],
                       capture_output=True, text=True, timeout=10)
    msg = one_line_error(r)
    assert "/nonexistent/agent.sock" in msg
    assert agent.healthy()
