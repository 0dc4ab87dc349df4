#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/sched_bench.py BUILD_DIR [OUT_MD] - `make bench`, issue #14: the scheduler.
(a) the DRF allocator's core alone (tests/bench/alloc_bench.c, built here against
master/allocator.c): one pass over BENCH_ALLOC_AGENTS (10000) simulated agents and
BENCH_ALLOC_FRAMEWORKS (200) frameworks, median of 31; (b) offers per second through a real
berth-master with three real agents: a framework that DECLINEs every offer with refuse_seconds
0, so each answer frees the agents for the next pass at once, for BENCH_OFFER_SECONDS (10);
(c) ACCEPT -> RUNNING with one real agent: BENCH_ACCEPT_TASKS (30) tasks launched one at a
time from offers, from the ACCEPT sent to the RUNNING update read on the stream. Each figure
sits next to a floor measured in the same run: (a) the books of the same offers alone (one
drf_charge each); (b) the same client's bare round trip to the master (GET /health); (c) the
same task launched on the same agent directly (POST /v1/containers, then GET every 2 ms until
RUNNING). Benchmarks print figures; nothing here is a timed assertion. Writes a
markdown section to OUT_MD when given. Uses the system tests' helpers (tests/system) for the
daemons and removes every process, cgroup and directory they made."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
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

AGENTS = int(os.environ.get("BENCH_ALLOC_AGENTS", "10000"))
FRAMEWORKS = int(os.environ.get("BENCH_ALLOC_FRAMEWORKS", "200"))
OFFER_SECONDS = float(os.environ.get("BENCH_OFFER_SECONDS", "10"))
ACCEPT_TASKS = int(os.environ.get("BENCH_ACCEPT_TASKS", "30"))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def alloc_pass():
    exe = os.path.join(B, "bench", "alloc_bench")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-D_GNU_SOURCE", "-I", ROOT,
                    "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                    os.path.join(HERE, "alloc_bench.c"),
                    os.path.join(ROOT, "master", "allocator.c"), os.path.join(B, "libcommon.a"),
                    "-lyajl"], check=True)
    out = subprocess.run([exe, str(AGENTS), str(FRAMEWORKS), "31"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def offers_per_second(m):
    fw = st.Framework(m, "bench-decliner")
    fw.subscribe()
    n, answers, t0 = 0, 0, time.monotonic()
    while time.monotonic() - t0 < OFFER_SECONDS:
        ev = fw.next_event(("OFFERS",), 5)
        if not ev:
            break
        ids = [o["id"] for o in ev["offers"]["offers"]]
        n += len(ids)
        fw.decline(ids, refuse=0)
        answers += 1
    rate = n / (time.monotonic() - t0)
    fw.call("TEARDOWN")
    # the floor: the same client's bare round trip to the master, as many as fit in a second
    k, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 1:
        assert m.get("/health")[0] == 200
        k += 1
    return n, answers, rate, k / (time.monotonic() - t0)


def accept_to_running(m):
    fw = st.Framework(m, "bench-launcher")
    fw.subscribe()
    lat, offers = [], []
    for i in range(ACCEPT_TASKS):
        if not offers:  # the rest of the last offer comes back while the task starts
            offers = fw.offers()
        assert offers, "no offer for task %d" % i
        offer = offers.pop(0)
        t0 = time.monotonic()
        body = fw.accept([offer["id"]], [st.task("bench-%d" % i, shell="sleep 30", cpus=0.1,
                                                 mem="16MiB")], refuse=0)
        tid = body["tasks"][0]["task_id"]
        while True:
            ev = fw.next_event(("UPDATE", "OFFERS"), 10)
            assert ev, "no RUNNING for %s" % tid
            if ev["type"] == "OFFERS":
                offers += ev["offers"]["offers"]
                continue
            s = ev["update"]["status"]
            if s["task_id"] == tid and s["state"] == "RUNNING":
                lat.append(ev["_t"] - t0)
                break
    if offers:
        fw.decline([o["id"] for o in offers])
    fw.call("TEARDOWN")  # kills them
    return lat


def direct_to_running(a):
    """The floor of ACCEPT -> RUNNING: the same task launched on the agent itself."""
    lat = []
    for i in range(ACCEPT_TASKS):
        t0 = time.monotonic()
        c = a.launch(shell="sleep 30", cpus=0.1, mem="16MiB", name="bench-direct-%d" % i)
        while a.inspect(c["id"])["state"] != "RUNNING":
            assert time.monotonic() - t0 < 10, "no RUNNING for %s" % c["id"]
            time.sleep(0.002)
        lat.append(time.monotonic() - t0)
        a.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL"})
        a.wait_terminal(c["id"])
        a.delete("/v1/containers/" + c["id"])
    return lat


def main():
    core = alloc_pass()
    print("allocation pass: %r" % core)
    tmp = tempfile.mkdtemp(prefix="berth-bench-sched-", dir=bt.TMP_BASE)
    agents, m = [], None
    try:
        m = mt.Master(tmp, ["--heartbeat_interval=1s", "--allocation_interval=1s",
                            "--log_level=warning"]).start()

        def agent(n):
            d = tempfile.mkdtemp(prefix="berth-test-%d-%d-" % (os.getpid(), 900 + n),
                                 dir=bt.TMP_BASE)
            os.chmod(d, 0o755)
            a = bt.Agent(d, 900 + n, st.agent_conf(4, "8GiB"), m.agent_flags())
            agents.append(a)
            a.start()
        agent(0)
        m.wait_agents(1)
        lat = accept_to_running(m)  # one real agent
        print("ACCEPT -> RUNNING: p50 %.1f ms, p99 %.1f ms" % (pct(lat, .5) * 1e3,
                                                              pct(lat, .99) * 1e3))
        bt.wait_for(lambda: not [c for c in agents[0].get("/v1/containers")[1]["containers"]
                                 if c["state"] not in bt.TERMINAL], 30,
                    what="the framework's tasks to end")
        direct = direct_to_running(agents[0])
        print("floor, the agent directly: p50 %.1f ms, p99 %.1f ms" % (pct(direct, .5) * 1e3,
                                                                      pct(direct, .99) * 1e3))
        agent(1)
        agent(2)
        m.wait_agents(3)
        n_offers, answers, rate, rtt = offers_per_second(m)
        print("offers: %d in %d answers in %.0f s: %.0f/s; floor: %.0f GET /health round "
              "trips/s" % (n_offers, answers, OFFER_SECONDS, rate, rtt))
    finally:
        problems = []
        for a in agents:
            problems += conftest._teardown(a)
        if m:
            m.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        mt.remove_tls()
        if problems:
            print("\n".join(problems), file=sys.stderr)
    if OUT:
        cpus = os.cpu_count()
        with open(OUT, "w") as f:
            f.write("Written by `make bench` (tests/bench/sched_bench.py) on %d CPUs, kernel %s, "
                    "%s.\n\n" % (cpus, os.uname().release,
                                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
            f.write("**One allocation pass** of the DRF core (master/allocator.c, "
                    "tests/bench/alloc_bench.c): %d agents (4 to 64 CPUs, 8 to 256 GiB, one "
                    "in ten with a role reservation), %d frameworks in 10 roles (weights 1-3, "
                    "one role with a guarantee), every framework hungry and every agent idle "
                    "(the worst case: %d offers made), 31 passes:\n\n"
                    % (core["agents"], core["frameworks"], core["offers"]))
            f.write("| pass | p50 | p90 | max |\n|---|---|---|---|\n")
            for k, label in (("idle_ms", "everything free (one offer per agent and role)"),
                             ("full_ms", "nothing free (the steady state of a full cluster)"),
                             ("floor_ms", "floor: the books of those offers alone "
                              "(one drf_charge each)")):
                f.write("| %s | %.2f ms | %.2f ms | %.2f ms |\n"
                        % (label, core[k]["p50"], core[k]["p90"], core[k]["max"]))
            f.write("\nThe aim was < 50 ms median. **Offers per second** through berth-master "
                    "with 3 real agents: a Python framework that DECLINEs every offer with "
                    "refuse_seconds 0 (each answer frees the agents and runs a pass at once): "
                    "%d offers in %d OFFERS events in %.0f s, **%.0f offers/s**; floor: the "
                    "same client's bare round trip (a new TLS connection per call, as for the "
                    "DECLINE), %.0f GET /health per second: the client's round trips bound it, "
                    "the pass over three agents is microseconds. **ACCEPT -> RUNNING** with "
                    "one real agent (a `sleep` task, 0.1 CPU / 16 MiB, %d one at a time, from "
                    "the ACCEPT sent to the RUNNING update read on the stream): p50 %.1f ms, "
                    "p99 %.1f ms, max %.1f ms; floor: the same task launched on the agent "
                    "directly (POST /v1/containers, polled every 2 ms until RUNNING): p50 %.1f "
                    "ms, p99 %.1f ms.\n" % (n_offers, answers, OFFER_SECONDS, rate, rtt, len(lat),
                               pct(lat, .5) * 1e3, pct(lat, .99) * 1e3, max(lat) * 1e3,
                               pct(direct, .5) * 1e3, pct(direct, .99) * 1e3))


if __name__ == "__main__":
    main()
