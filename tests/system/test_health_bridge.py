# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_health_bridge.py - issue #16's health checks on tasks in bridge mode
(issue #15): the task has a network namespace of its own on the agent's bridge, its port
mapped from a host port, and the agent's HTTP and TCP checks connect from inside that
namespace (health.c's setns around the socket) to the task's own 127.0.0.1 and its
container port (port_index follows PORT0 there, not the host port). Healthy is reported;
a server that starts answering 500, or a port nothing listens on in the task's namespace
(while the agent's own namespace does listen on that number), gets the task KILLED with
HEALTH_CHECK_FAILED. Every agent runs in a network namespace the test makes (nettest.py)."""

import os
import subprocess

import berthtest as bt
from nettest import net_factory  # noqa: F401 (fixture)
from test_health import SERVER, TCP_SERVER, wait_health

PY = "/usr/bin/python3"


def launch(a, argv, hc, port=8080, **kw):
    """A bridge task with one port (container_port `port`) and the health check hc."""
    c = a.launch(argv, network="bridge", ports=[{"container_port": port}], health_check=hc,
                 mem="128MiB", **kw)
    return c


def test_http_check_in_bridge_mode(net_factory):
    env = net_factory()
    a = env.agent
    hc = {"type": "http", "path": "/health", "port_index": 0, "interval": 0.2, "timeout": 2,
          "grace": 60, "consecutive_failures": 3}
    c = launch(a, [PY, "-c", SERVER, "8080", "0"], hc)
    cid = c["id"]
    assert c["network"] == "bridge"
    c = wait_health(a, cid, True, timeout=60)
    host_port = c["ports"][0]["host_port"]
    assert host_port != 8080 and c["ports"][0]["container_port"] == 8080, c["ports"]
    # the check went to the container port inside the task's namespace
    assert c["health"]["last_result"] == "GET /health: HTTP 200", c["health"]
    assert c["health"]["consecutive_failures"] == 0
    # nothing listens on 8080 in the agent's own namespace: only inside could it pass
    assert env.host.connect("127.0.0.1", 8080, timeout=1).startswith("ERR"), "host listens"
    # the server listens on the task's 127.0.0.1 alone: its mapped port reaches nothing from
    # another host, the check from inside reaches it all the same
    assert env.client.connect(env.uplink, host_port).startswith("ERR")
    # it starts answering 500: unhealthy, then killed after three failures in a row
    with open(os.path.join(a.sandbox(cid), "fail"), "w"):
        pass
    c = wait_health(a, cid, False, timeout=30)
    assert "HTTP 500" in c["health"]["last_result"], c["health"]
    end = a.wait_terminal(cid, timeout=30)
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    assert "http health check failed 3 times in a row" in end["message"], end
    assert "HTTP 500" in end["message"], end


def test_tcp_check_in_bridge_mode(net_factory):
    env = net_factory()
    a = env.agent
    # a TCP server on the task's own 127.0.0.1:8080, checked by port_index (its PORT0)
    hc = {"type": "tcp", "port_index": 0, "interval": 0.2, "timeout": 1, "grace": 60,
          "consecutive_failures": 2}
    ok = launch(a, [PY, "-c", TCP_SERVER, "8080"], hc)
    c = wait_health(a, ok["id"], True, timeout=60)
    assert c["health"]["last_result"] == "port 8080 accepted a connection", c["health"]

    # the agent's namespace listens on 9090, the task's does not: the check, made from
    # inside the task's namespace, is refused and the task killed
    listener = subprocess.Popen(["ip", "netns", "exec", env.host.name, PY, "-c", TCP_SERVER,
                                 "9090"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bt.wait_for(lambda: env.host.connect("127.0.0.1", 9090, timeout=1).startswith("OK"), 20,
                    what="the listener in the agent's namespace")
        bad = launch(a, ["sleep", "1000"], {"type": "tcp", "port": 9090, "interval": 0.2,
                                            "grace": 0, "consecutive_failures": 2}, port=9090)
        end = a.wait_terminal(bad["id"], timeout=30)
    finally:
        listener.kill()
        listener.wait()
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    assert "connect to port 9090: Connection refused" in end["message"], end
    assert "accepted" not in end["message"], end
    # the healthy one is untouched
    c = a.inspect(ok["id"])
    assert c["state"] == "RUNNING" and c["healthy"] is True, c


def test_checks_resume_in_the_tasks_namespace_after_an_agent_crash(net_factory):
    """A SIGKILLed agent re-adopts the task and checks it again from inside its namespace
    (the namespace is found anew from the re-adopted executor), in bridge and none mode."""
    env = net_factory()
    a = env.agent
    hc = {"type": "http", "port_index": 0, "interval": 0.2, "grace": 60,
          "consecutive_failures": 2}
    bridge = launch(a, [PY, "-c", SERVER, "8080", "0"], hc)
    none = a.launch([PY, "-c", SERVER, "8081", "0"], network="none",
                    health_check={"type": "http", "port": 8081, "interval": 0.2, "grace": 60,
                                  "consecutive_failures": 2}, mem="128MiB")
    for c in (bridge, none):
        wait_health(a, c["id"], True, timeout=60)
    a.proc.kill()
    a.proc.wait(10)
    a.start()
    for c in (bridge, none):
        c = wait_health(a, c["id"], True, timeout=60)  # unknown after the restart, then again
        assert "HTTP 200" in c["health"]["last_result"], c["health"]
    for c in (bridge, none):
        with open(os.path.join(a.sandbox(c["id"]), "fail"), "w"):
            pass
    for c in (bridge, none):
        end = a.wait_terminal(c["id"], timeout=30)
        assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
        assert "HTTP 500" in end["message"], end
