"""tests/system/test_cli.py - berthctl's everyday verbs against a real agent: logs (stdout,
stderr, --tail, -f following until the end), exec inside the sandbox, ps / inspect / rm,
ids by unique prefix and by name, node."""

import json
import os
import subprocess
import time

import berthtest as bt


def test_logs(agent):
    c = agent.launch(["/bin/sh", "-c", "echo out1; echo err1 >&2; echo out2"])
    agent.wait_terminal(c["id"])
    r = agent.ctl("logs", c["id"])
    assert r.returncode == 0 and r.stdout == "out1\nout2\n", r
    r = agent.ctl("logs", "--stderr", c["id"])
    assert r.returncode == 0 and r.stdout == "err1\n", r
    r = agent.ctl("logs", "--tail", "1", c["id"])
    assert r.returncode == 0 and r.stdout == "out2\n", r
    st, text = agent.get("/v1/containers/%s/logs?stream=stdout&tail=1" % c["id"])
    assert st == 200 and text == "out2\n", (st, text)


def test_logs_follow_until_end(agent):
    c = agent.launch(["/bin/sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 0.4; done"])
    t0 = time.monotonic()
    p = subprocess.Popen([bt.CTL_BIN, "--socket", agent.sock, "logs", "-f", c["id"]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first == "line1\n", first
        assert time.monotonic() - t0 < 1.2 * bt.SLOW, "the first line came only at the end"
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert first + out == "line1\nline2\nline3\nline4\n"
    assert agent.inspect(c["id"])["state"] == "FINISHED"


def test_exec_runs_inside(agent):
    c = agent.launch(["/bin/sh", "-c", "%s hostname; exec sleep 30" % bt.PROBE])
    agent.wait_output(c["id"], "hostname")
    agent.wait_state(c["id"], "RUNNING")
    task_host = bt.parse_kv(agent.output(c["id"]))["hostname"]
    r = agent.ctl("exec", c["id"], "--", bt.PROBE, "hostname", timeout=20)
    assert r.returncode == 0, r
    assert bt.parse_kv(r.stdout)["hostname"] == task_host
    r = agent.ctl("exec", c["id"], "--", bt.PROBE, "ps", timeout=20)
    assert r.returncode == 0, r
    kv = bt.parse_kv(r.stdout)
    pids = {int(p) for p in kv["pids"].split(",")}
    assert 1 in pids and len(pids) <= 4, "exec sees pids %s (not the sandbox's)" % sorted(pids)
    r = agent.ctl("exec", c["id"], "--", "/bin/sh", "-c", "exit 7", timeout=20)
    assert r.returncode == 7, r
    # exec'd processes are in the container's cgroup and gone afterwards
    assert all(bt.proc_comm(p) in ("berth-executor", "sleep") for p in agent.procs(c["id"]))


def test_ps_inspect_rm_prefix_name(agent):
    run = agent.launch(["sleep", "30"], name="sleeper")
    done = agent.launch(["true"], name="quick")
    agent.wait_state(run["id"], "RUNNING")
    agent.wait_terminal(done["id"])

    r = agent.ctl("ps")
    assert r.returncode == 0, r
    assert run["id"][:12] in r.stdout and "sleeper" in r.stdout
    assert "quick" not in r.stdout, "ps without -a lists an ended container"
    for col in ("ID", "NAME", "STATE", "CPUS", "MEM"):
        assert col in r.stdout.splitlines()[0]
    r = agent.ctl("ps", "-a")
    assert "quick" in r.stdout and "sleeper" in r.stdout, r.stdout
    r = agent.ctl("ps", "-a", "-o", "json")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    items = data["containers"] if isinstance(data, dict) else data
    assert {c["name"] for c in items} >= {"sleeper", "quick"}

    for ref in (run["id"], run["id"][:6], "sleeper"):
        r = agent.ctl("inspect", ref)
        assert r.returncode == 0, (ref, r)
        assert json.loads(r.stdout)["id"] == run["id"]
    st, c = agent.get("/v1/containers/" + run["id"][:5])
    assert st == 200 and c["id"] == run["id"]

    # rm: a running container is refused, an ended one removed with its sandbox
    r = agent.ctl("rm", "sleeper")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r
    sandbox = agent.sandbox(done["id"])
    assert os.path.isdir(sandbox)
    r = agent.ctl("rm", "quick")
    assert r.returncode == 0, r
    assert not os.path.exists(sandbox), "rm left the sandbox dir"
    st, _ = agent.get("/v1/containers/" + done["id"])
    assert st == 404
    # duplicate name refused
    st, err = agent.post("/v1/containers", {"name": "sleeper", "command": {"argv": ["true"]},
                                            "resources": {"cpus": 0.25, "mem": "32MiB"}})
    assert st == 409, (st, err)


def test_node_and_stats(agent):
    st, node = agent.get("/v1/node")
    assert st == 200, node
    res = node["resources"]
    assert float(res["total"]["cpus"]) == 4          # from BASE_CONF
    assert float(res["allocatable"]["cpus"]) == 4
    assert int(res["total"]["mem"]) - int(res["reserved"]["mem"]) == int(res["allocatable"]["mem"])
    c = agent.launch(["sleep", "30"], cpus=1, mem="128MiB")
    agent.wait_state(c["id"], "RUNNING")
    st, node = agent.get("/v1/node")
    assert float(node["resources"]["allocated"]["cpus"]) == 1
    assert int(node["resources"]["allocated"]["mem"]) == 128 << 20
    r = agent.ctl("node")
    assert r.returncode == 0 and "cpus" in r.stdout.lower(), r
    st, s = agent.get("/v1/containers/%s/stats" % c["id"])
    assert st == 200 and s["usage"]["pids"] >= 1, s
    r = agent.ctl("stats", c["id"])
    assert r.returncode == 0, r
    st, text = agent.get("/metrics")
    assert st == 200 and "berth_container_memory_usage_bytes" in text
