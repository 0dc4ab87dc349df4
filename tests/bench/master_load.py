#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/master_load.py BUILD_DIR [OUT_MD] - `make bench`, issue #7: one berth-master
under simulated agents. For N in BENCH_MASTER_AGENTS (1000,10000): N agents register the
way berth-agent does (issue #11, docs/protocol.md "Authentication": SUBSCRIBE with a join
token's key id, the master's CHALLENGE checked, AUTHENTICATE with the agent's HMAC proof on
a second connection; tests/bench/agent_sim.py), keep their event stream open and send a
HEARTBEAT signed with their session key every heartbeat interval (5 s), spread evenly, over a
pool of keep-alive connections, for BENCH_MASTER_SECONDS (30); the master's CPU
(utime+stime over wall time), its RSS and the heartbeat latency seen by the client are
reported, and the registration's time and master CPU. Then end to end: one real agent
(registered with the join token), BENCH_MASTER_TASKS (30) tasks submitted one after the
other, submit -> RUNNING from the master's own history (STAGING -> RUNNING received_at).
Writes a markdown table to OUT_MD when given; exits 1 when a call of the simulated agents is
refused or an agent lost its stream. Cleans up every process and dir it made."""

import asyncio
import http.client
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

from agent_sim import SimAgent, read_response

B = os.path.abspath(sys.argv[1])
OUT = sys.argv[2] if len(sys.argv) > 2 else None
COUNTS = [int(x) for x in os.environ.get("BENCH_MASTER_AGENTS", "1000,10000").split(",")]
SECONDS = float(os.environ.get("BENCH_MASTER_SECONDS", "30"))
TASKS = int(os.environ.get("BENCH_MASTER_TASKS", "30"))
POOL = 32         # keep-alive connections the heartbeats go over
SUBSCRIBERS = 64  # agents registering at once (the master holds 256 unproven SUBSCRIBEs)
HZ = os.sysconf("SC_CLK_TCK")
LOAD = os.getloadavg()[0]  # at the start, for the report
RES = {"cpus": 4, "mem": 8 << 30, "disk": 100 << 30}
USAGE = {"node": {"cpus": 0.5, "mem": 1 << 30}, "used": {"cpus": 0.2, "mem": 1 << 28},
         "tasks": []}


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
        self.token_file = os.path.join(tmp, "token")
        self.token = write_token(self.token_file)
        # the join token every agent registers with (docs/security.md): the simulated ones
        # and the real one of end_to_end()
        self.join_token_file = os.path.join(tmp, "join.token")
        self.join_token = write_token(self.join_token_file)
        self.log = open(os.path.join(tmp, "master.log"), "ab")
        # agent_timeout far above the interval: a slow client must not make agents unreachable
        self.proc = subprocess.Popen(
            [os.path.join(B, "berth-master"), "--config=/dev/null",
             "--listen=127.0.0.1:%d" % self.port, "--work_dir=" + os.path.join(tmp, "m"),
             "--token_file=" + self.token_file, "--join_token_file=" + self.join_token_file,
             "--plain_http=true", "--heartbeat_interval=5s", "--agent_timeout=120s",
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

    def call(self, method, path, body=None):
        """The user API, with the admin token."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Authorization": "Bearer " + self.token})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            c.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_token(path):
    text = secrets.token_hex(20)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return text


def master_in(tmp):
    """Master(tmp), or tmp removed when it does not start (the caller's finally is later)."""
    try:
        return Master(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


async def connect(m):
    return await asyncio.open_connection("127.0.0.1", m.port)


async def run_load(n):
    tmp = tempfile.mkdtemp(prefix="berth-bench-master-")
    m = master_in(tmp)
    agents = [SimAgent(secrets.token_hex(16), RES) for _ in range(n)]
    conns = []
    try:
        # registration: SUBSCRIBERS agents at a time each join (SUBSCRIBE, CHALLENGE,
        # AUTHENTICATE, SUBSCRIBED) and send their first signed HEARTBEAT right away, as
        # berth-agent does; the calls go over one keep-alive connection per worker
        todo = list(reversed(agents))
        first = {}

        async def registrar():
            conn = await connect(m)
            conns.append(conn)
            while todo:
                a = todo.pop()
                await asyncio.wait_for(a.join(m.port, m.join_token, conn), 60)
                conn[1].write(a.heartbeat_request(m.port, USAGE))
                st, _ = await read_response(conn[0])
                first[st] = first.get(st, 0) + 1
        c0, t0 = cpu_ticks(m.proc.pid), time.monotonic()
        await asyncio.gather(*(registrar() for _ in range(SUBSCRIBERS)))
        sub_s = time.monotonic() - t0
        sub_cpu = (cpu_ticks(m.proc.pid) - c0) / HZ / sub_s
        if set(first) != {202}:
            raise RuntimeError("first heartbeats of %d agents answered %r" % (n, first))
        # heartbeats: agent i at offset i/n of the interval, every interval
        interval = agents[0].interval
        queue = asyncio.Queue()
        lat = []
        status = {}

        async def worker():
            r, w = await connect(m)
            conns.append((r, w))
            while True:
                a = await queue.get()
                if a is None:
                    break
                s = time.monotonic()
                w.write(a.heartbeat_request(m.port, USAGE))  # signed here, each time
                st, _ = await read_response(r)
                lat.append(time.monotonic() - s)
                status[st] = status.get(st, 0) + 1
        workers = [asyncio.ensure_future(worker()) for _ in range(POOL)]
        c0, w0 = cpu_ticks(m.proc.pid), time.monotonic()
        start = w0
        sent = 0
        lag_max = 0.0
        while True:
            now = time.monotonic()
            if now - start >= SECONDS:
                break
            due = int((now - start) / interval * n)
            while sent < due:
                queue.put_nowait(agents[sent % n])
                sent += 1
            lag_max = max(lag_max, queue.qsize() / (n / interval))
            await asyncio.sleep(0.005)
        while not queue.empty():
            await asyncio.sleep(0.01)
        c1, w1 = cpu_ticks(m.proc.pid), time.monotonic()
        for _ in workers:
            queue.put_nowait(None)
        await asyncio.gather(*workers)
        rss = rss_kib(m.proc.pid)
        # every simulated agent still holds its stream (after the measurement: not in it)
        st, body = m.call("GET", "/v1/agents")
        live = sum(1 for a in body["agents"] if a["connected"] and a["state"] == "REACHABLE")
        return {"agents": n, "subscribe_s": sub_s, "subscribe_cpu": sub_cpu,
                "joins": n / sub_s, "heartbeats": len(lat),
                "errors": sum(v for k, v in status.items() if k != 202), "status": status,
                "live": live, "interval": interval,
                "rate": len(lat) / (w1 - w0), "cpu": (c1 - c0) / HZ / (w1 - w0),
                "rss_mib": rss / 1024, "p50_ms": pct(lat, 0.5) * 1e3,
                "p99_ms": pct(lat, 0.99) * 1e3, "max_ms": max(lat) * 1e3 if lat else 0,
                "client_lag_s": lag_max}
    finally:
        for a in agents:
            if a.stream:
                a.stream.close()
        for r, w in conns:
            w.close()
        m.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def end_to_end():
    """Submit -> RUNNING through the master with one real agent."""
    tmp = tempfile.mkdtemp(prefix="berth-bench-e2e-", dir="/var/tmp")
    os.chmod(tmp, 0o755)
    m = master_in(tmp)
    parent = "berth-bench-master-%d" % os.getpid()
    conf = os.path.join(tmp, "agent.conf")
    with open(conf, "w") as f:
        f.write("[resources]\ncpus = 4\n[reserved]\ncpus = 0\nmem = 512MiB\n")
    alog_path = os.path.join(tmp, "agent.log")
    alog = open(alog_path, "ab")
    # the agent registers with the join token (and keeps the agent key it derives in its
    # work_dir); plain HTTP on loopback, which both sides must allow
    agent = subprocess.Popen(
        [os.path.join(B, "berth-agent"), "--config=" + conf, "--work_dir=" + tmp + "/work",
         "--listen=unix:" + tmp + "/agent.sock", "--cgroup_parent=" + parent,
         "--executor=" + os.path.join(B, "berth-executor"),
         "--master=http://127.0.0.1:%d" % m.port, "--master_plain_http=true",
         "--token_file=" + m.join_token_file, "--log_level=warning"],
        stdout=alog, stderr=subprocess.STDOUT)
    lat = []
    try:
        for _ in range(300):
            st, ags = m.call("GET", "/v1/agents")
            if ags["agents"] and ags["agents"][0]["connected"]:
                break
            if agent.poll() is not None:
                break
            time.sleep(0.1)
        else:
            ags = None
        if not ags or not ags["agents"] or not ags["agents"][0]["connected"]:
            with open(alog_path, "rb") as f:
                tail = f.read()[-2000:].decode("utf-8", "replace")
            raise RuntimeError("the real agent did not register at the master:\n" + tail)
        for i in range(TASKS):
            st, t = m.call("POST", "/v1/tasks", {"command": {"argv": ["/bin/true"]},
                                                 "resources": {"cpus": 1, "mem": "64MiB"}})
            assert st == 201, t
            for _ in range(200):
                st, t = m.call("GET", "/v1/tasks/" + t["id"])
                if t["state"] in ("FINISHED", "FAILED", "KILLED", "LOST"):
                    break
                time.sleep(0.02)
            h = {x["state"]: x["received_at"] for x in t["history"]}
            if "RUNNING" in h:
                lat.append(h["RUNNING"] - h["STAGING"])
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
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
        load = os.getloadavg()[0]
        r = asyncio.run(run_load(n))
        r["load"] = load
        rows.append(r)
        print("%(agents)6d agents: registered in %(subscribe_s).1f s (%(joins).0f/s, master CPU "
              "%(subscribe_cpu).3f cores); %(heartbeats)d heartbeats at %(rate).0f/s, master "
              "CPU %(cpu).3f cores, RSS %(rss_mib).1f MiB, latency p50 %(p50_ms).2f ms p99 "
              "%(p99_ms).2f ms max %(max_ms).1f ms, answers %(status)r, errors %(errors)d, "
              "%(live)d agents connected at the end, client lag max %(client_lag_s).2f s, load "
              "average %(load).2f at its start" % r)
    bad = [r for r in rows if r["errors"] or r["live"] != r["agents"]]
    if bad:
        sys.exit("master_load.py: refused heartbeats or lost streams: %r" % bad)
    lat = end_to_end()
    e2e = "submit -> RUNNING over %d tasks: p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
        len(lat), pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3, max(lat) * 1e3) if lat else \
        "submit -> RUNNING: no task reached RUNNING"
    print(e2e)
    if OUT:
        with open(OUT, "w") as f:
            f.write(
                "Written by `make bench` (tests/bench/master_load.py) on %d CPUs, %s, load "
                "average %.2f at the start. One berth-master; every simulated agent registers "
                "as berth-agent does (docs/protocol.md \"Authentication\": SUBSCRIBE with the "
                "join token's key id, the master's CHALLENGE proof checked, AUTHENTICATE with "
                "the agent's HMAC proof on a second connection; tests/bench/agent_sim.py), "
                "keeps its SUBSCRIBE stream open and sends a HEARTBEAT every %.0f s, signed "
                "with its session key (`Berth-Signature`, which the master checks on every "
                "call), spread evenly, over %d keep-alive connections (Python asyncio client on "
                "the same host, so it competes for the CPUs); %.0f s per row. Latency is the "
                "client's (request written -> 202 read). Registration: all agents' handshakes, "
                "%d at a time, each followed by its first heartbeat; its time and the master's "
                "CPU during it.\n\n"
                % (os.cpu_count(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), LOAD,
                   rows[0]["interval"] if rows else 5, POOL, SECONDS, SUBSCRIBERS))
            f.write("| agents | registration | heartbeats/s | master CPU (cores) | master RSS | "
                    "p50 | p99 | max | errors |\n|---|---|---|---|---|---|---|---|---|\n")
            for r in rows:
                f.write("| %(agents)d | %(subscribe_s).1f s (%(joins).0f/s, %(subscribe_cpu).2f "
                        "cores) | %(rate).0f | %(cpu).3f | %(rss_mib).1f MiB | %(p50_ms).2f ms | "
                        "%(p99_ms).2f ms | %(max_ms).1f ms | %(errors)d |\n" % r)
            f.write("\nEnd to end with one real agent (registered with the join token; "
                    "`/bin/true`, 1 CPU / 64 MiB, one at a time): %s (STAGING -> RUNNING as the "
                    "master recorded them).\n" % e2e)


if __name__ == "__main__":
    main()
