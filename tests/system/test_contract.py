# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_contract.py - issue #13 "parse at the edge, validate once": the agent's
POST /v1/containers and the master's POST /v1/tasks take the same task spec (docs/api.md),
so the same bad body must get the same refusal from both. One table of 40 bad launch bodies
(malformed JSON, wrong types, missing or bad command and resources, unknown fields, bad env,
volumes, user, role and name, U+0000 in a string, nesting past the limit, more CPUs than
any node has) goes to an agent and to a master that has that agent connected (so a body
the master accepted would be placed, not refused for want of an agent). Every row must get
the row's error code, with a 4xx status, from both; the failure lists every row that
differs and how."""

import json


GOOD_RES = {"cpus": 0.1, "mem": "16MiB"}
GOOD = {"command": {"argv": ["true"]}, "resources": GOOD_RES}


def body(**fields):
    """GOOD with fields replaced (a value of None drops the field)."""
    b = json.loads(json.dumps(GOOD))
    for k, v in fields.items():
        if v is None:
            b.pop(k, None)
        else:
            b[k] = v
    return b


def res(**fields):
    """GOOD's resources with fields replaced (None drops one)."""
    r = dict(GOOD_RES)
    for k, v in fields.items():
        if v is None:
            r.pop(k, None)
        else:
            r[k] = v
    return body(resources=r)


def raw_with(text):
    """A raw body: GOOD's JSON with one more member spliced in as text."""
    return ('{"command": {"argv": ["true"]}, "resources": {"cpus": 0.1, "mem": "16MiB"}, %s}'
            % text).encode()


BAD = "INVALID_ARGUMENT"
# (row name, body: a dict to send as JSON or bytes to send as they are, the code both give)
CASES = [
    # malformed or not an object
    ("malformed JSON", b'{"command": {"argv": ["true"]', BAD),
    ("trailing garbage", json.dumps(GOOD).encode() + b" x", BAD),
    ("empty body", b"", BAD),
    ("array body", b"[1, 2, 3]", BAD),
    ("NaN literal", b'{"command": {"argv": ["true"]}, "resources": {"cpus": NaN, '
                    b'"mem": "16MiB"}}', BAD),
    # command
    ("command missing", body(command=None), BAD),
    ("command a string", body(command="true"), BAD),
    ("command shell and argv", body(command={"shell": "true", "argv": ["true"]}), BAD),
    ("command unknown field", body(command={"argv": ["true"], "cwd": "/"}), BAD),
    ("argv empty", body(command={"argv": []}), BAD),
    ("argv not strings", body(command={"argv": [1, 2]}), BAD),
    ("argv[0] empty", body(command={"argv": ["", "x"]}), BAD),
    ("shell empty", body(command={"shell": ""}), BAD),
    # resources
    ("resources missing", body(resources=None), BAD),
    ("resources a list", body(resources=[0.1, "16MiB"]), BAD),
    ("cpus missing", res(cpus=None), BAD),
    ("mem missing", res(mem=None), BAD),
    ("cpus zero", res(cpus=0), BAD),
    ("cpus negative", res(cpus=-1), BAD),
    ("cpus a boolean", res(cpus=True), BAD),
    ("cpus 4 decimals", res(cpus="0.0001"), BAD),
    ("cpus 1e999", b'{"command": {"argv": ["true"]}, "resources": {"cpus": 1e999, '
                   b'"mem": "16MiB"}}', BAD),
    ("mem zero", res(mem=0), BAD),
    ("mem unknown unit", res(mem="12XB"), BAD),
    ("mem fractional bytes", res(mem=1.5), BAD),
    ("pids zero", res(pids=0), BAD),
    ("pids a word", res(pids="many"), BAD),
    ("cpus_limit below cpus", res(cpus=1, cpus_limit=0.5), BAD),
    ("unknown resource", res(gpus=1), BAD),
    ("cpus beyond every node", res(cpus=64), "INSUFFICIENT_RESOURCES"),
    # the other fields
    ("unknown field", body(image="debian:12"), BAD),
    ("env a string", body(env="A=B"), BAD),
    ("env name with '='", body(env={"A=B": "c"}), BAD),
    ("volumes not a list", body(volumes={"host": "/srv", "container": "/srv"}), BAD),
    ("volume host relative", body(volumes=[{"host": "srv", "container": "/srv"}]), BAD),
    ("user a number", body(user=0), BAD),
    ("role with spaces", body(role="Bad Role"), BAD),
    ("name with a slash", body(name="../etc"), BAD),
    ("name holds U+0000", raw_with('"name": "web\\u0000x"'), BAD),
    ("nested past the limit", raw_with('"env": ' + "[" * 40 + "]" * 40), BAD),
]


def send(daemon, path, b):
    raw = b if isinstance(b, bytes) else None
    return daemon.request("POST", path, body=None if raw is not None else b, raw=raw)


def outcome(st, r):
    """(status, error code or what came instead) of an answer."""
    if isinstance(r, dict) and isinstance(r.get("error"), dict):
        return st, r["error"].get("code")
    if st in (200, 201):
        return st, "created"
    return st, "no JSON error: %.80r" % (r,)


def test_table_has_40_distinct_rows():
    names = [c[0] for c in CASES]
    assert len(names) == 40 and len(set(names)) == 40, len(names)


def test_agent_and_master_refuse_the_same_bodies_alike(master_factory, agent_factory):
    m = master_factory()
    a = agent_factory(flags=m.agent_flags())
    m.wait_agents(1)
    differ = []
    for name, b, want in CASES:
        got_a = outcome(*send(a, "/v1/containers", b))
        got_m = outcome(*send(m, "/v1/tasks", b))
        ok = (got_a[1] == got_m[1] == want and got_a[0] == got_m[0]
              and 400 <= got_a[0] < 500)
        if not ok:
            differ.append("%-26s agent %s %s, master %s %s (want %s)"
                          % (name, got_a[0], got_a[1], got_m[0], got_m[1], want))
        assert a.healthy() and m.healthy(), "a daemon stopped serving after %r" % name
    # a refused body leaves nothing behind; one accepted by mistake is ended here
    st, lst = a.get("/v1/containers")
    made = [c["id"] for c in lst["containers"]]
    tasks = [t["id"] for t in m.tasks()]
    a.kill_all()
    assert not differ, "%d of %d bodies are not refused alike with the row's code:\n  %s" % (
        len(differ), len(CASES), "\n  ".join(differ))
    assert not made and not tasks, "bad bodies made containers %s, tasks %s" % (made, tasks)
