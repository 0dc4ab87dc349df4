# SPDX-License-Identifier: Apache-2.0
"""tests/bench/loopturns.py - the agent loop's turns, from the kernel's view: `perf trace` of
epoll_wait on the loop's thread (the agent's main thread); a turn is the time from one
epoll_wait's return to the next epoll_wait's call, i.e. what the loop did (or waited for: a
CPU, a vfork, a lock) between two looks at its sockets. issue #18's "longest loop stall"
is the longest turn. GET /health's wait, which launch_path.py also reports, adds the
client's own scheduling. perf's tracepoints cost the traced thread a little per syscall.

    with LoopTurns(pid) as t:
        ...
    t.turns  # seconds, in order

LoopTurns.available() says whether perf can trace here (linux-perf, root)."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

LINE = re.compile(r"\s*([\d.]+) \(\s*([\d.]+) ms\): .*epoll_wait")


def turns_of(text):
    """The turns (seconds) in perf trace's output: each epoll_wait seen whole (its start
    and duration, in ms; a call split around another event is printed again whole as
    "[continued]", with the same start), the gap to the next one's start."""
    calls = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            start, dur = float(m.group(1)), float(m.group(2))
            if not calls or calls[-1][0] != start:
                calls.append((start, dur))
    return [max(0.0, (b[0] - (a[0] + a[1])) / 1000) for a, b in zip(calls, calls[1:])]


class LoopTurns:
    def __init__(self, pid):
        self.pid = pid
        self.turns = []
        self.proc = None
        self.out = None

    @staticmethod
    def available():
        return os.geteuid() == 0 and shutil.which("perf") is not None

    def __enter__(self):
        fd, self.out = tempfile.mkstemp(prefix="berth-turns-", suffix=".txt")
        self.proc = subprocess.Popen(["perf", "trace", "-e", "epoll_wait", "-t", str(self.pid)],
                                     stdout=subprocess.DEVNULL, stderr=fd)
        os.close(fd)
        # attached once it has seen a call (the agent's loop wakes at least every 100 ms)
        deadline = time.monotonic() + 10
        while "epoll_wait" not in open(self.out).read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError("perf trace did not attach to %d" % self.pid)
            time.sleep(0.01)
        return self

    def _stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        text = open(self.out).read() if self.out and os.path.exists(self.out) else ""
        if self.out:
            os.unlink(self.out)
            self.out = None
        return text

    def __exit__(self, *exc):
        self.turns = turns_of(self._stop())
        return False

    def summary(self):
        """(p99, longest) in seconds; NaN without turns."""
        t = sorted(self.turns)
        if not t:
            return float("nan"), float("nan")
        return t[min(len(t) - 1, int(len(t) * 0.99))], t[-1]
