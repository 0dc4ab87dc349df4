#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/apps_events_bench.py BUILD_DIR [OUT_MD] - `make bench`, issue #17 must-show 5 on
berth-apps' own GET /v1/events: real instance changes fanned out to BENCH_AE_SUBS (10)
subscribers that read, plus one that never reads. The changes are real health flaps: an app
of BENCH_AE_N (100) instances (a `sleep`, 0.01 CPU each, on two real agents) whose HTTP
health check (every 0.1 s, consecutive_failures 1000 so nothing is killed) asks one small
server this script runs; for BENCH_AE_SECONDS (30) it answers 200 and 500 in alternate
windows of 0.1 s, so each check of each instance turns its `healthy` over: the agent sends a
RUNNING status with `healthy`, the master passes it to berth-apps, which publishes
`instance_changed` - about N / 0.1 s changes a second. berth-apps runs with events_buffer =
BENCH_AE_BUFFER (1MiB), so the non-reader is cut off within the run. Reported: the
instance changes published per second (from the stream's ids), each reader's count, the
delivery latency (the event's "time", set by berth-apps when it published it, to the moment
tests/bench/sse_reader.c's read() returned it; one host clock) p50/p99/max over every event of
every reader, when the non-reader was cut off, berth-apps' CPU and RSS before and during the
run. Benchmarks never assert timings; the run fails only when something does not work (a
reader missing events, no cut-off). Writes a markdown section to OUT_MD when given. Cleans up
every process, cgroup and dir it made."""

import asyncio
import http.client
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import apps_bench as ab  # noqa: E402 - also sets BERTH_BUILD and tests/system on the path
import berthtest as bt  # noqa: E402
import conftest  # noqa: E402
import events_bench as eb  # noqa: E402
import mastertest as mt  # noqa: E402
import schedtest as st  # noqa: E402
import ssetest  # noqa: E402

N = int(os.environ.get("BENCH_AE_N", "100"))
SECONDS = float(os.environ.get("BENCH_AE_SECONDS", "30"))
SUBS = int(os.environ.get("BENCH_AE_SUBS", "10"))
INTERVAL = 0.1
BUFFER = os.environ.get("BENCH_AE_BUFFER", "1MiB")  # events_buffer: the stalled one's cut-off
OUT = ab.OUT
APP_ID = "flap"


def flapper(port, mode):
    """An HTTP server for the checks: 200 while mode is 0; then 200 and 500 in alternate
    windows of INTERVAL."""
    os.nice(10)  # the bench's own load: behind the daemons it drives, on a shared machine
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    bad = b"HTTP/1.1 500 Flap\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    async def handle(reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            up = mode.value == 0 or int(time.time() / INTERVAL) % 2 == 0
            writer.write(ok if up else bad)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def serve():
        srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with srv:
            await srv.serve_forever()

    asyncio.run(serve())


def last_seq(apps):
    """The stream's newest event id, read off a fresh snapshot (its id is the newest's)."""
    conn = http.client.HTTPConnection("127.0.0.1", apps.port, timeout=30)
    s = ssetest.Stream(conn, "/v1/events", apps.token)
    try:
        ev = s.next(30)
        assert ev.event == "snapshot", ev
        return ev.seq()[1], ev.data
    finally:
        s.close()


def healthy_count(snap):
    return sum(1 for a in snap["apps"] if a["id"] == APP_ID for t in a["tasks"]
               if t["state"] == "RUNNING" and t.get("healthy") is True)


def main():
    tmp = tempfile.mkdtemp(prefix="berth-bench-apps-events-", dir=bt.TMP_BASE)
    os.chmod(tmp, 0o755)
    agents, m, apps, readers, stuck, flap = [], None, None, None, None, None
    res = {}
    try:
        m = mt.Master(tmp, st.FAST + ["--log_level=warning"]).start()
        for n in range(2):
            d = tempfile.mkdtemp(prefix="berth-test-%d-%d-" % (os.getpid(), 960 + n),
                                 dir=bt.TMP_BASE)
            os.chmod(d, 0o755)
            ports = "[%d-%d]" % (33000 + 1000 * n, 33999 + 1000 * n)
            a = bt.Agent(d, 960 + n, st.agent_conf(4, "8GiB", ports=ports), m.agent_flags())
            agents.append(a)
            a.start()
        m.wait_agents(2)
        mode = multiprocessing.Value("i", 0)
        fport = mt.free_port()
        flap = multiprocessing.Process(target=flapper, args=(fport, mode), daemon=True)
        flap.start()
        apps = ab.Apps(tmp, m, ab.submit_token(m))
        apps.argv.append("--events_buffer=%s" % BUFFER)
        apps.start()
        app = {"id": APP_ID, "command": "exec sleep 3600", "instances": N, "cpus": 0.01,
               "mem": "16MiB", "pids": 16, "network": "host",
               "health_checks": [{"type": "http", "port": fport, "path": "/",
                                  "interval": INTERVAL, "timeout": 1, "grace": 0,
                                  "consecutive_failures": 1000}]}
        s, body = apps.request("POST", "/v1/apps", app)
        assert s == 201, body
        bt.wait_for(lambda: healthy_count(last_seq(apps)[1]) == N, 300 * bt.SLOW, interval=1,
                    what="%d instances healthy" % N)
        eb.SUBS = SUBS
        readers = eb.Readers(eb.build_reader(), apps)  # "ready": every stream has its snapshot
        stuck = ssetest.stalled("127.0.0.1", apps.port, "/v1/events", apps.token)
        pid = apps.proc.pid
        seq0, _ = last_seq(apps)  # answered after the stalled GET, on the same loop
        rss0, c0, w0 = eb.rss_kib(pid), eb.cpu_ticks(pid), time.monotonic()
        mode.value = 1
        rss_max, cut_at = rss0, None
        while time.monotonic() - w0 < SECONDS:
            time.sleep(1)
            rss_max = max(rss_max, eb.rss_kib(pid))
            if cut_at is None and "cut off" in apps.log:
                cut_at = (time.monotonic() - w0, last_seq(apps)[0] - seq0)
        seq1, _ = last_seq(apps)
        c1, w1 = eb.cpu_ticks(pid), time.monotonic()
        mode.value = 0
        # the flaps end: every instance healthy again, and the stream quiet for a second
        prev = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seq, snap = last_seq(apps)
            if healthy_count(snap) == N and seq == prev:
                break
            prev = seq
            time.sleep(1)
        rss_max = max(rss_max, eb.rss_kib(pid))
        published = prev - seq0
        got = readers.result(published)
        nbytes, ended = ssetest.drain(stuck, 20)
        res = {
            "n": N, "seconds": w1 - w0, "changes": seq1 - seq0,
            "rate": (seq1 - seq0) / (w1 - w0), "published": published,
            "counts": got["counts"], "n_lat": got["n"], "p50_ms": got["p50_ms"],
            "p99_ms": got["p99_ms"], "max_ms": got["max_ms"],
            "cpu": (c1 - c0) / eb.HZ / (w1 - w0), "rss0_mib": rss0 / 1024,
            "rss_max_mib": rss_max / 1024, "rss_end_mib": eb.rss_kib(pid) / 1024,
            "cut_at": cut_at, "stalled_read": nbytes, "stalled_ended": ended,
            "load": os.getloadavg(),
        }
        print(json.dumps(res, indent=1))
        assert ended and cut_at, "the non-reading subscriber was not cut off"
        assert min(res["counts"]) == published, "a reader missed events"
    finally:
        if readers:
            readers.close()
        if stuck:
            stuck.close()
        if flap and flap.is_alive():
            flap.kill()
            flap.join()
        problems = []
        if apps:
            apps.stop()
        for a in agents:
            problems += conftest._teardown(a)
        if m:
            m.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        mt.remove_tls()
        if problems:
            print("\n".join(problems), file=sys.stderr)
    if OUT:
        with open(OUT, "w") as f:
            f.write(
                "Written by `make bench` (tests/bench/apps_events_bench.py) on %d CPUs, kernel "
                "%s, %s, load average %.2f %.2f %.2f at the end (other suites share the "
                "machine). Issue #17's must-show 5 on berth-apps' `GET /v1/events`: real "
                "instance changes, from health flaps - an app of %d instances (`sleep`, two "
                "real agents, a real master) whose HTTP check runs every 0.1 s against a "
                "server the bench runs, which answers 200 and 500 in alternate 0.1 s windows "
                "for %.0f s, so each check turns an instance's `healthy` over: agent -> "
                "RUNNING status with `healthy` -> master -> berth-apps -> "
                "`instance_changed`. %d subscribers read every event "
                "(tests/bench/sse_reader.c, one epoll loop in C; latency = the time its "
                "read() returned minus the event's `time`, which berth-apps sets when it "
                "publishes; one clock), and one subscriber sends its GET and never reads.\n\n"
                % (os.cpu_count(), os.uname().release,
                   time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), *res["load"], N,
                   SECONDS, SUBS))
            f.write("| instance changes/s | events delivered | p50 | p99 | max | berth-apps "
                    "CPU (cores) | berth-apps RSS before / max / after |\n"
                    "|---|---|---|---|---|---|---|\n")
            f.write("| %.0f | %d x %d | %.2f ms | %.2f ms | %.1f ms | %.3f | %.1f / %.1f / "
                    "%.1f MiB |\n\n" % (res["rate"], SUBS, res["published"], res["p50_ms"],
                                       res["p99_ms"], res["max_ms"], res["cpu"],
                                       res["rss0_mib"], res["rss_max_mib"],
                                       res["rss_end_mib"]))
            f.write("The subscriber that never reads was cut off %.0f s into the run, after "
                    "%d events (`events_buffer = %s`, plus the socket's send buffer); it had received %d bytes when its connection closed. No reader "
                    "missed an event. The checks of many instances fall on the agent's 10 ms "
                    "grid, so changes come in bursts of about %d; the latency includes the "
                    "queueing of a burst, the reader's own lag and, under load, the wait for "
                    "a CPU. Everything of the pipeline shares the machine's CPUs with the "
                    "checks that make the changes (the agent's 1,000 HTTP checks a second, the "
                    "master relaying 1,000 status updates a second, berth-apps acknowledging "
                    "each: libberthsched opens a connection, with its TLS handshake, for each "
                    "call made while the others are in flight), so the rate reached and the "
                    "tail of the latency follow the machine's load; berth-apps' own CPU is "
                    "the figure above (no hot spot in a profile: allocation, JSON, the "
                    "sockets). A flip of `healthy` alone is published without an apps.db "
                    "write: SQLite's checkpoints fsync on the loop (one was seen taking 0.34 s "
                    "under strace on this machine), and every other subscriber would wait.\n" % (res["cut_at"][0], res["cut_at"][1], BUFFER, res["stalled_read"],
                                   max(1, N // 10)))


if __name__ == "__main__":
    main()
