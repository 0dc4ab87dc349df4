# SPDX-License-Identifier: Apache-2.0
"""tests/bench/launch_latency.py SOCKET STAMP N OUT.json [GAP_MS] - measure (c), the agent
API's launch latency: N sequential launches of STAMP (cpus 0.1, mem 64MiB) through
POST /v1/containers on the unix SOCKET, GAP_MS apart (default 0: back to back). t0 is
taken right before each request is sent; STAMP prints the wall clock as its first action;
latency = stamp - t0. Each container is waited for, its stdout read and then deleted.
Writes the latencies (ns), the phases (POST answered, task end seen) and a summary to
OUT.json."""

import http.client
import json
import os
import socket
import statistics
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    """http.client over a unix stream socket."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def call(sock_path, method, path, body=None, want=(200,)):
    """One request on a fresh connection; returns the body (bytes), raises on another status."""
    conn = UnixConnection(sock_path)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status not in want:
            raise RuntimeError("%s %s: %d %s" % (method, path, resp.status, data[:300]))
        return data
    finally:
        conn.close()


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def launch_once(sock_path, stamp, n):
    """Launch STAMP once; returns the times (ns) after t0 (request sent) of: the POST's
    answer, the task's first instruction, and the answer of GET .../wait (asked right after
    the POST's answer on a connection opened before t0)."""
    body = json.dumps({"name": "bench-lat-%d" % n, "command": {"argv": [stamp]},
                       "resources": {"cpus": 0.1, "mem": "64MiB"}}).encode()
    conn = UnixConnection(sock_path)
    wconn = UnixConnection(sock_path)
    conn.connect()  # connecting is not part of the launch; sending the request is
    wconn.connect()
    try:
        t0 = time.time_ns()
        conn.request("POST", "/v1/containers", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        t_post = time.time_ns()
        if resp.status != 201:
            raise RuntimeError("launch: %d %s" % (resp.status, data[:300]))
        cid = json.loads(data)["id"]
        wconn.request("GET", "/v1/containers/%s/wait" % cid)
        wresp = wconn.getresponse()
        done = json.loads(wresp.read())
        t_wait = time.time_ns()
    finally:
        conn.close()
        wconn.close()
    if done.get("state") != "FINISHED" or done.get("exit_code") != 0:
        raise RuntimeError("stamp task %s ended %s/%s: %s" % (
            cid, done.get("state"), done.get("reason"), done.get("message")))
    out = call(sock_path, "GET", "/v1/containers/%s/logs?stream=stdout" % cid).decode()
    call(sock_path, "DELETE", "/v1/containers/%s" % cid, want=(200, 204))
    return t_post - t0, int(out.strip().splitlines()[0]) - t0, t_wait - t0


def summarize(vals):
    """median/p90/p99/min/max in ms of a list of ns."""
    s = sorted(vals)
    return {"median_ms": statistics.median(s) / 1e6, "p90_ms": pct(s, 90) / 1e6,
            "p99_ms": pct(s, 99) / 1e6, "min_ms": s[0] / 1e6, "max_ms": s[-1] / 1e6}


def main():
    sock_path, stamp = sys.argv[1], os.path.abspath(sys.argv[2])
    n, out = int(sys.argv[3]), sys.argv[4]
    gap = float(sys.argv[5]) / 1e3 if len(sys.argv) > 5 else 0.0
    for i in range(3):  # warm-up: page cache, first cgroup creation
        launch_once(sock_path, stamp, -1 - i)
    post, first, wait = [], [], []
    for i in range(n):
        if gap:
            time.sleep(gap)
        a, b, c = launch_once(sock_path, stamp, i)
        post.append(a)
        first.append(b)
        wait.append(c)
    summary = dict(summarize(first), n=n, gap_ms=gap * 1e3)
    phases = {"post_answered": summarize(post),
              "first_instruction": summarize(first),
              "first_instruction_to_wait_answered": summarize([w - f for w, f in zip(wait, first)]),
              "wait_answered": summarize(wait)}
    with open(out, "w") as f:
        json.dump({"summary": summary, "phases": phases, "latency_ns": first, "post_ns": post,
                   "wait_ns": wait}, f, indent=1)
    print("  %d launches%s: first instruction median %.2f ms, p90 %.2f, p99 %.2f; "
          "POST answered %.2f ms; task end seen (wait answered) %.2f ms (medians)"
          % (n, " %.0f ms apart" % (gap * 1e3) if gap else " back to back", summary["median_ms"],
             summary["p90_ms"], summary["p99_ms"], phases["post_answered"]["median_ms"],
             phases["wait_answered"]["median_ms"]))


if __name__ == "__main__":
    main()
