# SPDX-License-Identifier: Apache-2.0
"""tests/system/lbtest.py - helpers of the berth-lb tests (issue #17): a berth-lb following a
berth-apps of appstest.py and driving its own HAProxy (run dir in the test's temp dir, every
frontend on 127.0.0.1, ports the test picked), HAProxy's processes (master from the pid file,
workers its children) and its runtime API, a web app whose instances answer GET /id with
their port, and a paced HTTP load. The fixture `lb_factory` stops berth-lb and ends HAProxy
by pid (master and workers), whatever happened."""

import http.client
import os
import shutil
import signal
import socket
import tempfile
import threading
import time

import pytest

import appstest as at
import berthtest as bt
import mastertest as mt

LB_BIN = os.path.join(bt.BUILD, "berth-lb")
HAPROXY = "/usr/sbin/haproxy"

# an instance: GET /id answers its port (python's http.server serves its sandbox)
WEB_ID = "echo $PORT0 > id; exec python3 -m http.server --bind 127.0.0.1 $PORT0"


def web_app(service_port, instances=3, vhost="web.example", app_id="web", **extra):
    app = at.web_app(app_id, instances, command=WEB_ID,
                     ports=[{"name": "http", "service_port": service_port}], **extra)
    if vhost:
        app["labels"] = {"lb.vhost": vhost}
    return app


def children(pid):
    """The pids whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        if int(st.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(d))
    return sorted(out)


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Lb:
    """berth-lb for berth-apps apps, HAProxy's files in tmp/run."""

    def __init__(self, tmp, apps, http_port, flags=()):
        self.tmp = tmp
        self.run = os.path.join(tmp, "run")
        self.http_port = http_port
        self.log_path = os.path.join(tmp, "lb.log")
        self.proc = None
        self.argv = [LB_BIN, "--config=/dev/null", "--apps=" + apps.url,
                     "--token_file=" + apps.token_file, "--apps_ca=" + apps.ca,
                     "--haproxy=" + HAPROXY, "--run_dir=" + self.run, "--bind=127.0.0.1",
                     "--http_port=%d" % http_port, "--log_level=debug"] + list(flags)
        self.masters = set()  # every HAProxy master seen, for the cleanup

    @property
    def log(self):
        return bt.read(self.log_path, "")

    def start(self):
        logf = open(self.log_path, "ab")
        try:
            self.proc = bt.subprocess.Popen(self.argv, stdin=bt.subprocess.DEVNULL, stdout=logf,
                                            stderr=bt.subprocess.STDOUT, close_fds=True)
        finally:
            logf.close()
        return self

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.remember_master()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except bt.subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed after %ss" % timeout

    # -- HAProxy --
    def master(self):
        try:
            with open(os.path.join(self.run, "haproxy.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        if alive(pid):
            self.masters.add(pid)
            return pid
        return None

    def remember_master(self):
        self.master()

    def workers(self):
        m = self.master()
        return [p for p in children(m) if alive(p)] if m else []

    def cfg(self):
        return bt.read(os.path.join(self.run, "haproxy.cfg"), "")

    def runtime(self, cmd, timeout=5):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        try:
            s.connect(os.path.join(self.run, "haproxy.sock"))
            s.sendall(cmd.encode() + b"\n")
            data = b""
            while True:
                x = s.recv(65536)
                if not x:
                    return data.decode()
                data += x
        finally:
            s.close()

    def servers(self, backend="b_web_0"):
        """{(addr, port): admin-and-op state} of the backend's servers, from HAProxy."""
        text = self.runtime("show servers state " + backend)
        lines = [l for l in text.splitlines() if l.strip()]
        heads = [l for l in lines if l.startswith("# be_id")]
        if not heads:  # "Can't find backend": not (yet) a backend of the process that answered
            return {}
        head = heads[0][2:].split()
        out = {}
        for l in lines:
            if l[0] in "#0123456789" and not l.startswith("#") and len(l.split()) >= len(head):
                row = dict(zip(head, l.split()))
                out[row["srv_name"]] = row
        return out

    def ready_ports(self, backend="b_web_0"):
        """The ports of the servers HAProxy sends new connections to: no maint or drain bit
        in the admin state (0x4, configured maint, stays from the template's `disabled`)."""
        return sorted(int(r["srv_port"]) for r in self.servers(backend).values()
                      if int(r["srv_admin_state"]) & ~4 == 0)

    def haproxies(self):
        """Every process whose command line names this run dir (HAProxy's)."""
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        if (self.run + "/").encode() in f.read():
                            out.append(int(d))
                except OSError:
                    pass
        return out

    def cleanup(self):
        self.stop()
        self.remember_master()
        pids = set(self.haproxies())
        for m in self.masters:
            if alive(m):
                pids.update(children(m))
                pids.add(m)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        for p in pids:
            bt.wait_for(lambda: not alive(p), 10, what="HAProxy pid %d to end" % p)


@pytest.fixture
def lb_factory():
    made = []

    def make(apps, flags=()):
        tmp = tempfile.mkdtemp(prefix="berth-test-lb-%d-" % os.getpid(), dir=bt.TMP_BASE)
        lb = Lb(tmp, apps, mt.free_port(), flags)
        made.append(lb)
        return lb.start()

    yield make
    problems = []
    for lb in made:
        rc = lb.stop()
        if rc not in (0, None):
            problems.append("berth-lb stop: exit status %s\n%s" % (rc, lb.log[-3000:]))
        problems += ["berth-lb: " + p for p in bt.SANITIZER_PATTERNS if p in lb.log]
        lb.cleanup()
        shutil.rmtree(lb.tmp, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def get(port, path="/id", host=None, timeout=5):
    """(status, body) of one GET on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace").strip()
    finally:
        conn.close()


def served_ports(port, n, host=None):
    """The instance ports n requests through the LB reached (every one must answer 200)."""
    seen = []
    for _ in range(n):
        st, body = get(port, host=host)
        assert st == 200, (st, body)
        seen.append(int(body))
    return seen


class Load:
    """rate requests/s on port (GET /id, a new connection each) from threads, for at most
    seconds; counts answers and failures (anything but 200, with what it was)."""

    def __init__(self, port, rate, seconds, threads=8):
        self.port, self.rate, self.seconds = port, rate, seconds
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i, threads), daemon=True)
                        for i in range(threads)]

    def run(self, i, n):
        period = n / self.rate
        start = time.monotonic() + i * period / n
        k = 0
        while not self.stop_ev.is_set():
            t = start + k * period
            if t - start > self.seconds:
                return
            d = t - time.monotonic()
            if d > 0:
                time.sleep(d)
            k += 1
            try:
                st, body = get(self.port, timeout=10)
                err = None if st == 200 else "HTTP %d %s" % (st, body[:100])
            except OSError as e:
                err = repr(e)
            with self.lock:
                if err:
                    self.failures.append((time.monotonic(), err))
                else:
                    self.ok += 1

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def join(self):
        for t in self.threads:
            t.join(self.seconds + 60)
        return self

    def stop(self):
        self.stop_ev.set()
        return self.join()
