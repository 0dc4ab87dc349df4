#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/health_bench.py [BUILD_DIR] - issue #16: what health checks cost the agent.

One agent, one run, four phases (N = BENCH_HEALTH_N, 100): N tasks without
a health check, then N with a TCP check every second, then N with an HTTP check every
second, then BENCH_HEALTH_COMMAND_N (20) with a COMMAND check (`true`) every second (a
process per check: its own CPU is charged to the task's cgroup, the agent pays the spawn);
in each phase, once every task is RUNNING (and healthy), the agent's CPU time
(utime + stime of berth-agent, /proc/PID/stat) is read over BENCH_HEALTH_SECONDS (20 s).
Prints a markdown table: agent CPU in cores per phase, the checks done (the agent's own
berth_health_checks_total), the cost over the unchecked phase (for the command phase, the
unchecked phase scaled to its task count: the sampler's cost grows with the tasks) and per
check. The tasks are
`sleep`s in the host's network; the checks go to one TCP and one HTTP server this script
runs on 127.0.0.1 (their CPU is this script's, not the agent's). Issue #16's bound is
0.02 core for 100 tasks checked every second; this prints the figure and asserts nothing
(a timed assertion on a shared machine would only measure the neighbours).

Everything it makes (the agent, its tasks, cgroups, temp dir) is removed at the end, also
on failure. Run as root: BERTH_BUILD or the argument names the build dir (default build)."""

import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                    os.environ.get("BERTH_BUILD") or os.path.join(ROOT, "build"))
N = int(os.environ.get("BENCH_HEALTH_N", "100"))
N_COMMAND = int(os.environ.get("BENCH_HEALTH_COMMAND_N", "20"))
SECONDS = float(os.environ.get("BENCH_HEALTH_SECONDS", "20"))
TICK = os.sysconf("SC_CLK_TCK")

CONF = """\
[resources]
cpus = 64
mem = 64GiB
pids = 4194304
[reserved]
cpus = 0
mem = 0
"""


class Conn(http.client.HTTPConnection):
    def __init__(self, sock_path):
        super().__init__("localhost", timeout=60)
        self.sock_path = sock_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.sock_path)


class Agent:
    def __init__(self, tmp):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "run", "agent.sock")
        os.makedirs(os.path.dirname(self.sock))
        conf = os.path.join(tmp, "agent.conf")
        with open(conf, "w") as f:
            f.write(CONF)
        self.log = open(os.path.join(tmp, "agent.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(B, "berth-agent"), "--config=" + conf,
             "--work_dir=" + os.path.join(tmp, "work"), "--listen=unix:" + self.sock,
             "--cgroup_parent=berth-bench-health-%d" % os.getpid(),
             "--executor=" + os.path.join(B, "berth-executor"), "--pids_max=64"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait(lambda: os.path.exists(self.sock) and self.call("GET", "/health")[0] == 200,
             10, "the agent serving")

    def call(self, method, path, body=None):
        c = Conn(self.sock)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": "application/json"} if body is not None else {})
            r = c.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data[:1] and data[:1] in b"[{" else data.decode())
        except OSError:
            return 0, None
        finally:
            c.close()

    def cpu_seconds(self):
        f = open("/proc/%d/stat" % self.proc.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK  # utime, stime

    def checks_total(self):
        _, text = self.call("GET", "/metrics")
        for line in text.splitlines():
            if line.startswith("berth_health_checks_total "):
                return float(line.split()[1])
        return 0.0

    def containers(self):
        st, body = self.call("GET", "/v1/containers")
        return body["containers"] if st == 200 else []

    def kill_all(self):
        live = [c["id"] for c in self.containers()
                if c["state"] not in ("FINISHED", "FAILED", "KILLED", "LOST")]
        for cid in live:
            self.call("POST", "/v1/containers/%s/kill" % cid, {"signal": "KILL",
                                                                "grace_seconds": 0})
        wait(lambda: all(c["state"] in ("FINISHED", "FAILED", "KILLED", "LOST")
                         for c in self.containers()), 60, "every task ended")
        for c in self.containers():
            self.call("DELETE", "/v1/containers/" + c["id"])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.log.close()


def wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit("health_bench: timed out waiting for %s" % what)
        time.sleep(0.1)


class Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def tcp_server():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(256)

    def loop():
        while True:
            try:
                s.accept()[0].close()
            except OSError:
                return
    threading.Thread(target=loop, daemon=True).start()
    return s


def phase(agent, name, health_check, n=N):
    agent.kill_all()
    for i in range(n):
        body = {"name": "%s-%d" % (name, i), "command": {"argv": ["sleep", "100000"]},
                "resources": {"cpus": 0.01, "mem": "16MiB", "pids": 8}}
        if health_check:
            body["health_check"] = health_check
        st, c = agent.call("POST", "/v1/containers", body)
        if st != 201:
            raise SystemExit("health_bench: launch -> %s %r" % (st, c))

    def ready():
        cs = agent.containers()
        return len(cs) == n and all(c["state"] == "RUNNING" and
                                    (not health_check or c.get("healthy") is True) for c in cs)
    wait(ready, 120, "%d tasks RUNNING%s" % (n, " and healthy" if health_check else ""))
    time.sleep(2)  # let the launches' own work (sampling the new cgroups...) settle
    cpu0, checks0, t0 = agent.cpu_seconds(), agent.checks_total(), time.monotonic()
    time.sleep(SECONDS)
    cpu1, checks1, t1 = agent.cpu_seconds(), agent.checks_total(), time.monotonic()
    return (cpu1 - cpu0) / (t1 - t0), (checks1 - checks0) / (t1 - t0)


def main():
    if os.geteuid() != 0:
        raise SystemExit("health_bench: needs root (cgroups, namespaces)")
    tmp = tempfile.mkdtemp(prefix="berth-bench-health-")
    os.chmod(tmp, 0o755)
    tcp = tcp_server()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    agent = None
    try:
        agent = Agent(tmp)
        rows = []
        for name, hc in (
                ("none", None),
                ("tcp", {"type": "tcp", "port": tcp.getsockname()[1], "interval": 1,
                         "grace": 30}),
                ("http", {"type": "http", "port": httpd.server_address[1], "path": "/health",
                          "interval": 1, "grace": 30}),
                ("command", {"type": "command", "command": {"argv": ["true"]}, "interval": 1,
                             "grace": 30})):
            # a COMMAND check is a process: measured on fewer tasks, compared per check
            n = N_COMMAND if name == "command" else N
            cores, rate = phase(agent, name, hc, n)
            rows.append((name, cores, rate, n))
            print("health_bench: %s: agent %.4f cores, %.1f checks/s" % (name, cores, rate),
                  file=sys.stderr)
        base = rows[0][1]
        nproc = os.cpu_count()
        load = open("/proc/loadavg").read().split()[0]
        print("%d tasks (command: %d), checks every second, agent CPU over %.0f s per phase; "
              "%d CPUs, load average %s, kernel %s." % (N, N_COMMAND, SECONDS, nproc, load,
                                                        os.uname().release))
        print()
        print("| health check | agent CPU (cores) | checks/s | added over none | per check (agent) |")
        print("|---|---|---|---|---|")
        for name, cores, rate, n in rows:
            added = cores - base * n / N
            per = "%.0f us" % (added / rate * 1e6) if rate > 0 and name != "none" else "-"
            print("| %s | %.4f | %.1f | %s | %s |" % (
                name, cores, rate, "-" if name == "none" else "%+.4f" % added, per))
    finally:
        if agent:
            try:
                agent.kill_all()
            finally:
                agent.stop()
        httpd.shutdown()
        tcp.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
