# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_top.py - berthctl's live views in a real terminal: `top` and `stats ID`
run inside a detached tmux session (its own server socket), read back with capture-pane and
driven with send-keys: rows and changing figures, q / Ctrl-C / SIGTERM / Ctrl-Z, and the
terminal given back each time (main screen, cursor, echo and canonical mode, as stty sees
them). Without a terminal, both print one frame and exit."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import berthtest as bt

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux not installed (Debian package tmux, make deps)")

END = "== shell after berthctl =="


class Tmux:
    """One private tmux server (socket in its own temp dir) with one session 't'."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="berth-tmux-")
        self.sock = os.path.join(self.dir, "sock")
        self.pane_pid = None

    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null"] + list(args),
                           capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, TERM="xterm"))
        if check:
            assert r.returncode == 0, r
        return r

    def start(self, shell_cmd, width=160, height=40):
        """Run shell_cmd with sh in a fresh width x height session."""
        self.tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                  "sh -c %s" % shlex.quote(shell_cmd))
        self.pane_pid = int(self.fmt("#{pane_pid}"))

    def run_ctl(self, agent, *args):
        """berthctl ARGS on the session's terminal; afterwards the shell prints the exit
        status, the terminal's settings (stty -a) and END, and stays (so the pane stays).
        sh traps SIGINT (a handler, which exec resets) so Ctrl-C ends only berthctl."""
        ctl = " ".join(shlex.quote(a) for a in
                       [bt.CTL_BIN, "--socket", agent.sock] + [str(a) for a in args])
        self.start("trap : INT; %s; echo \"rc=$?\"; stty -a; echo %s; exec sleep 600"
                   % (ctl, shlex.quote(END)))

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t").stdout

    def fmt(self, f):
        return self.tmux("display-message", "-p", "-t", "t", f).stdout.strip()

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def wait_screen(self, pred, timeout=10.0, what="screen"):
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; screen:\n%s" % (what, s))
            time.sleep(0.1)

    def ctl_pid(self):
        """Pid of berthctl: the child of the pane's sh running it."""
        kids = bt.read("/proc/%d/task/%d/children" % (self.pane_pid, self.pane_pid), "").split()
        pids = [int(p) for p in kids if bt.proc_comm(int(p)) == "berthctl"]
        assert len(pids) == 1, (kids, pids)
        return pids[0]

    def close(self):
        self.tmux("kill-server", check=False)
        if self.pane_pid:
            bt.wait_for(lambda: not bt.alive(self.pane_pid), 5, what="tmux pane gone")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def tmux():
    t = Tmux()
    try:
        yield t
    finally:
        t.close()


def rows(screen, *names):
    """{name: [cells]} of the table rows on screen whose NAME cell is among names."""
    out = {}
    for line in screen.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 8 and cells[1] in names:
            out[cells[1]] = cells
    return out


def pct(cell):
    assert cell.endswith("%"), cell
    return float(cell[:-1])


def assert_restored(t, status):
    """berthctl exited with status and left the terminal as it found it."""
    s = t.wait_screen(lambda s: END in s, what="berthctl to exit")
    assert "rc=%d" % status in s, s
    assert t.fmt("#{alternate_on}") == "0", "still on the alternate screen"
    assert t.fmt("#{cursor_flag}") == "1", "cursor left hidden"
    stty = s[s.index("rc="):]
    assert re.search(r"(?<![-\w])icanon\b", stty) and re.search(r"(?<![-\w])echo\b", stty), \
        "terminal left without canonical mode / echo:\n" + stty
    assert "CPU% HOST" not in s, "the table was drawn on the main screen:\n" + s


def start_tasks(agent):
    spin = agent.probe("spin", 120, 1, cpus=0.5, cpus_limit=1, name="spinner")
    sleep = agent.launch(["sleep", "120"], name="sleeper")
    agent.wait_state(spin["id"], "RUNNING")
    agent.wait_state(sleep["id"], "RUNNING")
    return spin, sleep


def test_top_live_in_tmux_quits_on_q(agent, tmux):
    spin, sleep = start_tasks(agent)
    tmux.run_ctl(agent, "top")
    first = tmux.wait_screen(lambda s: len(rows(s, "spinner", "sleeper")) == 2,
                             what="both tasks in top")
    assert tmux.fmt("#{alternate_on}") == "1", "top is not on the alternate screen"
    assert tmux.fmt("#{cursor_flag}") == "0", "top shows the cursor"
    r = rows(first, "spinner", "sleeper")
    assert r["spinner"][0] == spin["id"][:12] and r["sleeper"][0] == sleep["id"][:12], r
    lines = first.splitlines()
    assert lines[0].startswith("berthctl top ") and "2 containers" in lines[0], lines[0]
    assert lines[1].startswith("node:") and " cores " in lines[1], lines[1]
    header = [l for l in lines if l.startswith("ID ")][0]
    assert re.split(r"\s{3,}", header) == ["ID", "NAME", "STATE", "CPU%", "CPU% HOST",
                                           "MEM USAGE / LIMIT", "MEM%", "PIDS"], header
    # the figures move: wait (up to 8 s) for a frame whose CPU figures of the spinner differ
    # from the first one; then check they are plausible for 1 busy thread under a 1-CPU quota
    # on a node that says it has 4 cpus (BASE_CONF)
    cpu0 = r["spinner"][3:5]
    t0 = time.monotonic()
    second = tmux.wait_screen(lambda s: rows(s, "spinner").get("spinner", cpu0)[3:5] != cpu0,
                              timeout=8, what="the spinner's CPU figures to change")
    print("CPU figures changed after %.1fs: %s -> %s" % (
        time.monotonic() - t0, cpu0, rows(second, "spinner")["spinner"][3:5]))
    s2 = rows(second, "spinner", "sleeper")
    assert 40 <= pct(s2["spinner"][3]) <= 115, s2["spinner"]  # of its own 1-CPU limit
    assert 10 <= pct(s2["spinner"][4]) <= 29, s2["spinner"]   # of the node's 4 cpus
    assert pct(s2["sleeper"][3]) < 5, s2["sleeper"]
    assert s2["sleeper"][5].endswith("/ 64.0MiB") and int(s2["sleeper"][7]) >= 1, s2["sleeper"]
    assert "q: quit" in second.splitlines()[-1], second
    tmux.keys("q")
    assert_restored(tmux, 0)


def test_top_ctrl_c_and_sigterm_restore_the_terminal(agent, tmux):
    agent.launch(["sleep", "120"], name="sleeper")
    tmux.run_ctl(agent, "top", "--interval", "0.2")
    tmux.wait_screen(lambda s: "sleeper" in s, what="top")
    tmux.keys("C-c")
    assert_restored(tmux, 0)
    tmux.tmux("kill-session", "-t", "t")
    bt.wait_for(lambda: not bt.alive(tmux.pane_pid), 5, what="old pane gone")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        tmux.run_ctl(agent, "top")
        tmux.wait_screen(lambda s: "sleeper" in s, what="top")
        os.kill(tmux.ctl_pid(), sig)
        assert_restored(tmux, 128 + sig)
        tmux.tmux("kill-session", "-t", "t")
        bt.wait_for(lambda: not bt.alive(tmux.pane_pid), 5, what="old pane gone")


def test_top_fits_the_window_and_redraws_on_resize(agent, tmux):
    for i in range(6):
        agent.launch(["sleep", "120"], name="s%d" % i)
    # a refresh every minute: whatever changes on screen before that is a redraw on SIGWINCH
    tmux.run_ctl(agent, "top", "--interval", "60")
    tmux.tmux("resize-window", "-t", "t", "-x", "50", "-y", "8")
    s = tmux.wait_screen(lambda s: "... 4 more" in s, what="the rows cut to the height")
    lines = s.rstrip("\n").split("\n")
    assert len(lines) == 8 and all(len(l) <= 50 for l in lines), lines
    # lines are cut at the width, not wrapped: each row starts where it should
    assert lines[0].startswith("berthctl top ") and lines[1].startswith("node: "), lines
    assert lines[3].startswith("ID ") and re.match(r"[0-9a-f]{12}   s5 ", lines[4]), lines
    assert lines[6] == "... 4 more" and lines[7].startswith("q: quit"), lines
    tmux.tmux("resize-window", "-t", "t", "-x", "160", "-y", "20")
    s = tmux.wait_screen(lambda s: len(rows(s, *["s%d" % i for i in range(6)])) == 6,
                         timeout=5, what="all rows after the resize")
    assert "more" not in s and "MEM USAGE / LIMIT" in s, s
    tmux.keys("q")
    assert_restored(tmux, 0)


def test_top_suspends_on_ctrl_z_and_resumes(agent, tmux):
    agent.launch(["sleep", "120"], name="sleeper")
    # an interactive shell with job control, so Ctrl-Z stops berthctl and `fg` resumes it
    tmux.start("PS1='$ ' exec bash --norc --noprofile -i")
    tmux.wait_screen(lambda s: s.rstrip().endswith("$"), what="the prompt")
    tmux.keys("%s --socket %s top" % (bt.CTL_BIN, agent.sock), "Enter")
    tmux.wait_screen(lambda s: "sleeper" in s and "CPU% HOST" in s, what="top")
    assert tmux.fmt("#{alternate_on}") == "1"
    tmux.keys("C-z")
    s = tmux.wait_screen(lambda s: "Stopped" in s, what="the job to stop")
    assert tmux.fmt("#{alternate_on}") == "0" and tmux.fmt("#{cursor_flag}") == "1", s
    tmux.keys("stty -a", "Enter")
    s = tmux.wait_screen(lambda s: "icanon" in s, what="stty")
    assert re.search(r"(?<![-\w])icanon\b", s) and re.search(r"(?<![-\w])echo\b", s), s
    tmux.keys("fg", "Enter")
    tmux.wait_screen(lambda s: "sleeper" in s and "CPU% HOST" in s, what="top again")
    assert tmux.fmt("#{alternate_on}") == "1"
    tmux.keys("q")
    tmux.wait_screen(lambda s: s.rstrip().endswith("$") and "CPU% HOST" not in s,
                     what="the prompt after q")
    assert tmux.fmt("#{alternate_on}") == "0" and tmux.fmt("#{cursor_flag}") == "1"
    tmux.keys("echo rc=$?", "Enter")
    tmux.wait_screen(lambda s: "\nrc=0" in s, what="exit status 0")


def test_top_without_a_terminal_prints_one_frame(agent):
    spin, sleep = start_tasks(agent)
    t0 = time.monotonic()
    r = agent.ctl("top", timeout=10)
    took = time.monotonic() - t0
    assert r.returncode == 0 and r.stderr == "", r
    assert "\033" not in r.stdout, "escape sequences in the non-terminal output"
    assert took < 3, "top without a terminal took %.1fs" % took
    got = rows(r.stdout, "spinner", "sleeper")
    assert got["spinner"][0] == spin["id"][:12] and got["sleeper"][0] == sleep["id"][:12], r
    assert r.stdout.splitlines()[1].startswith("node:"), r.stdout
    # ended containers are not shown
    agent.ctl("kill", "-s", "KILL", "sleeper")
    agent.wait_terminal(sleep["id"])
    r = agent.ctl("top", "--no-stream")
    assert r.returncode == 0 and "spinner" in r.stdout and "sleeper" not in r.stdout, r
    assert "1 container\n" in r.stdout.splitlines()[0] + "\n", r.stdout
    r = subprocess.run([bt.CTL_BIN, "--socket", agent.sock + ".nonexistent", "top"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r
    assert r.stderr.startswith("berthctl: cannot connect to the agent at "), r
    for bad in (["--interval", "0"], ["--interval", "x"], ["extra"]):
        r = agent.ctl("top", *bad)
        assert r.returncode == 1 and r.stderr.startswith("berthctl: top: "), (bad, r)


def test_top_does_not_wait_forever_for_a_hung_agent(tmp_path):
    # a socket that accepts connections (the kernel's backlog) but never answers
    path = str(tmp_path / "hung.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(path)
        srv.listen(8)
        t0 = time.monotonic()
        r = subprocess.run([bt.CTL_BIN, "--socket", path, "top"], capture_output=True,
                           text=True, timeout=30)
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r
    assert 4.5 <= took <= 8, "top gave up after %.1fs, not the 5 s call timeout" % took


def test_stats_live_until_the_container_is_removed(agent, tmux):
    c = agent.probe("spin", 120, 1, cpus=0.5, cpus_limit=1, name="spinner")
    agent.wait_state(c["id"], "RUNNING")
    # not a terminal: one line, as before
    r = agent.ctl("stats", "spinner")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r
    # ... from one request: CPU% is the agent's own rate (usage.cpu_cores), the spinner's ~100%
    def cpu_pct():
        r = agent.ctl("stats", "spinner")
        assert r.returncode == 0, r
        m = re.search(r"\s(\d+\.\d)%\s", r.stdout.splitlines()[1])
        return m and float(m.group(1)) >= 50
    bt.wait_for(cpu_pct, 15, interval=0.2, what="stats to show the spinner's CPU rate")
    t0 = time.monotonic()
    assert agent.ctl("stats", "--no-stream", "spinner").returncode == 0
    assert time.monotonic() - t0 < 0.5, "stats --no-stream slept 0.5 s for a second sample"
    # a terminal: live, like `docker stats ID`
    tmux.run_ctl(agent, "stats", "spinner")
    first = tmux.wait_screen(lambda s: "spinner" in rows(s, "spinner"), what="stats")
    assert first.splitlines()[0].startswith("berthctl stats spinner "), first
    assert tmux.fmt("#{alternate_on}") == "1"
    cpu0 = rows(first, "spinner")["spinner"][3:5]
    tmux.wait_screen(lambda s: rows(s, "spinner").get("spinner", cpu0)[3:5] != cpu0,
                     timeout=8, what="the CPU figures to change")
    # the container ends: its row stays, with its state; removed: the view ends with an error
    agent.ctl("kill", "-s", "KILL", "spinner")
    tmux.wait_screen(lambda s: rows(s, "spinner").get("spinner", ["", "", ""])[2] == "KILLED",
                     what="the KILLED state")
    assert agent.ctl("rm", "spinner").returncode == 0
    assert_restored(tmux, 1)
    assert "berthctl: no container 'spinner'" in tmux.screen()


def test_stats_no_stream_on_a_terminal(agent, tmux):
    agent.launch(["sleep", "120"], name="sleeper")
    tmux.run_ctl(agent, "stats", "--no-stream", "sleeper")
    s = tmux.wait_screen(lambda s: END in s, what="stats --no-stream to exit")
    assert "rc=0" in s and "THROTTLED" in s and "sleeper" in s, s


def test_top_shows_agent_errors_and_recovers(agent_factory, tmux):
    a = agent_factory()
    tmux.run_ctl(a, "top", "--interval", "0.2")
    tmux.wait_screen(lambda s: "0 containers" in s, what="top")
    assert a.stop() == 0
    s = tmux.wait_screen(lambda s: "error: cannot connect to the agent" in s,
                         what="the error line")
    assert s.splitlines()[-1].startswith("error: "), s
    a.start()
    tmux.wait_screen(lambda s: "error:" not in s and "q: quit" in s, what="the error to clear")
    tmux.keys("q")
    assert_restored(tmux, 0)
