# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_ports.py - ports as a real resource (issue #15, docs/design/network.md):
PORT0.. in the task, counted by `berthctl node` while it runs and not after; a range's
worth of one-port tasks, every port once (checked against `ss -ltn` for those that
listen), the next refused naming ports; kept across an agent SIGKILL and never handed out
again while held; enforce_ports killing a task that listens on a port it was not given.
Each agent runs in a network namespace of its own (nettest.py): the tasks here are on the
host's network, which is then that namespace, never the machine's."""

import json
import os
import re
import time

import pytest

import berthtest as bt
from nettest import net_factory  # noqa: F401 (fixture)
from recoverytest import crash, start

RANGE = "[31000-31004]"


def node_ports(a):
    st, node = a.get("/v1/node")
    assert st == 200, node
    return node["resources"]["allocated"]["ports"], node["ports_allocated"]


def test_ports_in_env_and_counted(net_factory):
    env = net_factory("[resources]\nports = %s\n" % RANGE)
    a = env.agent
    r = a.ctl("run", "--ports", "2", "--cpus", "0.1", "--mem", "32MiB", "--wait", "-o", "json",
              "--", "sh", "-c", "echo $PORT0 $PORT1 $PORTS")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["state"] == "FINISHED", done
    r = a.ctl("logs", done["id"])
    p0, p1, ports = r.stdout.split()
    assert p0 != p1 and 31000 <= int(p0) <= 31004 and 31000 <= int(p1) <= 31004, r.stdout
    assert ports == "%s,%s" % (p0, p1)
    assert node_ports(a) == (0, "[]")  # it ended: its ports are free
    r = a.ctl("run", "--ports", "2", "--cpus", "0.1", "--mem", "32MiB", "--name", "holder", "--",
              "sleep", "600")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    c = a.wait_state(cid, "RUNNING")
    held = [p["host_port"] for p in c["ports"]]
    assert len(set(held)) == 2 and all(p["container_port"] == p["host_port"] for p in c["ports"])
    assert node_ports(a)[0] == 2
    out = a.ctl("node").stdout
    assert re.search(r"^ports +5 +0 +5 +2 ", out, re.M), out
    assert re.search(r"^ports: +2 allocated \[\d+-\d+.*\], 3 free of \[31000-31004\]$", out,
                     re.M), out
    ps = a.ctl("ps").stdout
    assert "PORTS" in ps.splitlines()[0] and "%d,%d" % tuple(held) in ps, ps
    # three free, four asked: refused naming ports, nothing kept
    st, err = a.post("/v1/containers", {"command": {"shell": "true"}, "ports": 4,
                                        "resources": {"cpus": 0.1, "mem": "32MiB"}})
    assert st == 409 and err["error"]["code"] == "INSUFFICIENT_RESOURCES", err
    assert err["error"]["message"].startswith("ports: asked 4, 3 free"), err
    # a number it holds, and one outside the ranges
    for port, why in ((held[0], "held by another task"), (80, "not in")):
        st, err = a.post("/v1/containers", {"command": {"shell": "true"},
                                            "ports": [{"host_port": port}],
                                            "resources": {"cpus": 0.1, "mem": "32MiB"}})
        assert st == 409 and why in err["error"]["message"], err
    a.post("/v1/containers/%s/kill" % cid, {"signal": "KILL"})
    a.wait_terminal(cid)
    assert node_ports(a) == (0, "[]")
    assert re.search(r"^ports: +0 allocated \[\], 5 free", a.ctl("node").stdout, re.M)


def test_named_ports_and_their_env(net_factory):
    env = net_factory("[resources]\nports = %s\n" % RANGE)
    a = env.agent
    c = a.launch(shell="echo PORT_WEB=$PORT_WEB; echo HOST_PORT1=$HOST_PORT1; echo PORT0=$PORT0; "
                       "sleep 600",
                 ports=[{"name": "web", "host_port": 31003}, {}])
    kv = a.wait_output(c["id"], "PORT0")
    assert kv["PORT0"] == kv["PORT_WEB"] == "31003"
    assert kv["HOST_PORT1"] != "31003"
    got = a.inspect(c["id"])["ports"]
    assert got[0] == {"name": "web", "host_port": 31003, "container_port": 31003}
    # the host's network: a task listens on its host port, there is no mapping
    a.launch(shell="true", ports=[{"host_port": 31000, "container_port": 80}], expect=400)
    a.launch(shell="true", ports=1, network="none", expect=400)


def listening(env):
    """{port: count} of the TCP ports listening in the agent's namespace (ss -ltn)."""
    out = env.host.run("ss", "-Hltn").stdout
    ports = {}
    for line in out.splitlines():
        m = re.search(r":(\d+)\s", line.split(None, 4)[3] + " ")
        if m:
            ports[int(m.group(1))] = ports.get(int(m.group(1)), 0) + 1
    return ports


@pytest.mark.slow
def test_a_range_of_one_port_tasks(net_factory):
    """Issue #15 test 2: 1,001 one-port tasks on a 1,001-port range (101 under emulation);
    every 10th listens on its port. All RUNNING, no port twice (the records and ss -ltn),
    the next refused naming ports. SIGKILL the agent, restart it: every task keeps its
    ports, and new tasks only ever get the ports of tasks that ended."""
    n = 1001 if bt.SLOW == 1 else 101
    env = net_factory("[resources]\nports = [40000-%d]\n" % (40000 + n - 1))
    a = env.agent
    ids = []
    for i in range(n):
        cmd = "exec busybox nc -ll -p $PORT0 -e /bin/echo hi" if i % 10 == 0 else "exec sleep 3600"
        st, c = a.post("/v1/containers", {"command": {"shell": cmd}, "ports": 1,
                                          "resources": {"cpus": 0.001, "mem": "16MiB", "pids": 8}})
        assert st == 201, (i, c)
        ids.append(c["id"])
    st, err = a.post("/v1/containers", {"command": {"shell": "true"}, "ports": 1,
                                        "resources": {"cpus": 0.001, "mem": "16MiB", "pids": 8}})
    assert st == 409 and err["error"]["message"].startswith("ports: asked 1, 0 free"), err

    def all_running():
        st, body = a.get("/v1/containers")
        cs = [c for c in body["containers"] if c["id"] in ids]
        return cs if all(c["state"] == "RUNNING" for c in cs) else None
    cs = bt.wait_for(all_running, 120, interval=0.5, what="%d tasks RUNNING" % n)
    port_of = {c["id"]: c["ports"][0]["host_port"] for c in cs}
    assert sorted(port_of.values()) == list(range(40000, 40000 + n))
    listeners = [port_of[i] for k, i in enumerate(ids) if k % 10 == 0]
    ls = bt.wait_for(lambda: (lambda l: l if all(p in l for p in listeners) else None)(
        listening(env)), 30, what="the listeners in ss -ltn")
    assert all(ls[p] == 1 for p in listeners), ls
    assert env.host.connect(env.uplink, listeners[-1]) == "OK hi"

    crash(a)
    start(a)
    got = {c["id"]: c for c in a.get("/v1/containers")[1]["containers"]}
    assert all(got[i]["state"] == "RUNNING" and got[i]["ports"][0]["host_port"] == port_of[i]
               for i in ids), "a task lost its port across the restart"
    assert a.get("/v1/node")[1]["resources"]["allocated"]["ports"] == n
    st, err = a.post("/v1/containers", {"command": {"shell": "true"}, "ports": 1,
                                        "resources": {"cpus": 0.001, "mem": "16MiB"}})
    assert st == 409, "a port was handed out twice after the restart: %s" % err
    # five end; five new tasks get exactly their ports
    freed = ids[1:6]
    for cid in freed:
        a.post("/v1/containers/%s/kill" % cid, {"signal": "KILL"})
    a.wait_all_terminal(freed, timeout=30)
    new = set()
    for _ in freed:
        c = a.launch(shell="sleep 3600", ports=1, cpus=0.001, mem="16MiB", pids=8)
        new.add(c["ports"][0]["host_port"])
    assert new == {port_of[i] for i in freed}
    a.kill_all(timeout=120)


@pytest.mark.parametrize("own", [False, True], ids=["foreign-port", "own-port"])
def test_enforce_ports(net_factory, own):
    """Issue #15 test 6: with enforce_ports on (host network), a task listening on a port it
    was not given is KILLED/PORTS_LIMITATION within the watch interval + 1 s; one listening
    on its own is not."""
    interval = 0.5
    env = net_factory("[agent]\nenforce_ports = true\nenforce_ports_interval = 500ms\n"
                      "[resources]\nports = %s\n" % RANGE)
    a = env.agent
    port = "$PORT0" if own else "45678"
    c = a.launch(shell="echo up=1; exec busybox nc -ll -p %s -e /bin/echo hi" % port, ports=1)
    a.wait_state(c["id"], "RUNNING")
    target = c["ports"][0]["host_port"] if own else 45678
    # under emulation the watch may kill it before ss sees it listen: then took is shorter
    bt.wait_for(lambda: target in listening(env) or
                (not own and a.inspect(c["id"])["state"] == "KILLED"), 10,
                what="the task to listen")
    seen = time.monotonic()
    if own:
        time.sleep(3 * interval * bt.SLOW)  # three watch passes
        assert a.inspect(c["id"])["state"] == "RUNNING"
        assert env.host.connect(env.uplink, target) == "OK hi"
        return
    end = a.wait_terminal(c["id"], timeout=interval + 1 + 1)
    took = time.monotonic() - seen
    assert (end["state"], end["reason"]) == ("KILLED", "PORTS_LIMITATION"), end
    assert "listened on TCP port 45678, which is not among its ports" in end["message"], end
    assert took <= (interval + 1) * bt.SLOW + 0.5, took
    # the ending survives a restart (it is in the record)
    crash(a)
    start(a)
    assert a.inspect(c["id"])["reason"] == "PORTS_LIMITATION"
    assert os.path.exists(os.path.join(a.work, "state.db"))
