# SPDX-License-Identifier: Apache-2.0
"""tests/bench/launch_path.py BUILD_DIR [DOC.md] - make bench, issue #18: the launch path
beyond one `run --wait`, on an agent with a private work_dir and cgroup_parent (hostile.py's
start_agent), everything it makes removed at the end:
  (1) a 0.001-CPU `sleep` task: POST -> RUNNING and kill -> KILLED medians, against the same
      for a 1-CPU task; the CPU its cgroup was charged over launch and teardown (the task is
      a static no-op: its whole cpuacct/cpu.stat usage at the end);
  (2) 1,000 `sleep` launches from 8 clients (burst.c) to all RUNNING, then 1,000 kill +
      remove to every cgroup gone, while a ninth client times GET /health every 10 ms, and
      perf traces the loop's turns (loopturns.py: the loop's longest stall, the client's
      scheduling apart);
  (3) `berthctl --version`, `berthctl ps` and `berthctl stats --no-stream ID` on the socket;
  (4) berth-executor's Pss with one task and USS at 100 tasks (smem's sums of
      /proc/PID/smaps_rollup).
  (5) (2) again with the agent's work_dir on an ext4 *with* a journal (a loop image mounted
      for the run): without one (this machine kind's root), ext4 scans past every inode
      deleted in the last minutes at each inode it creates, and the figures follow the
      disk's recent history more than berth (docs/performance.md).
Prints a table and, given DOC.md, rewrites its "## Launch path" section. BENCH_LP_N (1000)
and BENCH_LP_RUNS (20) scale it down."""

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
sys.path.insert(0, HERE)
import berthtest as bt  # noqa: E402
from hostile import start_agent, stop_agent  # noqa: E402
from loopturns import LoopTurns  # noqa: E402

N = int(os.environ.get("BENCH_LP_N") or 1000)
RUNS = int(os.environ.get("BENCH_LP_RUNS") or 20)


def med(v):
    return statistics.median(v) if v else float("nan")


def running_after_post(a, cpus, cmd="sleep 1000"):
    """(POST -> RUNNING seconds, id): the launch answered, then polled until RUNNING."""
    t0 = time.monotonic()
    c = a.launch(shell=cmd, cpus=cpus, mem="32MiB")
    bt.wait_for(lambda: a.inspect(c["id"])["state"] == "RUNNING", 30, interval=0.001,
                what="RUNNING")
    return time.monotonic() - t0, c["id"]


def kill_to_end(a, cid):
    t0 = time.monotonic()
    st, _ = a.post("/v1/containers/%s/kill" % cid, {"signal": "TERM", "grace_seconds": 0})
    assert st == 202, st
    # the agent's long poll answers when the container is terminal: no polling interval in
    # the figure (wait_terminal polls every 50 ms, which was all this measured)
    st, c = a.get("/v1/containers/%s/wait" % cid, timeout=30)
    assert st == 200 and c["state"] in bt.TERMINAL, (st, c)
    return time.monotonic() - t0


def tiny_task(a):
    out = {}
    for cpus in (1, 0.001):
        ups, kills = [], []
        for _ in range(RUNS):
            up, cid = running_after_post(a, cpus)
            ups.append(up)
            kills.append(kill_to_end(a, cid))
            a.delete("/v1/containers/" + cid)
        out[cpus] = (med(ups), med(kills))
    # what launch and teardown cost the task's own cgroup: a static task that does nothing
    # (tests/helpers/probe.c `exit 0`: no dynamic loader to count)
    charged = []
    for _ in range(RUNS):
        c = a.launch(argv=[bt.PROBE, "exit", "0"], cpus=0.001, mem="32MiB")
        end = a.wait_terminal(c["id"], timeout=30)
        charged.append((end.get("usage") or {}).get("cpu_seconds", float("nan")))
        a.delete("/v1/containers/" + c["id"])
    out["charged"] = med(charged)
    out["floor"] = charge_floor(a)
    return out


def charge_floor(a):
    """What the same static no-op costs its cgroups with nothing of berth's around it: a
    bare fork, join and exec (`probe chargefloor`), in sibling cgroups of a task's own, made
    here and removed again. The kernel's exec and exit: no runtime charges less."""
    c = a.launch(shell="sleep 1000", cpus=1, mem="32MiB")
    a.wait_state(c["id"], "RUNNING")
    cgs = a.inspect(c["id"])["cgroups"]
    kill_to_end(a, c["id"])
    a.delete("/v1/containers/" + c["id"])
    dirs = sorted({os.path.join(os.path.dirname(p), "charge-floor") for p in cgs.values()})
    v2 = any(os.path.exists(os.path.join(os.path.dirname(p), "cgroup.controllers"))
             for p in cgs.values())
    try:
        for d in dirs:
            os.mkdir(d)
        if v2:
            usage = os.path.join(dirs[0], "cpu.stat")
            join = [os.path.join(dirs[0], "cgroup.procs")]
        else:
            acct = [d for d in dirs if "cpuacct" in d.split("/")[-3]]
            usage = os.path.join(acct[0], "cpuacct.usage")
            join = [os.path.join(d, "tasks") for d in dirs]
        r = subprocess.run([bt.PROBE, "chargefloor", str(RUNS), usage] + join,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r
        return int(r.stdout.split("=")[1]) / 1e9
    finally:
        for d in dirs:
            if os.path.isdir(d):
                os.rmdir(d)


def health_poller(a, stop, worst):
    while not stop.is_set():
        t0 = time.monotonic()
        a.get("/health", timeout=60)
        worst[0] = max(worst[0], time.monotonic() - t0)
        time.sleep(0.01)


def traced(a):
    """The loop's turns during a phase (loopturns.py), or a no-op without perf."""
    return LoopTurns(a.proc.pid) if LoopTurns.available() else contextlib.nullcontext()


def build_burst(build):
    """tests/bench/burst.c, the bursts' 8 clients (libcurl and yajl, a thread each)."""
    global BURST
    BURST = os.path.join(build, "bench", "burst")
    os.makedirs(os.path.dirname(BURST), exist_ok=True)
    subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-pthread", "-o", BURST, os.path.join(HERE, "burst.c"), "-lcurl", "-lyajl"],
                   check=True)


BURST = None
# `sleep` itself, as crun runs it (a shell first would add its own exec and start-up)
SLEEP_BODY = json.dumps({"command": {"argv": ["/bin/sleep", "1000"]},
                         "resources": {"cpus": 0.001, "mem": "8MiB"}})


def many(a):
    """(all RUNNING s, every cgroup gone s, longest GET /health up, down, loop turns up,
    down): the turns' (p99, longest) in s, None without perf. The 8 clients are burst.c's:
    Python's http.client in 8 threads used ~1 s of the two CPUs per 1,000 requests, a third
    of what the burst measures."""
    stop, worst = threading.Event(), [0.0]
    th = threading.Thread(target=health_poller, args=(a, stop, worst))
    th.start()
    try:
        with traced(a) as turns_up:
            t0 = time.monotonic()
            ids = subprocess.run([BURST, "launch", a.sock, str(N), "8", SLEEP_BODY],
                                 capture_output=True, text=True, check=True).stdout.split()
            assert len(ids) == N, "burst launched %d of %d" % (len(ids), N)
            # counted by GET /metrics: listing 1,000 containers every 20 ms would itself
            # hold the loop ~10 ms a time and be the stall measured
            bt.wait_for(lambda: a.metric('berth_containers{state="RUNNING"}') >= N, 120,
                        interval=0.02, what="%d RUNNING" % N)
            t_up = time.monotonic() - t0
        stall_up = worst[0]
        worst[0] = 0.0

        dirs = list(a.parent_dirs.values())
        own = ("supervisor", "freeze-hold")  # the agent's (v1's freeze hold: cgroup-v1.c)
        with traced(a) as turns_down:
            t0 = time.monotonic()
            # each: POST .../kill (SIGKILL, grace 0), GET .../wait, DELETE
            subprocess.run([BURST, "kill", a.sock, "8"], input="\n".join(ids), text=True,
                           check=True)
            bt.wait_for(lambda: not any(n not in own and os.path.isdir(os.path.join(d, n))
                                        for d in dirs if os.path.isdir(d)
                                        for n in os.listdir(d)),
                        60, interval=0.02, what="every container cgroup gone")
            t_down = time.monotonic() - t0
        stall_down = worst[0]
    finally:
        stop.set()
        th.join()
    return (t_up, t_down, stall_up, stall_down, turns_up and turns_up.summary(),
            turns_down and turns_down.summary())


def many_journaled(build):
    """many() on a fresh agent whose work_dir is on a journaled ext4 loop image, made,
    mounted and removed here; None when this machine cannot (no loop device)."""
    img = tempfile.mkdtemp(prefix="berth-lp-img-", dir="/var/tmp")
    mnt = os.path.join(img, "mnt")
    os.mkdir(mnt)
    try:
        with open(os.path.join(img, "fs"), "wb") as f:
            f.truncate(2 << 30)
        # inode tables and journal written now: no ext4lazyinit writing under the run
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        os.path.join(img, "fs")], check=True, capture_output=True)
        if subprocess.run(["mount", "-o", "loop", os.path.join(img, "fs"), mnt],
                          capture_output=True).returncode != 0:
            return None
        try:
            os.chmod(mnt, 0o755)
            a = start_agent(build, 6, base=mnt)
            try:
                return many(a)
            finally:
                stop_agent(a)
        finally:
            if subprocess.run(["umount", mnt]).returncode != 0:
                subprocess.run(["umount", "-l", mnt], check=True)
    finally:
        shutil.rmtree(img, ignore_errors=True)


def ctl_times(build, a):
    ctl = os.path.join(build, "berthctl")
    c = a.launch(shell="exec sleep 1000", cpus=0.01, mem="16MiB")
    a.wait_state(c["id"], "RUNNING")
    res = {}
    for name, argv in (("--version", [ctl, "--version"]),
                       ("ps", [ctl, "--socket", a.sock, "ps"]),
                       ("stats --no-stream", [ctl, "--socket", a.sock, "stats", "--no-stream",
                                              c["id"]])):
        t = []
        for _ in range(RUNS):
            t0 = time.monotonic()
            subprocess.run(argv, capture_output=True, check=True)
            t.append(time.monotonic() - t0)
        res[name] = med(t)
    a.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL"})
    a.wait_terminal(c["id"])
    return res


def rollup(pid):
    got = {}
    for line in bt.read("/proc/%d/smaps_rollup" % pid).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            got[parts[0][:-1]] = int(parts[1])
    return got


def executor_memory(a):
    ids = [a.launch(shell="exec sleep 1000", cpus=0.001, mem="8MiB")["id"] for _ in range(100)]
    for cid in ids:
        a.wait_state(cid, "RUNNING")
    one = rollup(a.inspect(ids[0])["pid"])
    uss = [rollup(a.inspect(cid)["pid"]) for cid in ids]
    a.kill_all()
    return one.get("Pss", 0), med([u.get("Private_Clean", 0) + u.get("Private_Dirty", 0)
                                   for u in uss])


def turn_rows(prefix, up, down):
    """The loop's turns (loopturns.py) as table rows; none without perf."""
    if not up or not down:
        return []
    f = lambda t: "%.1f / %.1f ms" % (t[0] * 1000, t[1] * 1000)  # noqa: E731
    return [(prefix + "the loop's turns during the launches, p99 / longest (perf trace)", f(up)),
            (prefix + "the loop's turns during the kills, p99 / longest", f(down))]


def main():
    build = sys.argv[1]
    doc = sys.argv[2] if len(sys.argv) > 2 else None
    build_burst(build)
    bt.install_probe()
    a = start_agent(build, 5)
    try:
        tiny = tiny_task(a)
        t_up, t_down, stall_up, stall_down, turns_up, turns_down = many(a)
        ctl = ctl_times(build, a)
        pss_one, uss_100 = executor_memory(a)
    finally:
        stop_agent(a)
    try:
        journaled = many_journaled(build)
    finally:
        bt.remove_probe()
    ms = lambda s: "%.1f ms" % (s * 1000)  # noqa: E731
    rows = [
        ("0.001-CPU `sleep`: POST -> RUNNING (median of %d)" % RUNS, ms(tiny[0.001][0])),
        ("1-CPU `sleep`: POST -> RUNNING", ms(tiny[1][0])),
        ("0.001-CPU task: kill (grace 0) -> KILLED", ms(tiny[0.001][1])),
        ("1-CPU task: kill (grace 0) -> KILLED", ms(tiny[1][1])),
        ("CPU charged to the task's cgroup, launch to end of a static no-op",
         "%.2f ms" % (tiny["charged"] * 1000)),
        ("the same no-op's bare fork + join + exec + exit (floor, `probe chargefloor`)",
         "%.2f ms" % (tiny["floor"] * 1000)),
        ("%d `sleep` launches from 8 clients (burst.c) -> all RUNNING" % N, "%.2f s" % t_up),
        ("%d kill + remove -> every cgroup gone" % N, "%.2f s" % t_down),
        ("longest GET /health during the launches / the kills", "%s / %s" % (ms(stall_up),
                                                                            ms(stall_down))),
    ]
    rows += turn_rows("", turns_up, turns_down)
    if journaled:
        rows += [
            ("the same %d launches, work_dir on a journaled ext4 (loop image)" % N,
             "%.2f s" % journaled[0]),
            ("... kill + remove", "%.2f s" % journaled[1]),
            ("... longest GET /health during the launches / the kills",
             "%s / %s" % (ms(journaled[2]), ms(journaled[3]))),
        ]
        rows += turn_rows("... ", journaled[4], journaled[5])
    rows += [
        ("`berthctl --version`", ms(ctl["--version"])),
        ("`berthctl ps` (one container)", ms(ctl["ps"])),
        ("`berthctl stats --no-stream ID`", ms(ctl["stats --no-stream"])),
        ("berth-executor Pss with one task / USS at 100 tasks", "%d kB / %d kB" % (pss_one,
                                                                                   uss_100)),
    ]
    la = os.getloadavg()
    text = ["Written by `make bench` (tests/bench/launch_path.py) on %d CPUs, kernel %s, %s, "
            "load average %.1f." % (os.cpu_count(), os.uname().release,
                                    time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), la[0]),
            "", "| what | measured |", "|---|---|"]
    text += ["| %s | %s |" % r for r in rows]
    out = "\n".join(text) + "\n"
    print(out)
    if doc:
        tmp = os.path.join(tempfile.gettempdir(), "berth-lp-%d.md" % os.getpid())
        with open(tmp, "w") as f:
            f.write(out)
        subprocess.run([sys.executable, os.path.join(HERE, "section.py"), doc, "Launch path",
                        tmp], check=True)
        os.unlink(tmp)


if __name__ == "__main__":
    main()
