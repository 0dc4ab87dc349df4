#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/master_load.py BUILD_DIR [OUT_MD] - `make bench`, issue #7: one berth-master
under simulated agents. For N in BENCH_MASTER_AGENTS (1000,10000): N agents SUBSCRIBE (each
keeps its event stream open, as real agents do) and then send a HEARTBEAT every 5 s, spread
evenly, over a pool of keep-alive connections, for BENCH_MASTER_SECONDS (30); the master's
CPU (utime+stime over wall time), its RSS and the heartbeat latency seen by the client are
reported. Then end to end: one real agent, BENCH_MASTER_TASKS (30) tasks submitted one after
the other, submit -> RUNNING from the master's own history (STAGING -> RUNNING received_at).
Writes a markdown table to OUT_MD when given. Cleans up every process and dir it made."""

import asyncio
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

B = os.path.abspath(sys.argv[1])
OUT = sys.argv[2] if len(sys.argv) > 2 else None
COUNTS = [int(x) for x in os.environ.get("BENCH_MASTER_AGENTS", "1000,10000").split(",")]
SECONDS = float(os.environ.get("BENCH_MASTER_SECONDS", "30"))
TASKS = int(os.environ.get("BENCH_MASTER_TASKS", "30"))
INTERVAL = 5.0
POOL = 32
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


class Master:
    def __init__(self, tmp):
        self.port = free_port()
        self.token = secrets.token_hex(20)
        tf = os.path.join(tmp, "token")
        with open(tf, "w") as f:
            f.write(self.token)
        self.token_file = tf
        self.log = open(os.path.join(tmp, "master.log"), "ab")
        # agent_timeout far above the interval: a slow client must not make agents unreachable
        self.proc = subprocess.Popen(
            [os.path.join(B, "berth-master"), "--config=/dev/null",
             "--listen=127.0.0.1:%d" % self.port, "--work_dir=" + os.path.join(tmp, "m"),
             "--token_file=" + tf, "--plain_http=true", "--heartbeat_interval=5s",
             "--agent_timeout=120s",
             "--log_level=warning"], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("berth-master did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def master_in(tmp):
    """Master(tmp), or tmp removed when it does not start (the caller's finally is later)."""
    try:
        return Master(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def request_bytes(m, body, stream_id=None, path="/api/v1/agent", method="POST"):
    data = json.dumps(body).encode() if body is not None else b""
    h = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1",
         "Authorization: Bearer " + m.token, "Content-Type: application/json",
         "Content-Length: %d" % len(data)]
    if stream_id:
        h.append("Berth-Stream-Id: " + stream_id)
    return ("\r\n".join(h) + "\r\n\r\n").encode() + data


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


def subscribe_body(aid):
    res = {"cpus": 4, "mem": 8 << 30, "disk": 100 << 30}
    return {"type": "SUBSCRIBE", "agent_id": aid,
            "subscribe": {"hostname": "sim-" + aid[:8],
                          "resources": {"total": res, "reserved": {"cpus": 0, "mem": 0},
                                        "allocatable": res}, "tasks": []}}


async def subscribe(m, aid):
    """Open the agent's stream and read up to SUBSCRIBED; keeps the connection."""
    r, w = await asyncio.open_connection("127.0.0.1", m.port)
    w.write(request_bytes(m, subscribe_body(aid)))
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    # chunked: "<hex>\r\n<record>\r\n"; the first record is SUBSCRIBED
    size = int((await r.readuntil(b"\r\n")).strip(), 16)
    chunk = await r.readexactly(size + 2)
    rec = chunk[:size]
    nl = rec.index(b"\n")
    ev = json.loads(rec[nl + 1:])
    return ev["subscribed"]["stream_id"], (r, w)


async def run_load(n):
    tmp = tempfile.mkdtemp(prefix="berth-bench-master-")
    m = master_in(tmp)
    streams = []
    try:
        ids = [secrets.token_hex(16) for _ in range(n)]
        sids = {}
        sem = asyncio.Semaphore(64)

        async def sub(aid):
            async with sem:
                sid, conn = await subscribe(m, aid)
                sids[aid] = sid
                streams.append(conn)
        t0 = time.monotonic()
        await asyncio.gather(*(sub(a) for a in ids))
        sub_s = time.monotonic() - t0
        # heartbeats: agent i at offset i/n of the interval, every INTERVAL
        queue = asyncio.Queue()
        lat = []
        errors = [0]

        async def worker():
            r, w = await asyncio.open_connection("127.0.0.1", m.port)
            while True:
                aid = await queue.get()
                if aid is None:
                    break
                body = {"type": "HEARTBEAT", "agent_id": aid, "heartbeat": {"usage": {
                    "node": {"cpus": 0.5, "mem": 1 << 30}, "used": {"cpus": 0.2, "mem": 1 << 28},
                    "tasks": []}}}
                s = time.monotonic()
                w.write(request_bytes(m, body, sids[aid]))
                st, _ = await read_response(r)
                lat.append(time.monotonic() - s)
                if st != 202:
                    errors[0] += 1
            w.close()
        workers = [asyncio.ensure_future(worker()) for _ in range(POOL)]
        c0, w0 = cpu_ticks(m.proc.pid), time.monotonic()
        start = w0
        sent = 0
        lag_max = 0.0
        while True:
            now = time.monotonic()
            if now - start >= SECONDS:
                break
            due = int((now - start) / INTERVAL * n)
            while sent < due:
                queue.put_nowait(ids[sent % n])
                sent += 1
            lag_max = max(lag_max, queue.qsize() / (n / INTERVAL))
            await asyncio.sleep(0.005)
        while not queue.empty():
            await asyncio.sleep(0.01)
        c1, w1 = cpu_ticks(m.proc.pid), time.monotonic()
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        rss = rss_kib(m.proc.pid)
        return {"agents": n, "subscribe_s": sub_s, "heartbeats": len(lat), "errors": errors[0],
                "rate": len(lat) / (w1 - w0), "cpu": (c1 - c0) / HZ / (w1 - w0),
                "rss_mib": rss / 1024, "p50_ms": pct(lat, 0.5) * 1e3,
                "p99_ms": pct(lat, 0.99) * 1e3, "max_ms": max(lat) * 1e3 if lat else 0,
                "client_lag_s": lag_max}
    finally:
        for r, w in streams:
            w.close()
        m.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def end_to_end():
    """Submit -> RUNNING through the master with one real agent."""
    import http.client
    tmp = tempfile.mkdtemp(prefix="berth-bench-e2e-", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    m = master_in(tmp)
    parent = "berth-bench-master-%d" % os.getpid()
    conf = os.path.join(tmp, "agent.conf")
    with open(conf, "w") as f:
        f.write("[resources]\ncpus = 4\n[reserved]\ncpus = 0\nmem = 512MiB\n")
    alog = open(os.path.join(tmp, "agent.log"), "ab")
    agent = subprocess.Popen(
        [os.path.join(B, "berth-agent"), "--config=" + conf, "--work_dir=" + tmp + "/work",
         "--listen=unix:" + tmp + "/agent.sock", "--cgroup_parent=" + parent,
         "--executor=" + os.path.join(B, "berth-executor"),
         "--master=http://127.0.0.1:%d" % m.port, "--token_file=" + m.token_file,
         "--log_level=warning"], stdout=alog, stderr=subprocess.STDOUT)

    def call(method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", m.port, timeout=10)
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Authorization": "Bearer " + m.token})
        r = c.getresponse()
        out = json.loads(r.read() or b"null")
        c.close()
        return r.status, out
    lat = []
    try:
        for _ in range(100):
            st, ags = call("GET", "/v1/agents")
            if ags["agents"] and ags["agents"][0]["connected"]:
                break
            time.sleep(0.1)
        for i in range(TASKS):
            st, t = call("POST", "/v1/tasks", {"command": {"argv": ["/bin/true"]},
                                               "resources": {"cpus": 1, "mem": "64MiB"}})
            assert st == 201, t
            for _ in range(200):
                st, t = call("GET", "/v1/tasks/" + t["id"])
                if t["state"] in ("FINISHED", "FAILED", "KILLED", "LOST"):
                    break
                time.sleep(0.02)
            h = {x["state"]: x["received_at"] for x in t["history"]}
            if "RUNNING" in h:
                lat.append(h["RUNNING"] - h["STAGING"])
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)
        m.stop()
        # the agent removes its cgroup parent when it stops (the tasks have all ended)
        shutil.rmtree(tmp, ignore_errors=True)
    return lat


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = []
    for n in COUNTS:
        if n + 200 > hard:
            print("skip %d agents: RLIMIT_NOFILE %d is too low" % (n, hard))
            continue
        r = asyncio.run(run_load(n))
        rows.append(r)
        print("%(agents)6d agents: %(heartbeats)d heartbeats at %(rate).0f/s, master CPU "
              "%(cpu).3f cores, RSS %(rss_mib).1f MiB, latency p50 %(p50_ms).2f ms p99 "
              "%(p99_ms).2f ms max %(max_ms).1f ms, errors %(errors)d (subscribe of all: "
              "%(subscribe_s).1f s)" % r)
    lat = end_to_end()
    e2e = "submit -> RUNNING over %d tasks: p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
        len(lat), pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3, max(lat) * 1e3) if lat else \
        "submit -> RUNNING: no task reached RUNNING"
    print(e2e)
    if OUT:
        with open(OUT, "w") as f:
            f.write("Written by `make bench` (tests/bench/master_load.py) on %d CPUs, %s. One "
                    "berth-master; simulated agents keep their SUBSCRIBE stream open and send a "
                    "HEARTBEAT every %.0f s, spread evenly, over %d keep-alive connections "
                    "(Python asyncio client on the same host, so it competes for the CPUs); "
                    "%.0f s per row. Latency is the client's (request written -> 202 read).\n\n"
                    % (os.cpu_count(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       INTERVAL, POOL, SECONDS))
            f.write("| agents | heartbeats/s | master CPU (cores) | master RSS | p50 | p99 | "
                    "max | errors |\n|---|---|---|---|---|---|---|---|\n")
            for r in rows:
                f.write("| %(agents)d | %(rate).0f | %(cpu).3f | %(rss_mib).1f MiB | "
                        "%(p50_ms).2f ms | %(p99_ms).2f ms | %(max_ms).1f ms | %(errors)d |\n"
                        % r)
            f.write("\nEnd to end with one real agent (`/bin/true`, 1 CPU / 64 MiB, one at a "
                    "time): %s (STAGING -> RUNNING as the master recorded them).\n" % e2e)


if __name__ == "__main__":
    main()
