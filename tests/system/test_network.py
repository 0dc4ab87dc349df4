# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_network.py - network modes (issue #15, docs/design/network.md): bridge
(lo up, an address of the subnet, its ports reached through the host's address from the
host itself, from another namespace and from another task; tasks reach each other by
address), none (nothing but lo), what a task in its own namespace cannot reach (the
agent's and a master's ports on the host, on 127.0.0.1 or any host address), its own
/etc/hosts, resolv.conf and hostname, and that nothing is left: after 100 bridge tasks,
after an agent SIGKILL at each networking fault point, after --recover=cleanup. Every
agent runs in a network namespace the test makes (nettest.py)."""

import os
import subprocess

import pytest

import berthtest as bt
from nettest import NET_POINTS, addrs_of, net_factory  # noqa: F401 (fixture)
from recoverytest import crash, start, wait_died


SERVE = "exec busybox nc -ll -p %s -e /bin/echo %s"


def bridge_task(a, name, port=8080, greeting="hi", **kw):
    c = a.launch(shell=SERVE % (port, greeting), name=name, network="bridge",
                 ports=[{"container_port": port}], **kw)
    return a.wait_state(c["id"], "RUNNING")


def in_task(a, cid, shell):
    """Run shell inside the task's sandbox (its namespaces) and return its stdout."""
    st, r = a.post("/v1/containers/%s/exec" % cid, {"shell": shell}, timeout=60 * bt.SLOW)
    assert st == 200, r
    return r["stdout"]


def wait_listening(a, cid, port):
    bt.wait_for(lambda: (":%d " % port) in in_task(a, cid, "ss -Hltn"), 10,
                what="the task to listen on %d" % port)


def test_bridge_task_network(net_factory):
    env = net_factory("[agent]\nnetwork = bridge\n")
    a = env.agent
    c = a.launch(shell="ip -o link; ip -o addr; ip route; echo host=$(hostname); sleep 600",
                 name="web-1")
    assert c["network"] == "bridge"  # the agent's default
    c = a.wait_state(c["id"], "RUNNING")
    out = bt.wait_for(lambda: (lambda o: o if "host=" in o else None)(a.output(c["id"])), 10,
                      what="the task's output")
    addrs, up = addrs_of(out)
    assert "lo" in up and "eth0" in up, out
    assert addrs["lo"] == ["127.0.0.1/8"], out
    assert addrs["eth0"] == [c["net"]["address"] + "/24"], out
    assert c["net"]["address"].startswith("198.18.%d." % env.n), c["net"]
    assert "default via %s dev eth0" % env.gateway in out, out
    assert "host=web-1" in out
    # its own /etc files (where the host has them to bind over)
    for path, want in (("/etc/hostname", "web-1\n"),
                       ("/etc/hosts", "%s\tweb-1\n" % c["net"]["address"])):
        if os.path.exists(path):
            assert want in in_task(a, c["id"], "cat " + path), path
    if os.path.exists("/etc/resolv.conf"):
        assert "berth: this sandbox's" in in_task(a, c["id"], "cat /etc/resolv.conf")
    # the host end of its veth, marked as its, on the bridge
    assert env.links() == {c["net"]["interface"]: "berth:" + c["id"]}
    ps = a.ctl("ps").stdout
    assert c["net"]["address"] in ps, ps


def test_bridge_ports_reachable(net_factory):
    """Issue #15 test 3: a server in a task is reached through its mapped host port from
    the host's own address, from a second namespace, and from another task (hairpin), and
    two tasks reach each other by address."""
    env = net_factory()
    a = env.agent
    one = bridge_task(a, "one", greeting="from-one")
    two = bridge_task(a, "two", greeting="from-two")
    wait_listening(a, one["id"], 8080)
    wait_listening(a, two["id"], 8080)
    hp = one["ports"][0]["host_port"]
    assert one["ports"][0]["container_port"] == 8080 and hp != 8080
    assert env.host.connect(env.uplink, hp) == "OK from-one"      # the host itself
    assert env.client.connect(env.uplink, hp) == "OK from-one"    # another host
    assert env.host.connect(env.gateway, hp) == "OK from-one"     # the bridge's address
    # task to task: by address, and through the other's mapped port on the host
    got = in_task(a, two["id"], "busybox nc -w 3 %s 8080 </dev/null" % one["net"]["address"])
    assert got.strip() == "from-one"
    got = in_task(a, two["id"], "busybox nc -w 3 %s %d </dev/null" % (env.uplink, hp))
    assert got.strip() == "from-one"
    # and itself, through its own mapping (hairpin on its bridge port)
    got = in_task(a, one["id"], "busybox nc -w 3 %s %d </dev/null" % (env.uplink, hp))
    assert got.strip() == "from-one"
    # the task reaches out through the host, masqueraded: the other host sees the host
    srv = env.client.serve_peer(7000)
    try:
        got = in_task(a, one["id"], "busybox nc -w 3 %s 7000 </dev/null" % env.client_addr)
        assert got.strip() == "peer=" + env.uplink, got
    finally:
        srv.kill()
        srv.wait()


def test_none_reaches_only_lo(net_factory):
    env = net_factory()
    a = env.agent
    c = a.launch(shell="ip -o link; ip -o addr; echo done=1; sleep 600", network="none")
    c = a.wait_state(c["id"], "RUNNING")
    out = a.wait_output(c["id"], "done") and a.output(c["id"])
    addrs, up = addrs_of(out)
    assert up == {"lo"} and set(addrs) == {"lo"}, out
    assert c["net"] is None and not c.get("ports")
    for addr in (env.uplink, env.gateway, env.client_addr):
        got = in_task(a, c["id"], "busybox nc -w 2 %s 22 </dev/null 2>&1; echo rc=$?" % addr)
        assert "rc=1" in got and "unreachable" in got.lower(), got


def test_task_cannot_reach_the_hosts_ports(net_factory):
    """Issue #15 test 4: a bridge or none task reaches neither the agent's TCP port on the
    host's 127.0.0.1 nor a master's port on any host address; replies of its own mappings
    still flow (test_bridge_ports_reachable)."""
    port = 39000 + os.getpid() % 1000
    env = net_factory(start=False)
    a = env.agent
    token = os.path.join(a.tmp, "api.token")
    with open(token, "w") as f:
        f.write("t" * 32)
    a.argv += ["--listen=unix:%s,tcp:127.0.0.1:%d" % (a.sock, port), "--api_token_file=" + token]
    a.start()
    # "the master": a listener on every address of the host's namespace
    master = subprocess.Popen(["ip", "netns", "exec", env.host.name, "busybox", "nc", "-ll", "-p",
                               str(port + 1), "-e", "/bin/echo", "master"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bt.wait_for(lambda: env.client.connect(env.uplink, port + 1) == "OK master", 10,
                    what="the stand-in master to listen")
        assert env.host.connect("127.0.0.1", port) == "OK"  # the agent's API is there
        for mode in ("bridge", "none"):
            c = a.launch(shell="sleep 600", network=mode)
            a.wait_state(c["id"], "RUNNING")
            for addr, p in (("127.0.0.1", port), ("127.0.0.1", port + 1),
                            (env.gateway, port + 1), (env.uplink, port + 1), (env.gateway, port),
                            (env.uplink, port)):
                got = in_task(a, c["id"], "busybox nc -w 2 %s %d </dev/null; echo rc=$?"
                              % (addr, p))
                assert "master" not in got and "rc=1" in got, (mode, addr, p, got)
    finally:
        master.kill()
        master.wait()


@pytest.mark.slow
def test_no_leak_after_100_bridge_tasks(net_factory):
    """Issue #15 test 5, first part: 100 bridge tasks with a port each end; no veth, no
    address, no mapping of theirs is left."""
    env = net_factory()
    a = env.agent
    n = 100 if bt.SLOW == 1 else 20
    ids = [a.launch(shell="exit 0", network="bridge", ports=1, cpus=0.01, mem="16MiB")["id"]
           for _ in range(n)]
    done = a.wait_all_terminal(ids, timeout=60)
    assert all(c["state"] == "FINISHED" for c in done.values()), done
    assert env.leaks() == []
    assert "berth0" in env.host.ip("-o", "link").stdout  # the bridge stays while we run


@pytest.mark.parametrize("point", sorted(NET_POINTS))
def test_net_fault_point(net_factory, point):
    """Issue #15 test 5: the agent dies at a networking fault point of a bridge launch (the
    2nd; the 1st is a bystander); after the restart the launch is gone with its veth and
    mapping, the bystander still serves, and --recover=cleanup then leaves nothing."""
    env = net_factory(start=False)
    a = env.agent
    start(a, fault=point + ":2")
    by = bridge_task(a, "bystander", greeting="still-here")
    try:
        a.post("/v1/containers", {"command": {"shell": "sleep 600"}, "name": "target",
                                  "network": "bridge", "ports": 1,
                                  "resources": {"cpus": 0.1, "mem": "32MiB"}})
    except OSError:
        pass
    wait_died(a)
    start(a)
    got = {c["name"]: c for c in a.get("/v1/containers")[1]["containers"]}
    assert "target" not in got and got["bystander"]["state"] == "RUNNING", got
    assert env.links() == {by["net"]["interface"]: "berth:" + by["id"]}, env.links()
    hp = by["ports"][0]["host_port"]
    assert env.mappings() == ["%s . %d : %s . 8080" % (proto, hp, by["net"]["address"])
                              for proto in ("tcp", "udp")], env.mappings()
    wait_listening(a, by["id"], 8080)
    assert env.client.connect(env.uplink, hp) == "OK still-here"
    # cleanup: every task killed, nothing of ours left in the namespace
    a.stop()
    start(a, extra=["--recover=cleanup"])
    assert env.links() == {}
    assert "table inet berth" not in env.ruleset()
    assert "berth0" not in env.host.ip("-o", "link").stdout


def test_restart_keeps_mappings(net_factory):
    """SIGKILL the agent: the task keeps serving (its namespace and veth are the
    executor's); the restarted agent rebuilds the table from the records, dropping a mapping
    nobody owns; the end of the task then removes its veth and mapping."""
    env = net_factory()
    a = env.agent
    c = bridge_task(a, "web")
    wait_listening(a, c["id"], 8080)
    hp = c["ports"][0]["host_port"]
    crash(a)
    assert env.client.connect(env.uplink, hp) == "OK hi"  # the agent is down
    env.host.run("nft", "add", "element", "inet", "berth", "ports",
                 "{ tcp . 31999 : 198.18.%d.99 . 80 }" % env.n)
    start(a)
    assert len(env.mappings()) == 2 and all(" %d : " % hp in m for m in env.mappings())
    recovered = [l for l in a.log.splitlines() if "recovered" in l][-1]
    assert "1 re-adopted" in recovered and "1 port mapping(s)" in recovered, recovered
    assert env.client.connect(env.uplink, hp) == "OK hi"
    a.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL"})
    a.wait_terminal(c["id"])
    assert env.links() == {} and env.mappings() == []


def test_host_network_refused_when_not_allowed(net_factory):
    env = net_factory("[agent]\nnetwork = none\nallow_host_network = false\n")
    a = env.agent
    st, err = a.post("/v1/containers", {"command": {"shell": "true"}, "network": "host",
                                        "resources": {"cpus": 0.1, "mem": "32MiB"}})
    assert st == 403 and err["error"]["message"].startswith("network: host is not allowed"), err
    c = a.launch(shell="true")
    assert c["network"] == "none"
    # the agent refuses to start with a default it does not allow
    bad = net_factory("[agent]\nnetwork = host\nallow_host_network = false\n", start=False)
    r = subprocess.run(bad.agent.argv, capture_output=True, text=True, timeout=30 * bt.SLOW)
    assert r.returncode == 1 and "allow_host_network = false" in r.stderr, r.stderr


def test_linked_libraries():
    """Issue #15 test 7, first part: the agent does its networking through libnl-route (links,
    addresses, routes), libnl-idiag (enforce_ports) and libnftables (the table); the executor,
    pid 1 of every sandbox, links none of them (docs/design/network.md)."""
    libs = {}
    for name, path in (("agent", bt.AGENT_BIN), ("executor", bt.EXECUTOR_BIN)):
        r = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30)
        # a static executor: "not a dynamic executable" (exit 1), and then it links nothing
        libs[name] = r.stdout
    for lib in ("libnl-route-3", "libnl-idiag-3", "libnl-3", "libnftables"):
        assert lib in libs["agent"], libs["agent"]
        assert lib not in libs["executor"], libs["executor"]


def test_bridge_launch_fails_cleanly(net_factory):
    """The network cannot be made (a link named like the bridge that is not one): the launch
    fails saying why, its executor (waiting for the go in the supervisor cgroup) is killed
    and reaped, no veth or mapping is left, and the agent launches host tasks still."""
    env = net_factory()
    a = env.agent
    env.host.ip("link", "add", "berth0", "type", "veth", "peer", "name", "berth0p")
    st, c = a.post("/v1/containers", {"command": {"shell": "sleep 600"}, "network": "bridge",
                                      "ports": 1, "resources": {"cpus": 0.1, "mem": "32MiB"}})
    if st == 201:
        c = a.wait_terminal(c["id"], timeout=10)
        assert (c["state"], c["reason"]) == ("FAILED", "LAUNCH_FAILED"), c
        msg = c["message"]
    else:
        msg = c["error"]["message"]
    assert "'berth0' exists and is not a bridge" in msg, (st, c)

    def executors():
        out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        return [l for l in out.splitlines()
                if l.split()[1].endswith("berth-executor") and a.work in l]
    bt.wait_for(lambda: not executors(), 10, what="the executor to be gone")
    assert set(env.links()) == {"berth0", "berth0p"} and env.mappings() == []
    assert a.get("/v1/node")[1]["resources"]["allocated"]["ports"] == 0
    c = a.launch(shell="true", network="host")
    assert a.wait_terminal(c["id"])["state"] == "FINISHED"
    env.host.ip("link", "del", "berth0")  # not ours: the leak check would count it
