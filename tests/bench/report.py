# SPDX-License-Identifier: Apache-2.0
"""tests/bench/report.py RESULTS_DIR DOC.md - the last step of `make bench`: read what
run.sh left in RESULTS_DIR (berth.json and crun.json from timecmd.py for (a) and (b);
latency.json and latency-idle.json from launch_latency.py for (c); floor-*.json;
attach.json), print a summary table and rewrite the "## Launch" section of DOC.md (other
sections are kept) with the figures, the machine and the verdict against the targets:
(a) <= (b)/2 by median, (c) < 5 ms median."""

import datetime
import json
import os
import platform
import re
import statistics
import sys

from launch_latency import pct


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def load(path):
    with open(path) as f:
        return json.load(f)


def cmd_stats(path):
    """median/p90/p99/max (ms) of the one command of a timecmd/hyperfine export."""
    t = sorted(x * 1e3 for x in load(path)["results"][0]["times"])
    return {"n": len(t), "median_ms": statistics.median(t), "p90_ms": pct(t, 90),
            "p99_ms": pct(t, 99), "min_ms": t[0], "max_ms": t[-1]}


def main():
    d, doc = sys.argv[1], sys.argv[2]
    a = cmd_stats(os.path.join(d, "berth.json"))
    b = cmd_stats(os.path.join(d, "crun.json"))
    lat = load(os.path.join(d, "latency.json"))
    idle = load(os.path.join(d, "latency-idle.json"))
    c, ci = lat["summary"], idle["summary"]
    floors = {k: cmd_stats(os.path.join(d, "floor-%s.json" % k))
              for k in ("ctl", "crun", "static")}
    attach = load(os.path.join(d, "attach.json"))
    ratio = a["median_ms"] / b["median_ms"]
    ok_a, ok_c = ratio <= 0.5, c["median_ms"] < 5.0
    la = os.getloadavg()
    machine = "%d CPUs (nproc), %s, kernel %s, load average %.2f %.2f %.2f at the end, %s" % (
        len(os.sched_getaffinity(0)), cpu_model(), platform.release(), la[0], la[1], la[2],
        datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))

    def row(name, s):
        return "| %s | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms |" % (
            name, s["n"], s["median_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"])

    ph, phi = lat["phases"], idle["phases"]
    rows = [
        row("(a) `berthctl run --wait --cpus 1 --mem 1GiB -- /bin/true`, end to end", a),
        row("(b) `crun run`, same limits and namespaces, busybox-static rootfs", b),
        row("(c) API launch latency: POST sent -> task's first instruction, back to back", c),
        row("(c') the same, launches 50 ms apart (idle node)", ci),
        row("(c) phase: POST answered (201), back to back", dict(ph["post_answered"], n=c["n"])),
        row("(c) phase: first instruction -> GET .../wait answered", dict(
            ph["first_instruction_to_wait_answered"], n=c["n"])),
        row("(c') phase: POST answered, 50 ms apart", dict(phi["post_answered"], n=ci["n"])),
        row("floor: `berthctl --version` (process start-up; section \"CLI start-up\")",
            floors["ctl"]),
        row("floor: `crun --version`", floors["crun"]),
        row("floor: a static no-op binary (tests/bench/stamp)", floors["static"]),
    ]
    header = ["| what | runs | median | p90 | p99 | max |", "|---|---|---|---|---|---|"]
    verdict = [
        "- Ratio (a)/(b) by median: **%.2f** (target <= 0.50: **%s**)."
        % (ratio, "met" if ok_a else "not met"),
        "- (c) median **%.2f ms**, p90 %.2f ms, p99 %.2f ms (target < 5 ms median: **%s**); "
        "on an idle node (c') median %.2f ms." % (c["median_ms"], c["p90_ms"], c["p99_ms"],
                                                  "met" if ok_c else "not met", ci["median_ms"]),
    ]
    if attach:
        verdict.append(
            "- cgroup v1 attach of a new process (tests/bench/cg_attach.py, 50 ms apart): parent "
            "writes its pid to cgroup.procs %.2f ms median (max %.2f); the child writes `0` to "
            "`tasks` itself %.3f ms median." % (
                attach["cgroup.procs"]["median_ms"], attach["cgroup.procs"]["max_ms"],
                attach["tasks"]["median_ms"]))

    print()
    print("== launch benchmark on %s" % machine)
    for line in header + rows + [""] + verdict:
        print(line)

    section = ["## Launch", "",
               "Written by `make bench` (tests/bench/run.sh); rerun it rather than editing "
               "this section.", "", "Machine: %s." % machine, ""]
    section += header + rows + [""] + verdict + [
        "",
        "How: (a), (b) and the floors are timed by tests/bench/timecmd.py like `hyperfine -N` "
        "(3 warm-up runs, then %d runs, spawn to reaped exit, no shell). (b) runs in a private "
        "mount namespace with an empty file over `/sys/fs/cgroup/unified/cgroup.controllers` "
        "(crun 1.8.1 refuses the hybrid layout otherwise), `--cgroup-manager=cgroupfs`, and our "
        "own cgroup bound over each hierarchy's mount point so crun's cgroups nest under ours. "
        "(c) is tests/bench/launch_latency.py: %d sequential launches of the static "
        "tests/bench/stamp.c (cpus 0.1, mem 64MiB) on an open connection, t0 = "
        "time.time_ns() just before the request is sent, latency = the CLOCK_REALTIME the task "
        "prints first - t0; each container is waited for, its stdout read and deleted before "
        "the next launch; (c') is 30 more launches with 50 ms pauses." % (a["n"], c["n"]),
        "",
    ]
    text = open(doc).read() if os.path.exists(doc) else ""
    if not text.strip():
        text = ("# berth performance\n\nLaunch cost of a berth sandbox against crun, measured by "
                "`make bench`.\n\n")
    new = "\n".join(section)
    m = re.search(r"^## Launch[ \t]*$", text, re.M)
    if m:
        nxt = re.search(r"^## ", text[m.end():], re.M)
        end = m.end() + nxt.start() if nxt else len(text)
        text = text[:m.start()] + new + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + new
    with open(doc, "w") as f:
        f.write(text.rstrip("\n") + "\n")
    print("\nwrote the Launch section of %s" % doc)


if __name__ == "__main__":
    main()
