# SPDX-License-Identifier: Apache-2.0
"""tests/bench/cg_attach.py CGROUP_NAME OUT.json [RUNS] - the cost of putting a new process
into a cgroup v1, the step that dominates a berth launch on an idle v1 host: a fresh child
is moved into CGROUP_NAME (made under our own cgroup in the cpu hierarchy, removed at the
end) either (A) by its parent writing the child's pid to cgroup.procs, which is what
berth-agent and crun do, or (B) by the child itself writing "0" to `tasks` (a single
thread moving itself skips the global threadgroup lock and its RCU grace period).
Runs are 50 ms apart, as launches on a quiet node are. Skips on hosts without a v1 cpu
hierarchy."""

import json
import os
import statistics
import sys
import time


def own_cpu_dir():
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if "cpu" in ctrls.split(","):
                base = "/sys/fs/cgroup/" + ctrls
                if not os.path.isdir(base):
                    base = "/sys/fs/cgroup/cpu"
                return os.path.join(base, path.lstrip("/"))
    return None


def attach(cg, self_move):
    """Fork a child and move it into cg; returns the duration of the write (ns)."""
    rd, wr = os.pipe()
    go_rd, go_wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:  # never return into the parent's code from the child
            os.close(rd)
            os.close(go_wr)
            dt = 0
            if self_move:
                fd = os.open(os.path.join(cg, "tasks"), os.O_WRONLY | os.O_CLOEXEC)
                t0 = time.perf_counter_ns()
                os.write(fd, b"0")
                dt = time.perf_counter_ns() - t0
            else:
                os.read(go_rd, 1)  # wait until the parent has moved us
            os.write(wr, str(dt).encode())
            os._exit(0)
        finally:
            os._exit(1)
    os.close(wr)
    os.close(go_rd)
    dt = None
    if not self_move:
        fd = os.open(os.path.join(cg, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        t0 = time.perf_counter_ns()
        os.write(fd, str(pid).encode())
        dt = time.perf_counter_ns() - t0
        os.close(fd)
    os.write(go_wr, b"x")
    child_dt = int(os.read(rd, 64) or b"0")
    os.close(rd)
    os.close(go_wr)
    os.waitpid(pid, 0)
    return dt if dt is not None else child_dt


def main():
    name, out = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    base = own_cpu_dir()
    if not base or not os.path.exists(os.path.join(base, "tasks")):
        print("  no cgroup v1 cpu hierarchy: skipped")
        with open(out, "w") as f:
            json.dump({}, f)
        return
    cg = os.path.join(base, name)
    os.mkdir(cg)
    try:
        res = {}
        for label, self_move in (("cgroup.procs", False), ("tasks", True)):
            vals = []
            for _ in range(runs):
                time.sleep(0.05)
                vals.append(attach(cg, self_move) / 1e6)
            res[label] = {"median_ms": statistics.median(vals), "max_ms": max(vals),
                          "min_ms": min(vals), "n": runs}
    finally:
        os.rmdir(cg)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print("  parent writes pid to cgroup.procs: median %.2f ms (max %.2f); child writes 0 to "
          "tasks: median %.3f ms (max %.3f)" % (res["cgroup.procs"]["median_ms"],
                                                res["cgroup.procs"]["max_ms"],
                                                res["tasks"]["median_ms"], res["tasks"]["max_ms"]))


if __name__ == "__main__":
    main()
