# SPDX-License-Identifier: Apache-2.0
"""tests/bench/recovery.py BUILD_DIR DOC.md - the recovery step of `make bench` (issue #6
item 4): start berth-agent, launch N (BENCH_RECOVERY_N, default 1000) sleeping containers,
then restart the agent 3 times after SIGTERM and 3 times after SIGKILL and time each start
until it serves (t0 = just before exec, serving = the first GET /health answered; polled
every 2 ms) and until GET /v1/containers lists all N RUNNING with their pids unchanged;
finally `--recover=cleanup` kills them all (timed too). Prints a table and rewrites the
"## Recovery" section of DOC.md (other sections are kept). Target: < 1 s to serving.
Removes every process, cgroup and temp dir it made, also on failure."""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
import berthtest as bt  # noqa: E402


class Bench:
    def __init__(self, build, n):
        self.build, self.n = build, n
        self.tmp = tempfile.mkdtemp(prefix="berth-bench-recovery-", dir="/var/tmp")
        os.chmod(self.tmp, 0o755)
        self.work = os.path.join(self.tmp, "work")
        self.sock = os.path.join(self.tmp, "agent.sock")
        self.log_path = os.path.join(self.tmp, "agent.log")
        self.parent = "berth-bench-recovery-%d" % os.getpid()
        conf = os.path.join(self.tmp, "agent.conf")
        with open(conf, "w") as f:
            # room for N tiny tasks whatever the host: the bench measures bookkeeping
            f.write("[resources]\ncpus = %d\nmem = %dGiB\npids = 4194304\n"
                    "[reserved]\ncpus = 0\nmem = 0\n"
                    % (n, max(16, n * 8 // 1024 + 1)))
        self.argv = [os.path.join(build, "berth-agent"), "--config=" + conf,
                     "--work_dir=" + self.work, "--listen=unix:" + self.sock,
                     "--cgroup_parent=" + self.parent,
                     "--executor=" + os.path.join(build, "berth-executor")]
        self.proc = None

    def conn(self):
        return bt.UnixHTTPConnection(self.sock, timeout=60)

    def request(self, method, path, body=None):
        c = self.conn()
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data,
                      headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            c.close()

    def start(self, extra=()):
        """Start the agent; returns (seconds to serving)."""
        logf = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv + list(extra), stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("berth-agent exited %s:\n%s" % (self.proc.returncode,
                                                                   bt.read(self.log_path, "")))
            try:
                st, _ = self.request("GET", "/health")
                if st == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            if time.monotonic() - t0 > 60:
                raise RuntimeError("no /health after 60 s")
            time.sleep(0.002)

    def stop(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(60)

    def launch_all(self):
        ids, errors, lock = [], [], threading.Lock()

        def worker(k):
            for i in range(k, self.n, 4):
                body = {"name": "r%04d" % i, "command": {"argv": ["sleep", "86400"]},
                        "resources": {"cpus": 0.001, "mem": "8MiB", "pids": 8}}
                try:
                    st, c = self.request("POST", "/v1/containers", body)
                except OSError as e:
                    st, c = 0, str(e)
                with lock:
                    (ids.append(c["id"]) if st == 201 else errors.append((st, c)))
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise RuntimeError("launches failed: %s" % errors[:3])
        return ids

    def listing(self):
        st, body = self.request("GET", "/v1/containers")
        assert st == 200, body
        return {c["id"]: c for c in body["containers"]}

    def cleanup(self):
        """Whatever happened: stop the agent, kill what is left under our parent cgroup."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for d in bt.own_cgroup_dirs().values():
            p = os.path.join(d, self.parent)
            if os.path.isdir(p):
                bt.kill_cgroup_tree(p)
        for pid in bt.procs_mentioning(self.tmp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def log_ms(text):
    """The agent's own figure of its last recovery ("recovered N record(s) in X ms")."""
    m = re.findall(r"recovered (\d+) record\(s\) in ([0-9.]+) ms", text)
    return float(m[-1][1]) if m else None


def main():
    build, doc = os.path.abspath(sys.argv[1]), sys.argv[2]
    n = int(os.environ.get("BENCH_RECOVERY_N", "1000"))
    b = Bench(build, n)
    res = {"n": n, "runs": []}
    try:
        b.start()
        t = time.monotonic()
        ids = b.launch_all()
        res["launch_s"] = time.monotonic() - t
        deadline = time.monotonic() + 120
        while True:
            cs = b.listing()
            if all(cs[i]["state"] == "RUNNING" for i in ids):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("not all RUNNING after 120 s")
            time.sleep(0.2)
        pids = {i: cs[i]["pid"] for i in ids}
        print("%d containers RUNNING (launched in %.1f s)" % (n, res["launch_s"]))
        for how in ("SIGTERM", "SIGKILL") * 3:
            b.stop(signal.SIGTERM if how == "SIGTERM" else signal.SIGKILL)
            serving = b.start()
            t = time.monotonic()
            cs = b.listing()
            listed = serving + time.monotonic() - t
            bad = [i for i in ids if cs[i]["state"] != "RUNNING" or cs[i]["pid"] != pids[i]]
            if bad:
                raise RuntimeError("%d containers not re-adopted: %s" % (len(bad), cs[bad[0]]))
            run = {"how": how, "serving_s": serving, "listed_s": listed,
                   "agent_ms": log_ms(bt.read(b.log_path, ""))}
            res["runs"].append(run)
            print("%-8s start -> serving %.0f ms, -> %d listed RUNNING %.0f ms (recovery "
                  "itself %.1f ms)" % (how, serving * 1e3, n, listed * 1e3, run["agent_ms"]))
        b.stop(signal.SIGTERM)
        alive = sum(1 for p in pids.values() if bt.alive(p))
        t = time.monotonic()
        res["cleanup_serving_s"] = b.start(["--recover=cleanup"])
        left = sum(1 for p in pids.values() if bt.alive(p))
        print("--recover=cleanup: %d -> %d executors alive, serving after %.0f ms" % (
            alive, left, (time.monotonic() - t) * 1e3))
        res["cleanup_left"] = left
        b.stop(signal.SIGTERM)
    finally:
        b.cleanup()
    write_doc(doc, res)


def write_doc(doc, res):
    def med(k, how):
        return statistics.median(r[k] for r in res["runs"] if r["how"] == how)

    worst = max(r["serving_s"] for r in res["runs"])
    la = os.getloadavg()
    lines = [
        "## Recovery", "",
        "Written by `make bench` (tests/bench/recovery.py); rerun it rather than editing this "
        "section. %d running containers (`sleep`, each with its own executor and cgroups), "
        "the agent restarted 3 times after SIGTERM and 3 times after SIGKILL; %d CPUs, load "
        "average %.2f at the end, %s." % (
            res["n"], len(os.sched_getaffinity(0)), la[0],
            time.strftime("%Y-%m-%d %H:%M %Z")), "",
        "| restart after (median of 3) | start -> serving | start -> all %d listed RUNNING | "
        "recovery inside the agent (its log) |" % res["n"],
        "|---|---|---|---|",
    ]
    for how in ("SIGTERM", "SIGKILL"):
        lines.append("| %s | %.0f ms | %.0f ms | %.1f ms |" % (
            how, med("serving_s", how) * 1e3, med("listed_s", how) * 1e3,
            med("agent_ms", how)))
    lines += [
        "",
        "Target < 1 s from start to serving: %s (worst of 6: %.0f ms). Serving means GET "
        "/health answers, after every container was re-adopted (same pid and start time, in "
        "its cgroups) and the orphan sweep ran. `--recover=cleanup` then killed all %d and "
        "served after %.0f ms (%d executors left). Launching the %d took %.1f s." % (
            "met" if worst < 1.0 else "MISSED", worst * 1e3, res["n"],
            res["cleanup_serving_s"] * 1e3, res["cleanup_left"], res["n"], res["launch_s"]),
        "",
    ]
    text = open(doc).read() if os.path.exists(doc) else "# berth performance\n\n"
    new = "\n".join(lines)
    m = re.search(r"^## Recovery[ \t]*$", text, re.M)
    if m:
        nxt = re.search(r"^## ", text[m.end():], re.M)
        end = m.end() + nxt.start() if nxt else len(text)
        text = text[:m.start()] + new + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + new
    with open(doc, "w") as f:
        f.write(text.rstrip("\n") + "\n")
    print("wrote the Recovery section of %s" % doc)


if __name__ == "__main__":
    main()
