#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/events_bench.py BUILD_DIR [OUT_MD] - `make bench`, issue #17 (must-show 5's
shape, against berth-master until berth-apps has its stream): BENCH_EVENTS_RATE (1000)
changes per second for BENCH_EVENTS_SECONDS (30) fanned out by GET /v1/events to
BENCH_EVENTS_SUBS (10) subscribers that read, plus one that never reads. The changes are real:
tasks submitted to the built-in framework while one real agent is full (each waits), killed
and removed - three events per task, paced by two driver processes. Reported: the events
published per second, each reader's count, the delivery latency (the event's "time", set by
the master when it published it, to the moment the reader's recv() returned it, same host
clock) p50/p99/max over every event of every reader, when the non-reader was cut off, and
the master's CPU and RSS before and during the run. Benchmarks never assert timings; the
run fails only when something does not work (a reader missing events, no cut-off). Writes
a markdown section to OUT_MD when given. Cleans up every process, cgroup and dir it made."""

import http.client
import json
import multiprocessing
import os
import re
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
B = os.path.abspath(sys.argv[1])
OUT = sys.argv[2] if len(sys.argv) > 2 else None
os.environ["BERTH_BUILD"] = B
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

import berthtest as bt  # noqa: E402
import conftest  # noqa: E402
import mastertest as mt  # noqa: E402
import schedtest as st  # noqa: E402
import ssetest  # noqa: E402

RATE = float(os.environ.get("BENCH_EVENTS_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_EVENTS_SECONDS", "30"))
SUBS = int(os.environ.get("BENCH_EVENTS_SUBS", "10"))
STALLED = os.environ.get("BENCH_EVENTS_STALLED", "1") == "1"  # 0: for comparison only
DRIVERS = 2
HZ = os.sysconf("SC_CLK_TCK")
TIME_RE = re.compile(rb'^data: \{"time":([0-9.]+),"(?:task|agent|framework)"')


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


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


def metrics(m):
    st_, text = m.get("/metrics")
    out = {}
    for line in text.splitlines():
        if line.startswith("berth_master_events_"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def drive(port, token, rate, seconds, prefix, done):
    """rate/3 tasks a second (3 events each), paced, over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    period, n = 3.0 / rate, 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        due = start + n * period
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        body = {"command": {"shell": "true"}, "resources": {"cpus": 4, "mem": "16MiB"},
                "name": "%s-%d" % (prefix, n)}
        conn.request("POST", "/v1/tasks", body=json.dumps(body), headers=h)
        r = conn.getresponse()
        t = json.loads(r.read())
        for method, path in (("POST", "/v1/tasks/%s/kill" % t["id"]),
                             ("DELETE", "/v1/tasks/%s" % t["id"])):
            conn.request(method, path, headers=h)
            conn.getresponse().read()
        n += 1
    conn.close()
    done.value = n


class Readers:
    """SUBS subscribers read by one thread: per event, the latency from its "time"."""

    def __init__(self, m):
        self.sel = selectors.DefaultSelector()
        self.count = [0] * SUBS
        self.lat = []
        self.stop = False
        self.socks = []
        for i in range(SUBS):
            s = socket.create_connection(("127.0.0.1", m.port))
            s.sendall(("GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "\r\n" % m.token).encode())
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, [i, b""])
            self.socks.append(s)
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def loop(self):
        while not self.stop:
            for key, _ in self.sel.select(0.2):
                now = time.time()
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    self.sel.unregister(key.fileobj)
                    continue
                i, rest = key.data
                lines = (rest + data).split(b"\n")
                key.data[1] = lines.pop()
                for line in lines:
                    mo = TIME_RE.match(line)
                    if mo:
                        self.count[i] += 1
                        self.lat.append(now - float(mo.group(1)))

    def close(self):
        self.stop = True
        self.th.join(5)
        for s in self.socks:
            s.close()


def main():
    tmp = tempfile.mkdtemp(prefix="berth-bench-events-", dir=bt.TMP_BASE)
    agents, m, readers, stuck = [], None, None, None
    res = {}
    try:
        m = mt.Master(tmp, ["--log_level=warning"], tls=False).start()
        d = tempfile.mkdtemp(prefix="berth-test-%d-950-" % os.getpid(), dir=bt.TMP_BASE)
        os.chmod(d, 0o755)
        a = bt.Agent(d, 950, st.agent_conf(4, "8GiB"), m.agent_flags())
        agents.append(a)
        a.start()
        m.wait_agents(1)
        filler = m.submit("sleep 3600", cpus=4, name="filler")
        m.wait_task(filler["id"], "RUNNING", timeout=60)
        readers = Readers(m)
        if STALLED:
            stuck = ssetest.stalled("127.0.0.1", m.port, "/v1/events", m.token)
        bt.wait_for(lambda: metrics(m)["berth_master_events_subscribers"] == SUBS + STALLED, 20,
                    what="the subscribers connected")
        pid = m.proc.pid
        rss0, m0 = rss_kib(pid), metrics(m)
        c0, w0 = cpu_ticks(pid), time.monotonic()
        done = [multiprocessing.Value("i", 0) for _ in range(DRIVERS)]
        procs = [multiprocessing.Process(target=drive, args=(
            m.port, m.token, RATE / DRIVERS, SECONDS, "ev%d" % k, done[k]))
            for k in range(DRIVERS)]
        for p in procs:
            p.start()
        rss_max, cut_at, samples = rss0, None, []
        while any(p.is_alive() for p in procs):
            time.sleep(1)
            mm = metrics(m)
            rss = rss_kib(pid)
            rss_max = max(rss_max, rss)
            samples.append(rss)
            if cut_at is None and mm["berth_master_events_cut_off_total"] > 0:
                cut_at = (time.monotonic() - w0,
                          mm["berth_master_events_published_total"] -
                          m0["berth_master_events_published_total"])
        for p in procs:
            p.join()
        c1, w1 = cpu_ticks(pid), time.monotonic()
        m1 = metrics(m)
        published = m1["berth_master_events_published_total"] - \
            m0["berth_master_events_published_total"]
        bt.wait_for(lambda: min(readers.count) >= published, 30,
                    what="the readers to get every event")
        readers.close()
        nbytes, ended = ssetest.drain(stuck, 20) if stuck else (0, False)
        res = {
            "rate_asked": RATE, "seconds": w1 - w0, "published": published,
            "rate": published / (w1 - w0), "tasks": sum(x.value for x in done),
            "counts": list(readers.count), "n_lat": len(readers.lat),
            "p50_ms": pct(readers.lat, .5) * 1e3, "p99_ms": pct(readers.lat, .99) * 1e3,
            "max_ms": max(readers.lat) * 1e3, "cpu": (c1 - c0) / HZ / (w1 - w0),
            "rss0_mib": rss0 / 1024, "rss_max_mib": rss_max / 1024,
            "rss_end_mib": rss_kib(pid) / 1024, "cut_at": cut_at,
            "cut_total": m1["berth_master_events_cut_off_total"],
            "stalled_read": nbytes, "stalled_ended": ended,
            "history_mib": m1["berth_master_events_history_bytes"] / (1 << 20),
            "load": os.getloadavg(),
        }
        print(json.dumps(res, indent=1))
        assert res["cut_total"] == 1 and ended, "the non-reading subscriber was not cut off"
        assert min(res["counts"]) == published, "a reader missed events"
    finally:
        if readers:
            readers.close()
        if stuck:
            stuck.close()
        problems = []
        for a in agents:
            problems += conftest._teardown(a)
        if m:
            m.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        if problems:
            print("\n".join(problems), file=sys.stderr)
    if OUT:
        with open(OUT, "w") as f:
            f.write(
                "Written by `make bench` (tests/bench/events_bench.py) on %d CPUs, kernel %s, "
                "%s, load average %.2f %.2f %.2f at the end (other suites share the machine). "
                "Issue #17's must-show 5, against berth-master's `GET /v1/events` (berth-apps "
                "will serve the same hub): %.0f changes/s asked for %.0f s, each a real "
                "change of the registry (a task submitted while the one agent is full, "
                "killed, removed: 3 events) made by two paced driver processes over "
                "keep-alive HTTP; %d subscribers read every event (one Python thread with "
                "selectors; latency = the reader's recv() time minus the event's `time`, "
                "which the master sets when it publishes, one clock), and one subscriber "
                "sends its GET and never reads.\n\n"
                % (os.cpu_count(), os.uname().release,
                   time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), *res["load"],
                   RATE, SECONDS, SUBS))
            f.write("| events/s published | events delivered | p50 | p99 | max | master CPU "
                    "(cores) | master RSS before / max during / after |\n"
                    "|---|---|---|---|---|---|---|\n")
            f.write("| %.0f | %d x %d | %.2f ms | %.2f ms | %.1f ms | %.3f | %.1f / %.1f / "
                    "%.1f MiB |\n\n" % (res["rate"], SUBS, res["published"], res["p50_ms"],
                                       res["p99_ms"], res["max_ms"], res["cpu"],
                                       res["rss0_mib"], res["rss_max_mib"],
                                       res["rss_end_mib"]))
            cut = ("cut off %.0f s into the run, after %d events (`events_buffer` at its "
                   "default 4 MiB queued in the master, plus the socket's send buffer, which "
                   "the hub fixes at 128 KiB, doubled by the kernel)"
                   % res["cut_at"]) if res["cut_at"] else "cut off"
            f.write("The subscriber that never reads was %s; it had received %d bytes when "
                    "its connection closed, and the master's RSS stayed as above (the "
                    "history of the last 4096 events held %.2f MiB). No reader missed an "
                    "event. The latency includes the Python reader's own lag: it handles "
                    "%d x %.0f events/s on a thread of its own, and under load (other "
                    "suites on the 2 CPUs) its p99 grows by orders of magnitude while the "
                    "master's CPU stays as above.\n"
                    % (cut, res["stalled_read"], res["history_mib"], SUBS, res["rate"]))


if __name__ == "__main__":
    main()
