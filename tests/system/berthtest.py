# SPDX-License-Identifier: Apache-2.0
"""tests/system/berthtest.py - shared helpers of the system tests: where the binaries are,
the host's cgroup hierarchies seen from our own cgroup, Daemon (start until /health answers,
stop, SIGKILL, sanitizer reports: the base of Agent here and of mastertest.Master), a client
for one running berth-agent (HTTP over its unix socket, berthctl, the container's cgroup
dirs), and leak checks. conftest.py builds the fixtures on top of it; the test_*.py files
use the client."""

import http.client
import json
import os
import signal
import shutil
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("BERTH_BUILD") or os.path.join(REPO, "build"))
AGENT_BIN = os.path.join(BUILD, "berth-agent")
EXECUTOR_BIN = os.path.join(BUILD, "berth-executor")
CTL_BIN = os.path.join(BUILD, "berthctl")
PROBE_BUILT = os.path.join(BUILD, "tests", "probe")
# Temp dirs live outside /tmp: a sandbox gets a private /tmp, which hides everything of the
# host's /tmp but its own sandbox dir.
TMP_BASE = os.environ.get("BERTH_TEST_TMP", "/var/tmp")
# Time factor for emulated machines: tests/vm runs this suite under qemu's TCG, several times
# slower than the host, with BERTH_TEST_SLOW set. Every wait (wait_for, agent start-up) and
# latency bound is multiplied by it; quotas, limits and counts never are. 1 on real hosts.
SLOW = float(os.environ.get("BERTH_TEST_SLOW") or 1)
# Tasks run the probe from here, not from the build dir: a checkout below /tmp (as a CI
# clone may be) is invisible inside a sandbox. conftest copies it at session start.
PROBE_DIR = os.path.join(TMP_BASE, "berth-test-probe-%d" % os.getpid())
PROBE = os.path.join(PROBE_DIR, "probe")


def install_probe():
    """Copy the built probe where every sandbox sees it (world-readable, executable)."""
    os.makedirs(PROBE_DIR, mode=0o755, exist_ok=True)
    os.chmod(PROBE_DIR, 0o755)
    try:
        shutil.copy(PROBE_BUILT, PROBE)
    except OSError:
        remove_probe()  # no probe built: leave no empty dir behind
        raise
    os.chmod(PROBE, 0o755)


def remove_probe():
    shutil.rmtree(PROBE_DIR, ignore_errors=True)

TERMINAL = ("FINISHED", "FAILED", "KILLED", "LOST")

# docker's default capability set (SPEC §4): what a root task keeps in its bounding set.
DOCKER_CAPS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
    "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}
DOCKER_CAP_MASK = sum(1 << b for b in DOCKER_CAPS.values())


# ---- host cgroups ------------------------------------------------------------------------

def cgroup_mounts():
    """{hierarchy key: (mount point, mount root)} of every cgroup mount. The key is the
    comma-joined controller list as in /proc/self/cgroup ("cpu", "name=systemd"), or "" for
    cgroup2."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) < 3:
                continue
            fstype, opts = rfields[0], rfields[2].split(",")
            if fstype == "cgroup2":
                mounts.setdefault("", (fields[4], fields[3]))
            elif fstype == "cgroup":
                ctrls = [o for o in opts if o not in ("rw", "ro") and "=" not in o
                         or o.startswith("name=")]
                known = set(ctrls) - {"noprefix", "clone_children", "xattr", "nsdelegate",
                                      "relatime", "nosuid", "nodev", "noexec"}
                key = ",".join(sorted(known))
                mounts.setdefault(key, (fields[4], fields[3]))
    return mounts


def own_cgroup_dirs():
    """{hierarchy key: absolute dir of OUR OWN cgroup in it}, from /proc/self/cgroup."""
    mounts = cgroup_mounts()
    dirs = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            key = ",".join(sorted(ctrls.split(","))) if ctrls else ""
            if key not in mounts:
                continue
            mnt, root = mounts[key]
            if root != "/" and path.startswith(root):
                path = path[len(root):]
            d = os.path.normpath(mnt + "/" + path.lstrip("/"))
            if os.path.isdir(d):
                dirs[key or "unified"] = d
    return dirs


def is_v2_host():
    return "" in cgroup_mounts() and not any(k for k in cgroup_mounts() if k)


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        if default is not None:
            return default
        raise


def read_int(path):
    return int(read(path).split()[0])


def cgroup_procs(d):
    """Pids in cgroup dir d and all its descendants."""
    pids = []
    for root, _, files in os.walk(d):
        if "cgroup.procs" in files:
            pids += [int(p) for p in read(os.path.join(root, "cgroup.procs"), "").split()]
    return pids


def _leaves_first(d):
    return [root for root, _, _ in os.walk(d, topdown=False)]


def kill_cgroup_tree(d):
    """SIGKILL every process in cgroup tree d (thawing frozen freezer cgroups first) and
    rmdir it leaves-first. Returns (pids killed, dirs that could not be removed)."""
    killed = []
    for _ in range(50):
        for sub in _leaves_first(d):
            st = os.path.join(sub, "freezer.state")
            if os.path.exists(st) and read(st, "").strip() != "THAWED":
                try:
                    with open(st, "w") as f:
                        f.write("THAWED")
                except OSError:
                    pass
        pids = cgroup_procs(d) if os.path.isdir(d) else []
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
                killed.append(p)
            except OSError:
                pass
        time.sleep(0.05)
    failed = []
    for sub in _leaves_first(d) if os.path.isdir(d) else []:
        for i in range(40):
            try:
                os.rmdir(sub)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
        else:
            failed.append(sub)
    return sorted(set(killed)), failed


def sweep_stale_cgroups():
    """Remove stale berth-test-* cgroups directly under our own cgroup in every hierarchy.
    berth-test-<pid>-<n> of another pytest that still runs (sessions share the cgroup on a
    shared host) is not stale: sweeping it would SIGKILL that session's tasks mid-test."""
    for d in own_cgroup_dirs().values():
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            p = os.path.join(d, n)
            owner = n.split("-")[2] if n.count("-") >= 3 else ""
            if owner.isdigit() and int(owner) != os.getpid() and alive(int(owner)):
                continue
            if n.startswith("berth-test-") and os.path.isdir(p):
                kill_cgroup_tree(p)


# ---- processes ---------------------------------------------------------------------------

def proc_start_time(pid):
    """Start time (clock ticks since boot) of pid, or None if it is gone or a zombie."""
    try:
        stat = read("/proc/%d/stat" % pid)
    except (OSError, ValueError):
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    return None if rest[0] in ("Z", "X") else int(rest[19])


def proc_cpu_ticks(pid):
    """utime + stime of process pid (all threads), in clock ticks."""
    stat = read("/proc/%d/stat" % pid)
    rest = stat[stat.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def proc_comm(pid):
    return read("/proc/%d/comm" % pid, "").strip()


def proc_nspid(pid):
    """The NSpid line of /proc/pid/status as a list of ints (host first, innermost last)."""
    for line in read("/proc/%d/status" % pid, "").splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []


def alive(pid, start=None):
    st = proc_start_time(pid)
    return st is not None and (start is None or st == start)


def parse_kv(text):
    """key=value lines -> dict (later keys win)."""
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def wait_for(cond, timeout, interval=0.05, what="condition"):
    """Poll cond() until it returns a truthy value; returns it, or raises AssertionError.
    timeout is scaled by SLOW."""
    timeout *= SLOW
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- HTTP over a unix socket ---------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def _decode(resp_body, ctype):
    text = resp_body.decode("utf-8", "replace")
    if "json" in (ctype or "") or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Daemon:
    """A berth daemon a test runs (Agent, mastertest.Master): its argv, its log file in its
    temp dir, start (until GET /health answers 200), stop (SIGTERM, then SIGKILL), SIGKILL,
    and the sanitizer reports (SAN=1 builds) of its log. Subclasses set NAME, build argv and
    implement request(method, path, body=None, raw=None, timeout=..., headers=None) ->
    (status, parsed JSON or text) for their transport."""

    NAME = "berth daemon"

    def __init__(self, tmp, log_name):
        self.tmp = tmp
        self.log_path = os.path.join(tmp, log_name)
        self.argv = []
        self.env, self.proc = None, None  # env: extra environment variables for the process

    @property
    def log(self):
        return read(self.log_path, "")

    # -- life cycle --
    def spawn(self):
        """Start the process with its output appended to the log; don't wait for it."""
        with open(self.log_path, "ab") as logf:  # the child has its copy
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, close_fds=True,
                                         env=dict(os.environ, **self.env) if self.env else None)
        return self.proc

    def start(self, timeout=5.0):
        """spawn(), then wait until GET /health answers 200 (timeout scaled by SLOW); fails
        with the log if the daemon exits or does not answer."""
        self.spawn()

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s during start-up:\n%s"
                                     % (self.NAME, self.proc.returncode, self.log))
            try:
                return self.request("GET", "/health", timeout=1)[0] == 200
            except OSError:
                return False
        try:
            wait_for(up, timeout, what="%s to answer GET /health" % self.NAME)
        except AssertionError as e:
            if self.proc.poll() is not None:
                raise
            raise AssertionError("%s:\n%s" % (e, self.log)) from None
        return self

    def stop(self, timeout=10.0):
        """SIGTERM the daemon, SIGKILL after timeout. Returns its exit status (None if it
        never ran, "killed after Ns" if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed after %ss" % timeout

    def kill9(self):
        """SIGKILL the daemon (a crash: what it runs keeps running) and reap it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def healthy(self):
        st, _ = self.request("GET", "/health", timeout=5)
        return st == 200

    def sanitized(self):  # a SAN=1 build (libasan mapped): its memory and CPU are ASan's
        return "libasan" in read("/proc/%d/maps" % self.proc.pid)

    def sanitizer_reports(self, paths=()):
        """Problems for the sanitizer reports in the log and in the files paths."""
        problems = []
        for path in [self.log_path] + list(paths):
            text = read(path, "")
            for pat in SANITIZER_PATTERNS:
                if pat in text:
                    i = text.index(pat)
                    problems.append("%s in %s:\n%s" % (pat, path, text[max(0, i - 200):i + 2000]))
        return problems

    # -- HTTP --
    def request(self, method, path, body=None, raw=None, timeout=30, headers=None):
        raise NotImplementedError

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class Agent(Daemon):
    """A running berth-agent and what the tests need to poke at it."""

    NAME = "berth-agent"

    def __init__(self, tmp, n, conf_text, flags):
        super().__init__(tmp, "agent.log")
        self.work = os.path.join(tmp, "work")
        # socket and work_dir in sibling dirs, as /run/berth and /var/lib/berth are
        self.sock = os.path.join(tmp, "run", "agent.sock")
        os.makedirs(os.path.dirname(self.sock), exist_ok=True)
        self.conf = os.path.join(tmp, "agent.conf")
        self.parent_name = "berth-test-%d-%d" % (os.getpid(), n)
        self.parent_dirs = {k: os.path.join(d, self.parent_name)
                            for k, d in own_cgroup_dirs().items()}
        self.seen = {}          # pid -> start time, every task/executor pid we saw
        self.seen_cgroups = set()
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.argv = [AGENT_BIN, "--config=" + self.conf, "--work_dir=" + self.work,
                     "--listen=unix:" + self.sock, "--cgroup_parent=" + self.parent_name,
                     "--executor=" + EXECUTOR_BIN] + list(flags)

    def run_foreground(self, timeout=10):
        """Run the agent to completion (for start-up failures): CompletedProcess, text."""
        return subprocess.run(self.argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    @property
    def work_dir(self):
        return self.work

    # -- HTTP --
    def request(self, method, path, body=None, raw=None, timeout=30, headers=None):
        """Returns (status, parsed JSON or text)."""
        conn = UnixHTTPConnection(self.sock, timeout=timeout)
        try:
            data = raw if raw is not None else (json.dumps(body).encode()
                                                if body is not None else None)
            h = {"Content-Type": "application/json"} if data is not None else {}
            h.update(headers or {})
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            return resp.status, _decode(resp.read(), resp.getheader("Content-Type"))
        finally:
            conn.close()

    # -- berthctl --
    def ctl(self, *args, timeout=60, **kw):
        return subprocess.run([CTL_BIN, "--socket", self.sock] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=timeout, **kw)

    # -- containers --
    def launch(self, argv=None, shell=None, cpus=0.25, mem="64MiB", expect=201, **extra):
        """POST /v1/containers; returns the container object (asserts the status)."""
        body = {"command": {"argv": list(argv)} if argv is not None else {"shell": shell},
                "resources": {"cpus": cpus, "mem": mem}}
        for k in ("cpus_limit", "pids"):
            if k in extra:
                body["resources"][k] = extra.pop(k)
        body.update(extra)
        st, c = self.post("/v1/containers", body)
        assert st == expect, "launch %r -> %s %r" % (body, st, c)
        if st == 201:
            self.note(c)
        return c

    def probe(self, *args, **kw):
        return self.launch([PROBE] + [str(a) for a in args], **kw)

    def inspect(self, cid):
        st, c = self.get("/v1/containers/" + cid)
        assert st == 200, "inspect %s -> %s %r" % (cid, st, c)
        self.note(c)
        return c

    def note(self, c):
        """Remember pids and cgroup dirs of a container for the leak checks."""
        if not isinstance(c, dict):
            return
        for d in (c.get("cgroups") or {}).values():
            self.seen_cgroups.add(d)
            if os.path.isdir(d):
                for p in cgroup_procs(d):
                    self.remember(p)
        if c.get("pid"):
            self.remember(c["pid"])

    def remember(self, pid):
        st = proc_start_time(pid)
        if st is not None:
            self.seen.setdefault(pid, st)

    def metric(self, sample):
        """GET /metrics' value of a sample as printed, e.g. 'berth_containers{state="RUNNING"}'."""
        st, text = self.get("/metrics")
        assert st == 200, st
        for line in text.splitlines():
            name, _, value = line.rpartition(" ")
            if name == sample:
                return float(value)
        raise AssertionError("no %s in GET /metrics" % sample)

    def cgroup_dirs(self, cid):
        """{controller: absolute cgroup dir} of the container, from its "cgroups" field."""
        c = self.inspect(cid)
        return dict(c.get("cgroups") or {})

    def ctrl_dir(self, dirs, filename):
        """The dir among dirs that holds control file filename (e.g. "cpuacct.usage")."""
        for d in dirs.values():
            if os.path.exists(os.path.join(d, filename)):
                return d
        raise AssertionError("no cgroup dir of %r has %s" % (dirs, filename))

    def procs(self, cid, comm=None):
        """The container's pids; with comm, those so named, waited for: a task is RUNNING once
        its execve closed its fds, which the kernel does a moment before it renames it."""
        def named():  # (os.walk of a dir that is gone yields nothing)
            pids = {p for d in self.cgroup_dirs(cid).values() for p in cgroup_procs(d)}
            for p in pids:
                self.remember(p)
            return sorted(p for p in pids if comm is None or proc_comm(p) == comm)
        return named() if comm is None else wait_for(named, 10, what="%s in %s" % (comm, cid))

    def wait_state(self, cid, states, timeout=10.0):
        if isinstance(states, str):
            states = (states,)

        def check():
            c = self.inspect(cid)
            return c if c.get("state") in states else None
        return wait_for(check, timeout, what="container %s in %s" % (cid, states))

    def wait_terminal(self, cid, timeout=10.0):
        return self.wait_state(cid, TERMINAL, timeout)

    def wait_all_terminal(self, cids, timeout=15.0, gone_ok=False):
        """Wait for several containers at once: {id: container}; gone_ok: a 404 is None."""
        done = {}

        def check():
            for cid in cids:
                if cid not in done:
                    st, c = self.get("/v1/containers/" + cid, timeout=5)
                    if gone_ok and st == 404:
                        done[cid] = None
                        continue
                    assert st == 200, "inspect %s -> %s %r" % (cid, st, c)
                    self.note(c)
                    if c.get("state") in TERMINAL:
                        done[cid] = c
            return len(done) == len(cids)
        wait_for(check, timeout, what="containers %s terminal" % cids)
        return done

    def sandbox(self, cid):
        c = self.inspect(cid)
        return c.get("sandbox") or os.path.join(self.work, "sandboxes", c["id"])

    def output(self, cid, stream="stdout"):
        """The task's output file, read from the sandbox dir on the host."""
        return read(os.path.join(self.sandbox(cid), stream), "")

    def wait_output(self, cid, key, timeout=10.0):
        """Wait for key=... on the task's stdout (line-buffered: a probe's last key)."""
        def check():
            kv = parse_kv(self.output(cid))
            return kv if key in kv else None
        return wait_for(check, timeout, what="%s= in the output of %s" % (key, cid))

    def kill_all(self, timeout=10.0):
        """Kill every non-terminal container (SIGKILL, no grace) and wait for them."""
        try:
            st, body = self.get("/v1/containers", timeout=5)
        except OSError:
            return
        if st != 200 or not isinstance(body, dict):
            return
        live = [c["id"] for c in body.get("containers", []) if c.get("state") not in TERMINAL]
        for c in body.get("containers", []):
            self.note(c)
        for cid in live:
            try:
                self.post("/v1/containers/%s/kill" % cid,
                          {"signal": "KILL", "grace_seconds": 0}, timeout=5)
            except OSError:
                pass
        # gone counts: GC may remove a killed one at once (gc_min_age=0), and a 404 taken for
        # an error once stopped the agent while another kill was under way (a "leak")
        try:
            self.wait_all_terminal(live, timeout, gone_ok=True)
        except (AssertionError, OSError):
            pass


def procs_mentioning(path):
    """Pids (other than ours) whose cmdline, cwd or exe mentions path."""
    out = []
    me = os.getpid()
    for n in os.listdir("/proc"):
        if not n.isdigit() or int(n) == me:
            continue
        pid = int(n)
        try:
            cmd = read("/proc/%d/cmdline" % pid, "")
            cwd = os.readlink("/proc/%d/cwd" % pid)
        except OSError:
            cwd = ""
        if path in cmd or cwd.startswith(path):
            if proc_start_time(pid) is not None:
                out.append(pid)
    return out


def mounts_mentioning(path):
    return [l for l in read("/proc/self/mountinfo", "").splitlines() if path in l]
