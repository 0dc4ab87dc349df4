#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/sampling.py BUILD_DIR TMP - make bench, issue #5: the cost of one usage
sampling pass with 100 and 1000 running containers, next to the floor measured in the same
run (tests/bench/sample_floor.c preads the same cgroup files), and the agent's RSS with 0,
100 and 1000 running containers. Prints a markdown table on stdout. The caller (run.sh)
owns TMP and the cleanup trap; this script kills and removes what it launched."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time

B, TMP = sys.argv[1], sys.argv[2]
SOCK = os.path.join(TMP, "agent.sock")
COUNTS = [int(x) for x in os.environ.get("BENCH_SAMPLE_COUNTS", "100,1000").split(",")]
STAT_FILES = {  # what the v1 sampler reads per container, by controller
    "cpuacct": ["cpuacct.usage", "cpuacct.stat"], "cpu": ["cpu.stat"],
    "memory": ["memory.usage_in_bytes", "memory.stat", "memory.max_usage_in_bytes",
               "memory.limit_in_bytes", "memory.oom_control"],
    "pids": ["pids.current"],
    "unified": ["cpu.stat", "memory.current", "memory.stat", "memory.peak", "memory.max",
                "memory.events", "pids.current", "cpu.pressure", "memory.pressure", "io.pressure"],
}


class Conn(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=60)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCK)


def call(method, path, body=None):
    c = Conn()
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and data[:1] in b"[{" else data.decode())
    finally:
        c.close()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def pass_cost(window=4.0):
    """Mean ms per sampling pass over a few passes, from the agent's own counters."""
    _, t0 = call("GET", "/metrics")
    time.sleep(window)
    _, t1 = call("GET", "/metrics")
    n = metric(t1, "berth_sampler_passes_total") - metric(t0, "berth_sampler_passes_total")
    s = metric(t1, "berth_sampler_pass_seconds_total") - metric(t0, "berth_sampler_pass_seconds_total")
    return s / n * 1000 if n else float("nan"), int(n)


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def floor_ms(ids):
    files = []
    for cid in ids:
        _, c = call("GET", "/v1/containers/" + cid)
        for ctrl, d in c["cgroups"].items():
            for f in STAT_FILES.get(ctrl, []):
                p = os.path.join(d, f)
                if os.path.exists(p):
                    files.append(p)
    files += ["/proc/stat", "/proc/meminfo"]
    r = subprocess.run([os.path.join(B, "bench", "sample_floor"), "6", "1000"] + files,
                       capture_output=True, text=True, check=True)
    return float(r.stdout), len(files)


def main():
    agent_pid = int(open(os.path.join(TMP, "agent.pid")).read())
    rows = []
    time.sleep(2.5)
    rows.append((0, None, None, None, rss_kib(agent_pid)))
    ids = []
    for n in COUNTS:
        while len(ids) < n:
            st, c = call("POST", "/v1/containers", {"command": {"argv": ["sleep", "3600"]},
                                                    "resources": {"cpus": "0.001", "mem": "8MiB",
                                                                  "pids": 8}})
            if st != 201:
                raise SystemExit("launch %d failed: %s %s" % (len(ids), st, c))
            ids.append(c["id"])
        deadline = time.time() + 120
        while time.time() < deadline:
            _, lst = call("GET", "/v1/containers")
            if sum(1 for c in lst["containers"] if c["state"] == "RUNNING") >= n:
                break
            time.sleep(0.5)
        cost, passes = pass_cost()
        fl, nfiles = floor_ms(ids)
        rows.append((n, cost, fl, nfiles, rss_kib(agent_pid)))
        print("  %d containers: pass %.3f ms (%d passes), floor %.3f ms over %d files, RSS %d KiB"
              % (n, cost, passes, fl, nfiles, rss_kib(agent_pid)), file=sys.stderr)
    for cid in ids:
        call("POST", "/v1/containers/%s/kill" % cid, {"signal": "KILL"})
    deadline = time.time() + 120
    while time.time() < deadline:
        _, lst = call("GET", "/v1/containers")
        if all(c["state"] in ("FINISHED", "FAILED", "KILLED", "LOST") for c in lst["containers"]):
            break
        time.sleep(0.5)
    for cid in ids:
        call("DELETE", "/v1/containers/" + cid)
    print("| running containers | sampling pass | floor (bare pread loop) | ratio | files | agent RSS |")
    print("|---|---|---|---|---|---|")
    for n, cost, fl, nfiles, rss in rows:
        if cost is None:
            print("| 0 | - | - | - | - | %.1f MiB |" % (rss / 1024))
        else:
            print("| %d | %.3f ms | %.3f ms | %.2f | %d | %.1f MiB |"
                  % (n, cost, fl, cost / fl if fl else float("nan"), nfiles, rss / 1024))


if __name__ == "__main__":
    main()
