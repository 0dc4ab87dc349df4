#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/net_launch.py BUILD STAMP PORTS_JSON DOC - `make bench` (k), issue #15: what
bridge mode adds to a launch, and what assigning ports costs at 1,000 tasks.

An agent runs in a network namespace this script makes (its bridge, nftables table and
ip_forward live there; the namespace is deleted at the end, also on failure), with
[network] subnet 198.18.250.0/24. BENCH_NET_LAUNCHES (100) launches of STAMP per mode,
interleaved host / none / bridge, each with one port (none: without): latency = the task's first
instruction (STAMP prints the wall clock) - the moment the POST was sent. The table
compares the medians; bridge's added cost is its median minus host's. PORTS_JSON is the
output of tests/bench/ports_assign.c (ports_assign with 1,000 live one-port tasks).
Rewrites the "## Networking" section of DOC."""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from launch_latency import UnixConnection, call, pct  # noqa: E402

B, STAMP, PORTS_JSON, DOC = sys.argv[1:5]
N = int(os.environ.get("BENCH_NET_LAUNCHES", "100"))
MODES = ("host", "none", "bridge")
HERE = os.path.dirname(os.path.abspath(__file__))


def launch(sock, mode, n):
    spec = {"name": "net-%s-%d" % (mode, n), "command": {"argv": [STAMP]}, "network": mode,
            "resources": {"cpus": 0.1, "mem": "64MiB"}}
    if mode != "none":
        spec["ports"] = 1  # none has no port anyone could reach
    body = json.dumps(spec).encode()
    conn, wconn = UnixConnection(sock), UnixConnection(sock)
    conn.connect()
    wconn.connect()
    try:
        t0 = time.time_ns()
        conn.request("POST", "/v1/containers", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 201:
            raise RuntimeError("launch %s: %d %s" % (mode, resp.status, data[:300]))
        cid = json.loads(data)["id"]
        wconn.request("GET", "/v1/containers/%s/wait" % cid)
        done = json.loads(wconn.getresponse().read())
    finally:
        conn.close()
        wconn.close()
    if done.get("state") != "FINISHED":
        raise RuntimeError("%s task ended %s: %s" % (mode, done.get("state"), done.get("message")))
    out = call(sock, "GET", "/v1/containers/%s/logs" % cid).decode().split()
    call(sock, "DELETE", "/v1/containers/" + cid, want=(204,))
    return int(out[0]) - t0


def main():
    tmp = tempfile.mkdtemp(prefix="berth-bench-net.", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    ns = "berth-bench-%d" % os.getpid()
    parent = "berth-bench-net-%d" % os.getpid()
    sock = os.path.join(tmp, "agent.sock")
    agent = None
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        conf = os.path.join(tmp, "agent.conf")
        with open(conf, "w") as f:
            f.write("[resources]\ncpus = 4\npids = 4194304\n[reserved]\ncpus = 0\nmem = 512MiB\n"
                    "[network]\nsubnet = 198.18.250.0/24\n")
        log = open(os.path.join(tmp, "agent.log"), "wb")
        agent = subprocess.Popen(["nsenter", "--net=/run/netns/" + ns, B + "/berth-agent",
                                  "--config=" + conf, "--work_dir=" + tmp + "/work",
                                  "--listen=unix:" + sock, "--cgroup_parent=" + parent],
                                 stdout=log, stderr=log)
        for _ in range(200):
            try:
                call(sock, "GET", "/health")
                break
            except OSError:
                time.sleep(0.05)
        for mode in MODES:  # warm up: the bridge and table are made by the first bridge launch
            launch(sock, mode, -1)
        lat = {m: [] for m in MODES}
        for i in range(N):
            for mode in MODES:
                lat[mode].append(launch(sock, mode, i))
        ports = json.loads(open(PORTS_JSON).read())
        section = render(lat, ports)
        out = os.path.join(tmp, "section.md")
        with open(out, "w") as f:
            f.write(section)
        print(section)
        subprocess.run([sys.executable, os.path.join(HERE, "section.py"), DOC, "Networking", out],
                       check=True)
    finally:
        if agent and agent.poll() is None:
            agent.terminate()
            agent.wait(30)
        subprocess.run(["ip", "netns", "del", ns], check=False)
        for root, dirs, _ in os.walk("/sys/fs/cgroup"):
            if os.path.basename(root) == parent:
                for sub, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
                dirs[:] = []
            elif root.count("/") > 6:
                dirs[:] = []
        shutil.rmtree(tmp, ignore_errors=True)


def render(lat, ports):
    ms = {m: sorted(v / 1e6 for v in lat[m]) for m in MODES}
    med = {m: statistics.median(ms[m]) for m in MODES}
    rows = ["| mode | median | p90 | max |", "|---|---|---|---|"]
    for m in MODES:
        rows.append("| %s | %.2f ms | %.2f ms | %.2f ms |"
                    % (m, med[m], pct(ms[m], 90), ms[m][-1]))
    return "\n".join([
        "Written by `make bench` (tests/bench/net_launch.py, ports_assign.c) on %d CPUs, kernel "
        "%s, %s. The agent runs in a network namespace of its own; %d launches per mode, "
        "interleaved, each with one port (none: without); latency = the task's first instruction - the "
        "request sent (as in Launch)." % (os.cpu_count(), platform.release(),
                                           time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), N),
        "",
    ] + rows + [
        "",
        "Bridge mode adds **%.2f ms** to the median launch over host mode (none: %.2f ms): the "
        "veth (one RTM_NEWLINK with its peer born in the task's namespace, its alias, hairpin), "
        "a netlink socket made inside the namespace for the address, link and route, and one "
        "nftables transaction for the mapping, while the executor builds the sandbox "
        "(docs/design/network.md)." % (med["bridge"] - med["host"], med["none"] - med["host"]),
        "",
        "Port assignment (agentd/ports.c `ports_assign`, the median of 2,000 calls) with "
        "%d live one-port tasks on a %d-port range: **%.1f µs** for one port, %.1f µs for "
        "ten, %.1f µs to refuse eleven; it scans the live containers' ports into a bitmap, "
        "so it grows with the tasks, not with the range."
        % (ports["held"], ports["range"], ports["one_port_ns"] / 1e3,
           ports["ten_ports_ns"] / 1e3, ports["full_refusal_ns"] / 1e3),
    ]) + "\n"


if __name__ == "__main__":
    main()
