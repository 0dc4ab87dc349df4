# SPDX-License-Identifier: Apache-2.0
"""tests/bench/timecmd.py OUT.json WARMUP RUNS CMD ARGS... - time a command end to end like
hyperfine -N (no shell): WARMUP untimed runs, then RUNS timed ones, each from just before
the spawn to the reaped exit (time.perf_counter_ns), output to /dev/null. "{n}" in an
argument is replaced by the run number (unique container ids for crun). A failing run
aborts. Writes hyperfine's export format ({"results": [{"command", "times" (s)}]}), so
report.py reads either."""

import json
import statistics
import subprocess
import sys
import time


def main():
    out, warmup, runs, cmd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    times = []
    for n in range(warmup + runs):
        argv = [a.replace("{n}", str(n)) for a in cmd]
        t0 = time.perf_counter_ns()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        t1 = time.perf_counter_ns()
        if r.returncode != 0:
            sys.exit("timecmd: %s exited %d" % (" ".join(argv), r.returncode))
        if n >= warmup:
            times.append((t1 - t0) / 1e9)
    with open(out, "w") as f:
        json.dump({"results": [{"command": " ".join(cmd), "times": times}]}, f, indent=1)
    s = sorted(times)
    print("  %-70.70s median %7.2f ms  min %7.2f  max %7.2f  (%d runs)"
          % (" ".join(cmd), statistics.median(s) * 1e3, s[0] * 1e3, s[-1] * 1e3, len(s)))


if __name__ == "__main__":
    main()
