#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/cli_start.py BUILD SOCK NOOP CURL_NOOP DOC - berthctl's start-up (issue #18),
against floors measured in the same run, interleaved (one run of each command per round, so
that the machine's noise falls on all of them alike), medians over BENCH_CLI_RUNS (200):

- `berthctl --version` and `berthctl ps` on the agent's socket SOCK, spawn to reaped exit;
- start-up to first byte: `berthctl ps` against a stand-in socket served by this script,
  from just before the spawn to the moment the request's first byte is read (no agent work
  in it), the same for `berthctl --master http://127.0.0.1:PORT agents` against a stand-in
  TCP listener (libcurl loaded with dlopen);
- floors: NOOP (a static no-op), CURL_NOOP (a no-op linked with -lcurl: what every berthctl
  call paid before) and `crun --version`.

Prints a table and rewrites the "CLI start-up" section of DOC. Figures are printed, never
asserted (the targets are in the text)."""

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
          b'{"containers":[]}')
MASTER_ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
                 b'{"agents":[]}')


class StandIn:
    """A listener that answers each connection's first request with a canned answer and
    records when the first byte of it arrived (time.perf_counter_ns)."""

    def __init__(self, sock, answer):
        self.sock, self.answer = sock, answer
        self.first_byte = None
        self.got = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                t = time.perf_counter_ns()
                if not data:
                    continue
                self.first_byte = t
                self.got.set()
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                conn.sendall(self.answer)
                conn.recv(1)  # until the client closes

    def time_to_first_byte(self, argv):
        self.got.clear()
        t0 = time.perf_counter_ns()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if r.returncode != 0 or not self.got.wait(5):
            sys.exit("cli_start: %s exited %d: %s" % (" ".join(argv), r.returncode, r.stderr))
        return (self.first_byte - t0) / 1e9


def wall(argv):
    t0 = time.perf_counter_ns()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    t1 = time.perf_counter_ns()
    if r.returncode != 0:
        sys.exit("cli_start: %s exited %d: %s" % (" ".join(argv), r.returncode, r.stderr))
    return (t1 - t0) / 1e9


def pct(sorted_times, p):
    return sorted_times[min(len(sorted_times) - 1, int(len(sorted_times) * p))]


def main():
    build, sock, noop, curl_noop, doc = sys.argv[1:6]
    runs = int(os.environ.get("BENCH_CLI_RUNS") or 200)
    ctl = os.path.join(build, "berthctl")
    tmp = tempfile.mkdtemp(prefix="berth-cli-start.")
    try:
        local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        local.bind(os.path.join(tmp, "stand-in.sock"))
        local.listen(16)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(16)
        fake_agent, fake_master = StandIn(local, ANSWER), StandIn(tcp, MASTER_ANSWER)
        url = "http://127.0.0.1:%d" % tcp.getsockname()[1]
        cases = [
            ("`berthctl --version`", lambda: wall([ctl, "--version"])),
            ("`berthctl ps` on the agent's socket, spawn to exit",
             lambda: wall([ctl, "--socket", sock, "ps"])),
            ("`berthctl ps`: spawn to the request's first byte (stand-in socket)",
             lambda: fake_agent.time_to_first_byte(
                 [ctl, "--socket", os.path.join(tmp, "stand-in.sock"), "ps"])),
            ("`berthctl --master URL agents`: spawn to first byte (libcurl dlopen'ed, http)",
             lambda: fake_master.time_to_first_byte([ctl, "--master", url, "agents"])),
            ("floor: a static no-op", lambda: wall([noop])),
            ("floor: a no-op linked with -lcurl (berthctl's start-up before #18)",
             lambda: wall([curl_noop])),
            ("floor: `crun --version`", lambda: wall(["crun", "--version"])),
        ]
        times = [[] for _ in cases]
        for n in range(runs + 5):  # 5 warm-up rounds
            for i, (_, fn) in enumerate(cases):
                t = fn()
                if n >= 5:
                    times[i].append(t)
        local.close()
        tcp.close()
    finally:
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)

    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    distro = "Linux"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    lines = [
        "Written by `make bench` (tests/bench/cli_start.py); rerun it rather than editing this "
        "section.",
        "",
        "Machine: %s, %d CPUs (%s), %.0f GiB, kernel %s, load average %s at the end, %s." % (
            distro, os.cpu_count(), model, mem_gib, platform.release(), load,
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
        "",
        "| what | runs | median | p90 | max |",
        "|---|---|---|---|---|",
    ]
    med = {}
    for (name, _), t in zip(cases, times):
        s = sorted(t)
        med[name] = statistics.median(s)
        lines.append("| %s | %d | %.2f ms | %.2f ms | %.2f ms |" % (
            name, len(s), med[name] * 1e3, pct(s, 0.9) * 1e3, s[-1] * 1e3))
    names = [c[0] for c in cases]
    lines += [
        "",
        "- `berthctl ps` (spawn to exit) over the static no-op floor: **+%.2f ms**; "
        "issue #18's target for `--version` and `ps` is <= 1.5 ms median." % (
            (med[names[1]] - med[names[4]]) * 1e3),
        "- What the local path saves: the -lcurl no-op floor minus the static one, **%.2f ms** "
        "of every call before #18." % ((med[names[5]] - med[names[4]]) * 1e3),
        "",
        "How: all commands run in turn, round after round (5 warm-up rounds, then %d), each "
        "timed from just before the spawn (time.perf_counter_ns) to its reaped exit, or to "
        "the first byte of its request read by a stand-in listener of this script (a thread "
        "blocked in recv(), which answers with a canned 200), output to /dev/null, no shell." % (
            runs),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with tempfile.NamedTemporaryFile("w", prefix="berth-cli-start.", suffix=".md") as f:
        f.write(text)
        f.flush()
        subprocess.run([sys.executable, os.path.join(HERE, "section.py"), doc, "CLI start-up",
                        f.name], check=True)


if __name__ == "__main__":
    main()
