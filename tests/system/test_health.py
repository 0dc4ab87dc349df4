# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_health.py - issue #16's health checks, run by the agent for any task:
the issue's must-show item 5 (an HTTP server that first answers at 8 s with a 10 s grace is
not killed; once it answers 500 it is KILLED with HEALTH_CHECK_FAILED after its allowed
failures), TCP checks (pass; a closed port kills), COMMAND checks (inside the task's pid
namespace and cgroup; a command that hangs times out), a check from inside the task's own
network namespace, `healthy` in inspect, ps, metrics and the master's view, and bad
health_check specs refused with a JSON error naming the field (the agent's and the master's
API alike). Every wait is on an observable state; nothing sleeps."""

import os
import re
import socket
import subprocess

import pytest

import berthtest as bt

# An HTTP server for the tasks: listens on 127.0.0.1:PORT only after DELAY seconds, then
# answers 200, or 500 once a file named "fail" exists in its cwd (the sandbox dir, which the
# test writes from the host).
SERVER = r"""
import http.server, os, sys, time
port, delay = int(sys.argv[1]), float(sys.argv[2])
# first answer `delay` s after the exec, however long python took to start (a TCG guest)
stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
started = int(stat[19]) / os.sysconf("SC_CLK_TCK")
time.sleep(max(0.0, delay - (time.clock_gettime(time.CLOCK_BOOTTIME) - started)))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists("fail") else 200
        self.send_response(code)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""

# A TCP server that accepts and closes.
TCP_SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    s.accept()[0].close()
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def server_argv(port, delay=0):
    return ["/usr/bin/python3", "-c", SERVER, str(port), str(delay)]


def wait_health(agent, cid, want, timeout=30):
    def ok():
        c = agent.inspect(cid)
        assert c["state"] not in bt.TERMINAL, "ended: %r" % c
        return c if c.get("healthy") is want else None
    return bt.wait_for(ok, timeout, interval=0.1, what="%s healthy=%r" % (cid, want))


def metric(agent, name, cid):
    st, text = agent.get("/metrics")
    assert st == 200
    m = re.search(r'^%s\{id="%s",[^}]*\} (\S+)$' % (name, cid), text, re.M)
    return float(m.group(1)) if m else None


def ps_state(agent, cid):
    r = agent.ctl("ps")
    assert r.returncode == 0, r.stderr
    for line in r.stdout.splitlines():
        if line.startswith(cid[:12]):
            return line
    raise AssertionError("%s not in ps: %s" % (cid, r.stdout))


@pytest.mark.slow
def test_slow_starter_survives_its_grace_and_a_500_kills_it(agent):
    """Must-show item 5: first answer at 8 s, grace 10 s: not killed; then 500: KILLED with
    HEALTH_CHECK_FAILED after consecutive_failures failed checks."""
    port = free_port()
    hc = {"type": "http", "path": "/health", "port": port, "interval": 1, "timeout": 1,
          "grace": 10, "consecutive_failures": 3}
    c = agent.launch(server_argv(port, 8), health_check=hc, cpus=1, mem="128MiB")
    cid = c["id"]
    assert c["health_check"]["grace"] == 10 and c["health_check"]["path"] == "/health"
    agent.wait_state(cid, "RUNNING")
    c = agent.inspect(cid)
    assert c["healthy"] is None  # no verdict yet: the grace is on
    c = wait_health(agent, cid, True, timeout=40)
    # the checks before 8 s failed (connection refused) and none counted: the grace
    assert c["state"] == "RUNNING"
    assert c["health"]["checks"] >= 4, c["health"]
    assert c["health"]["consecutive_failures"] == 0
    assert "HTTP 200" in c["health"]["last_result"]
    assert "RUNNING (healthy)" in ps_state(agent, cid)
    assert metric(agent, "berth_container_healthy", cid) == 1
    # it starts answering 500
    with open(os.path.join(agent.sandbox(cid), "fail"), "w"):
        pass
    unhealthy = wait_health(agent, cid, False)
    assert unhealthy["health"]["consecutive_failures"] >= 1
    end = agent.wait_terminal(cid, timeout=30)
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    assert "http health check failed 3 times in a row" in end["message"], end
    assert "HTTP 500" in end["message"], end
    assert end["health"]["consecutive_failures"] == 3
    r = agent.ctl("ps", "-a")
    assert "HEALTH_CHECK_FAILED" in r.stdout or "KILLED" in r.stdout, r.stdout


def test_http_server_past_its_grace_is_killed(agent):
    """The grace protects slow starters only for as long as it lasts."""
    port = free_port()
    hc = {"type": "http", "port": port, "interval": 0.2, "timeout": 0.5, "grace": 0.5,
          "consecutive_failures": 2}
    c = agent.launch(["sleep", "1000"], health_check=hc)
    end = agent.wait_terminal(c["id"], timeout=30)
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    assert "no answer" in end["message"], end


def test_tcp_check_passes_and_a_closed_port_kills(agent):
    port = free_port()
    hc = {"type": "tcp", "port": port, "interval": 0.2, "timeout": 1, "grace": 30,
          "consecutive_failures": 2}
    ok = agent.launch(["/usr/bin/python3", "-c", TCP_SERVER, str(port)], health_check=hc)
    c = wait_health(agent, ok["id"], True)
    assert "accepted a connection" in c["health"]["last_result"]
    closed = free_port()
    bad = agent.launch(["sleep", "1000"],
                       health_check={"type": "tcp", "port": closed, "interval": 0.2,
                                     "grace": 0, "consecutive_failures": 2})
    end = agent.wait_terminal(bad["id"], timeout=30)
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    assert "Connection refused" in end["message"], end
    # the passing one is untouched
    assert agent.inspect(ok["id"])["state"] == "RUNNING"
    assert metric(agent, "berth_container_healthy", ok["id"]) == 1


def test_command_check_runs_inside_the_task_and_follows_it(agent):
    """A COMMAND check runs in the task's pid namespace and cgroup, in its sandbox dir; it
    is unhealthy until the file it tests exists."""
    cmd = {"shell": "readlink /proc/self/ns/pid > hc.ns; cat /proc/self/cgroup > hc.cg; "
                    "test -e ok"}
    # the check's timeout is a latency bound, scaled like the suite's: a TCG VM beside other
    # work once took over 5 s for this shell (2026-12-07, v1 and v2 alike)
    c = agent.launch(["sleep", "1000"],
                     health_check={"type": "command", "command": cmd, "interval": 0.3,
                                   "timeout": 5 * bt.SLOW, "grace": 0,
                                   "consecutive_failures": 1000})
    cid = c["id"]
    c = wait_health(agent, cid, False)
    assert "exited 1" in c["health"]["last_result"]
    sandbox = agent.sandbox(cid)
    executor_pid = c["pid"]
    assert bt.read(os.path.join(sandbox, "hc.ns")).strip() == \
        os.readlink("/proc/%d/ns/pid" % executor_pid)
    assert cid in bt.read(os.path.join(sandbox, "hc.cg"))
    with open(os.path.join(sandbox, "ok"), "w"):
        pass
    c = wait_health(agent, cid, True)
    assert c["health"]["consecutive_failures"] == 0
    assert "RUNNING (healthy)" in ps_state(agent, cid)


def test_command_check_that_hangs_times_out(agent):
    c = agent.launch(["sleep", "1000"],
                     health_check={"type": "command", "command": {"argv": ["sleep", "1000"]},
                                   "interval": 0.5, "timeout": 0.2, "grace": 0,
                                   "consecutive_failures": 2})
    end = agent.wait_terminal(c["id"], timeout=30)
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    assert "timed out" in end["message"], end


NET_ISOLATION = ("--isolation=cgroups/cpu,cgroups/mem,cgroups/pids,namespaces/pid,"
                 "namespaces/mount,namespaces/net,filesystem/readonly-host")


def test_check_connects_from_inside_the_tasks_network_namespace(agent_factory):
    """A task with a network namespace of its own is checked there, not on the host: a port
    the host listens on is not the task's, so its check fails and kills it."""
    a = agent_factory(flags=[NET_ISOLATION])
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen(16)
    try:
        c = a.launch(["sleep", "1000"],
                     health_check={"type": "tcp", "port": host.getsockname()[1],
                                   "interval": 0.2, "grace": 0, "consecutive_failures": 2})
        end = a.wait_terminal(c["id"], timeout=30)
    finally:
        host.close()
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    assert "accepted" not in end["message"], end


def test_http_check_reaches_a_server_in_the_tasks_network_namespace(agent_factory):
    """The task's 127.0.0.1 is its own: the agent's check reaches its server there (setns
    around the socket), while the host's port stays closed."""
    a = agent_factory(flags=[NET_ISOLATION])
    port = free_port()
    c = a.launch(server_argv(port), mem="128MiB",
                 health_check={"type": "http", "port": port, "interval": 0.2, "grace": 60})
    cid = c["id"]
    netns = ["nsenter", "--net=/proc/%d/ns/net" % c["pid"], "ip"]
    lo = subprocess.run(netns + ["-o", "link", "show", "lo"], capture_output=True, text=True)
    if ",UP" not in lo.stdout:
        # before issue #15's networking the executor leaves the task's loopback down, and
        # nothing there can be reached, not even from inside: bring it up in that namespace
        # (the agent made it for this test; the host's network is not touched)
        subprocess.run(netns + ["link", "set", "lo", "up"], check=True)
    wait_health(a, cid, True)
    s = socket.socket()
    try:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the task listens in the host's network"
    finally:
        s.close()


def test_port_index_names_the_port_the_agent_assigned(agent):
    """port_index: the check follows the port the agent gave the task (PORT0), by index."""
    st, c = agent.post("/v1/containers", {
        "command": {"shell": "exec /usr/bin/python3 -c '%s' \"$PORT0\" 0" % SERVER},
        "resources": {"cpus": 0.25, "mem": "128MiB"}, "ports": 1,
        "health_check": {"type": "http", "port_index": 0, "interval": 0.2, "grace": 30}})
    if st == 400 and "not supported by this agent yet" in c["error"]["message"]:
        pytest.skip("this build's agent hands out no ports yet (issue #15)")
    assert st == 201, (st, c)
    agent.note(c)
    c = wait_health(agent, c["id"], True)
    assert c["ports"][0]["host_port"] > 0 and c["health"]["last_result"] == "GET /: HTTP 200"


def test_checks_resume_after_an_agent_restart(agent):
    port = free_port()
    # a grace, so a server slow to listen (0.25 CPU in a TCG guest) is not killed before its
    # first answer; the first success ends it, before and again after the restart
    c = agent.launch(server_argv(port), mem="128MiB",
                     health_check={"type": "http", "port": port, "interval": 0.2,
                                   "grace": 60, "consecutive_failures": 2})
    cid = c["id"]
    wait_health(agent, cid, True)
    agent.stop()
    agent.start()
    wait_health(agent, cid, True)  # unknown after the restart, then checked again
    with open(os.path.join(agent.sandbox(cid), "fail"), "w"):
        pass
    end = agent.wait_terminal(cid, timeout=30)
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end


BAD_CHECKS = [
    ("not an object", "tcp", "health_check must be an object"),
    ("no type", {"port": 80}, "health_check.type"),
    ("bad type", {"type": "ping", "port": 80}, "health_check.type"),
    ("unknown field", {"type": "tcp", "port": 80, "retries": 3}, "health_check: unknown field"),
    ("no port", {"type": "tcp"}, "port_index"),
    ("both ports", {"type": "http", "port": 80, "port_index": 0}, "exactly one of port"),
    ("port 0", {"type": "tcp", "port": 0}, "health_check.port"),
    ("port too big", {"type": "tcp", "port": 70000}, "health_check.port"),
    ("port string", {"type": "tcp", "port": "80"}, "health_check.port"),
    ("index without ports", {"type": "tcp", "port_index": 0}, "health_check.port_index"),
    ("path relative", {"type": "http", "port": 80, "path": "health"}, "health_check.path"),
    ("path with space", {"type": "http", "port": 80, "path": "/a b"}, "health_check.path"),
    ("path on tcp", {"type": "tcp", "port": 80, "path": "/"}, "health_check.path"),
    ("command missing", {"type": "command"}, "health_check.command"),
    ("command bad", {"type": "command", "command": "true"}, "health_check"),
    ("command with port", {"type": "command", "command": {"argv": ["true"]}, "port": 80},
     "health_check"),
    ("interval 0", {"type": "tcp", "port": 80, "interval": 0}, "health_check.interval"),
    ("interval negative", {"type": "tcp", "port": 80, "interval": -1}, "health_check.interval"),
    ("timeout huge", {"type": "tcp", "port": 80, "timeout": 99999}, "health_check.timeout"),
    ("delay string", {"type": "tcp", "port": 80, "delay": "soon"}, "health_check.delay"),
    ("grace 4 places", {"type": "tcp", "port": 80, "grace": 1.0001}, "health_check.grace"),
    ("failures 0", {"type": "tcp", "port": 80, "consecutive_failures": 0},
     "health_check.consecutive_failures"),
    ("failures float", {"type": "tcp", "port": 80, "consecutive_failures": 1.5},
     "health_check.consecutive_failures"),
]


@pytest.mark.parametrize("name,hc,words", BAD_CHECKS, ids=[b[0] for b in BAD_CHECKS])
def test_bad_health_checks_are_refused_naming_the_field(agent, name, hc, words):
    st, body = agent.post("/v1/containers", {"command": {"argv": ["true"]},
                                             "resources": {"cpus": 0.25, "mem": "64MiB"},
                                             "health_check": hc})
    assert st == 400, (st, body)
    assert body["error"]["code"] == "INVALID_ARGUMENT", body
    assert words in body["error"]["message"], body
    assert agent.healthy()


def test_master_sees_healthy_and_refuses_bad_checks_alike(master_factory, agent_factory):
    import mastertest as mt
    m = master_factory(["--heartbeat_interval=500ms"])
    agent_factory(flags=m.agent_flags())
    m.wait_agents(1)
    # the same schema at the master's edge
    st, body = m.request("POST", "/v1/tasks", {"command": {"shell": "true"},
                                                "resources": {"cpus": 0.25, "mem": "64MiB"},
                                                "health_check": {"type": "tcp", "port": 0}})
    assert st == 400 and "health_check.port" in body["error"]["message"], body
    port = free_port()
    t = m.submit("exec /usr/bin/python3 -c '%s' %d 0" % (TCP_SERVER.replace("'", "\""), port),
                 mem="128MiB",
                 health_check={"type": "tcp", "port": port, "interval": 0.2, "grace": 30})

    def healthy():
        task = m.task(t["id"])
        return task if task.get("healthy") is True else None
    task = bt.wait_for(healthy, 30, interval=0.1, what="healthy at the master")
    assert task["state"] == "RUNNING"
    running = [h for h in task["history"] if h["state"] == "RUNNING"]
    assert running[-1].get("healthy") is True, task["history"]
    assert mt.history_states(task).count("RUNNING") == 2
