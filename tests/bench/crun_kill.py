#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/crun_kill.py SOCK BUNDLE STATE_DIR RUNS OUT_MD - `make bench` (b2), issue #18's
must-show 2 against crun in the same run: a 0.001-CPU `sleep` (quota 1 ms per 100 ms period:
the kernel's least quota, which the agent writes for 0.001 CPU on cgroup v1) is killed right after it starts and
0.25 s after it (a fresh period), RUNS times, berth and crun taking turns.
berth: POST /v1/containers (the agent on SOCK), polled until RUNNING, then t0, POST .../kill
{signal KILL, grace 0} and GET .../wait (the agent's long poll: answered when the container is
terminal, its cgroups gone) -> t1. crun: `crun run -d` of BUNDLE's copy with the same
limits, its pid from `crun state`, a pidfd on it, then t0, `crun kill ID KILL`, the pidfd
readable (the process is gone) -> t1, and `crun delete ID` -> t2 (crun removes the cgroups in
delete). Run by run.sh through crun_ns.sh (a private mount namespace where crun accepts the
hybrid layout and nests its cgroups under ours). Writes a markdown section body to OUT_MD;
never asserts timings."""

import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from launch_latency import call  # noqa: E402


def berth_once(sock, n, settle):
    body = json.dumps({"name": "bench-kill-%d" % n, "command": {"shell": "exec sleep 1000"},
                       "resources": {"cpus": 0.001, "mem": "32MiB"}}).encode()
    c = json.loads(call(sock, "POST", "/v1/containers", body, want=(201,)))
    cid = c["id"]
    deadline = time.monotonic() + 30
    while json.loads(call(sock, "GET", "/v1/containers/" + cid))["state"] != "RUNNING":
        if time.monotonic() > deadline:
            raise RuntimeError("%s not RUNNING in 30 s" % cid)
        time.sleep(0.001)
    time.sleep(settle)
    t0 = time.monotonic()
    call(sock, "POST", "/v1/containers/%s/kill" % cid,
         json.dumps({"signal": "KILL", "grace_seconds": 0}).encode(), want=(202,))
    end = json.loads(call(sock, "GET", "/v1/containers/%s/wait" % cid))
    t1 = time.monotonic()
    if end["state"] not in ("KILLED", "FAILED", "FINISHED"):
        raise RuntimeError("%s ended %r" % (cid, end["state"]))
    call(sock, "DELETE", "/v1/containers/" + cid, want=(200, 204))
    return t1 - t0


def crun_bundle(src, dst):
    """BUNDLE's rootfs and config.json, the process a `sleep 1000` of 0.001 CPU."""
    os.makedirs(dst)
    os.symlink(os.path.join(src, "rootfs"), os.path.join(dst, "rootfs"))
    spec = json.load(open(os.path.join(src, "config.json")))
    spec["process"]["args"] = ["/bin/sleep", "1000"]
    spec["linux"]["resources"]["cpu"] = {"quota": 1000, "period": 100000, "shares": 2}
    spec["linux"]["resources"]["memory"] = {"limit": 32 << 20}
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(spec, f)


def crun_once(crun, bundle, n, settle):
    cid = "bench-kill-%d-%d" % (os.getpid(), n)
    subprocess.run(crun + ["run", "-d", "--bundle", bundle, cid], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        pid = json.loads(subprocess.run(crun + ["state", cid], check=True,
                                        capture_output=True).stdout)["pid"]
        pfd = os.pidfd_open(pid)
        time.sleep(settle)
        try:
            t0 = time.monotonic()
            subprocess.run(crun + ["kill", cid, "KILL"], check=True)
            p = select.poll()
            p.register(pfd, select.POLLIN)
            if not p.poll(30000):
                raise RuntimeError("crun's %s did not end in 30 s" % cid)
            t1 = time.monotonic()
        finally:
            os.close(pfd)
        subprocess.run(crun + ["delete", cid], check=True)
        t2 = time.monotonic()
    except BaseException:
        subprocess.run(crun + ["delete", "-f", cid], stderr=subprocess.DEVNULL)
        raise
    return t1 - t0, t2 - t0


def main():
    sock, bundle, state, runs, out = sys.argv[1:6]
    runs = int(runs)
    crun = ["crun", "--root", state, "--cgroup-manager=cgroupfs"]
    kb = bundle.rstrip("/") + "-kill"
    crun_bundle(bundle, kb)
    med = lambda v: statistics.median(v) * 1000  # noqa: E731
    rows, ratios = [], []
    try:
        for settle, when in ((0, "right after the start"), (0.25, "0.25 s after the start")):
            ours, gone, deleted = [], [], []
            for n in range(runs + 3):  # 3 warm-up rounds of each, then RUNS, taking turns
                b = berth_once(sock, n, settle)
                g, d = crun_once(crun, kb, n, settle)
                if n >= 3:
                    ours.append(b)
                    gone.append(g)
                    deleted.append(d)
            rows += [("%s - berth: kill (KILL, grace 0) -> GET .../wait answered (KILLED, "
                      "cgroups gone)" % when, med(ours), max(ours) * 1000),
                     ("%s - crun: `crun kill ID KILL` -> the process is gone (pidfd)" % when,
                      med(gone), max(gone) * 1000),
                     ("%s - crun: the same, then `crun delete ID` returned (cgroups gone)" % when,
                      med(deleted), max(deleted) * 1000)]
            ratios.append((when, med(ours) / med(deleted)))
    finally:
        shutil.rmtree(kb, ignore_errors=True)
    load = os.getloadavg()
    with open(out, "w") as f:
        f.write("Written by `make bench` (tests/bench/crun_kill.py) on %d CPUs, kernel %s, %s, "
                "load average %.2f %.2f %.2f at the end. Issue #18's must-show 2 (kill -> "
                "KILLED within 2x crun's): a 0.001-CPU `sleep` (quota 1 ms / 100 ms, the least the kernel takes) killed "
                "right after it runs and 0.25 s later, %d times each (after 3 warm-up rounds), berth and crun "
                "1.8 taking turns.\n\n" % (os.cpu_count(), os.uname().release,
                                           time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                           load[0], load[1], load[2], runs))
        f.write("| what | median | max |\n|---|---|---|\n")
        for name, m, x in rows:
            f.write("| %s | %.2f ms | %.2f ms |\n" % (name, m, x))
        f.write("\nRatio berth / crun (to the cgroups gone) by median: %s (issue: <= 2).\n"
                % "; ".join("%s **%.2f**" % r for r in ratios))
        f.write("\nRight after the start crun's `sleep` has spent its period's quota on crun's "
                "own set-up, which runs in the container's cgroup before the exec, so its exit "
                "waits for the next period; berth's executor is charged to the agent's "
                "supervisor cgroup, not the task's.\n")
    for name, m, x in rows:
        print("%-80s median %.2f ms, max %.2f ms" % (name, m, x))


if __name__ == "__main__":
    main()
