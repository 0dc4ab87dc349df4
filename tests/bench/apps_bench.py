#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""tests/bench/apps_bench.py BUILD_DIR [OUT_MD] - `make bench`, issue #16: how long berth-apps
takes to bring up one app of BENCH_APPS_N (100) instances. A real berth-master (TLS), a real
berth-apps (plain HTTP on loopback, its own SQLite) and BENCH_APPS_AGENTS (2) real agents,
each with its own host port range; the app is `berthctl --apps URL app deploy` of 0.01 CPU /
16 MiB instances, each a tiny HTTP server (busybox httpd on $PORT0) with an HTTP health check
every second (BENCH_APPS_CHECK=tcp for a TCP one). From the deploy sent, GET
/v1/apps/ID/tasks every 50 ms records when each instance was first seen RUNNING and healthy;
the figures are the times to all RUNNING, to all healthy, to the deployment's end (gone from
/v1/deployments), and the spread of the instances' own times. The floor, in the same run: the
same number of the same tasks launched on the same agents directly (POST /v1/containers, the
agent API, as fast as they are answered), to all RUNNING. Then `app rm` and the time until
every instance is gone. Benchmarks print figures; nothing here is a timed assertion. Writes
a markdown section to OUT_MD when given. Uses the system tests' helpers (tests/system) and
removes every process, cgroup and directory it made, also on failure."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
B = os.path.abspath(sys.argv[1])
OUT = sys.argv[2] if len(sys.argv) > 2 else None
os.environ["BERTH_BUILD"] = B
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))

import berthtest as bt  # noqa: E402
import conftest  # noqa: E402
import mastertest as mt  # noqa: E402
import schedtest as st  # noqa: E402

N = int(os.environ.get("BENCH_APPS_N", "100"))
AGENTS = int(os.environ.get("BENCH_APPS_AGENTS", "2"))
CHECK = os.environ.get("BENCH_APPS_CHECK", "http")
APPS_BIN = os.path.join(B, "berth-apps")
APP_ID = "bench"
# the instance: an index page in a private directory, served by busybox httpd on $PORT0
SERVER = ("d=$(mktemp -d) && echo ok >\"$d/index.html\" && "
          "exec busybox httpd -f -p \"$PORT0\" -h \"$d\"")


class Apps(bt.Daemon):
    """berth-apps on a free loopback port, plain HTTP, a framework of master m."""

    NAME = "berth-apps"

    def __init__(self, tmp, m, master_token_file):
        super().__init__(tmp, "apps.log")
        self.port = mt.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.token_file = os.path.join(tmp, "apps.token")
        self.token = mt.write_token(self.token_file)
        self.argv = [APPS_BIN, "--config=/dev/null", "--listen=127.0.0.1:%d" % self.port,
                     "--work_dir=" + os.path.join(tmp, "apps"),
                     "--token_file=" + self.token_file, "--plain_http=true",
                     "--master=" + m.url, "--master_ca=" + m.ca,
                     "--master_token_file=" + master_token_file, "--log_level=warning"]
        self.conn = None

    def request(self, method, path, body=None, raw=None, timeout=10, headers=None):
        # one kept connection: the poll every 50 ms should not cost a handshake each
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                data = raw if raw is not None else (json.dumps(body).encode()
                                                    if body is not None else None)
                h = {"Authorization": "Bearer " + self.token}
                if data is not None:
                    h["Content-Type"] = "application/json"
                h.update(headers or {})
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                try:
                    return resp.status, json.loads(text)
                except ValueError:
                    return resp.status, text
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def start(self, timeout=10.0):
        self.spawn()

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("berth-apps exited with %s during start-up:\n%s"
                                     % (self.proc.returncode, self.log))
            try:
                return self.request("GET", "/v1/apps", timeout=1)[0] == 200
            except OSError:
                return False
        bt.wait_for(up, timeout, what="berth-apps to answer GET /v1/apps")
        return self

    def ctl(self, *args):
        return subprocess.run([bt.CTL_BIN, "--apps", self.url, "--token-file", self.token_file]
                              + [str(a) for a in args], capture_output=True, text=True,
                              timeout=60)

    def tasks(self):
        s, body = self.request("GET", "/v1/apps/%s/tasks" % APP_ID)
        return body.get("tasks", []) if s == 200 and isinstance(body, dict) else []


def health_check(port_index=0):
    hc = {"type": CHECK, "port_index": port_index, "interval": 1, "timeout": 1, "grace": 30,
          "consecutive_failures": 3}
    if CHECK == "http":
        hc["path"] = "/"
    return hc


def app_file(tmp):
    app = {"id": APP_ID, "command": SERVER, "instances": N, "cpus": 0.01, "mem": "16MiB",
           "pids": 16, "ports": [{"name": "http"}], "network": "host",
           "health_checks": [health_check()],
           "upgrade_strategy": {"minimum_health_capacity": 1, "maximum_over_capacity": 1}}
    path = os.path.join(tmp, "bench.json")
    with open(path, "w") as f:
        json.dump(app, f)
    return path


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def deploy(apps, tmp):
    """Deploy the app; times (s) from the deploy sent, and per-instance first times."""
    path = app_file(tmp)
    first_running, first_healthy = {}, {}
    t0 = time.monotonic()
    r = apps.ctl("app", "deploy", path)
    t_answer = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit("apps_bench: app deploy: %s" % r.stderr.strip())
    dep_id = r.stdout.strip()
    t_running = t_healthy = t_done = None
    deadline = t0 + 300 * bt.SLOW
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        for x in apps.tasks():
            if x.get("state") == "RUNNING":
                first_running.setdefault(x["id"], now)
                if x.get("healthy") is True:
                    first_healthy.setdefault(x["id"], now)
        live = [x for x in apps.tasks() if x.get("state") == "RUNNING"]
        if t_running is None and len(live) >= N:
            t_running = now
        if t_healthy is None and len([x for x in live if x.get("healthy") is True]) >= N:
            t_healthy = now
        if t_healthy is not None and t_done is None:
            s, body = apps.request("GET", "/v1/deployments")
            deps = body.get("deployments", []) if s == 200 else []
            if not [d for d in deps if d.get("id") == dep_id]:
                t_done = time.monotonic() - t0
        if t_done is not None:
            break
        time.sleep(0.05)
    if t_healthy is None:
        raise SystemExit("apps_bench: %d of %d RUNNING, %d healthy after 300 s:\n%s"
                         % (len(first_running), N, len(first_healthy),
                            apps.ctl("app", "inspect", APP_ID).stdout[-2000:]))
    per_agent = {}
    for x in apps.tasks():  # by agent id: the agents of this host share its hostname
        per_agent[x.get("agent_id")] = per_agent.get(x.get("agent_id"), 0) + 1
    return {"answer": t_answer, "running": t_running, "healthy": t_healthy, "done": t_done,
            "inst_running": list(first_running.values()),
            "inst_healthy": list(first_healthy.values()), "per_agent": per_agent}


def live(agents):
    return [c for a in agents for c in a.get("/v1/containers")[1]["containers"]
            if c["state"] not in bt.TERMINAL]


def remove(apps, agents):
    """app rm, until every instance has ended on its agent."""
    t0 = time.monotonic()
    r = apps.ctl("app", "rm", APP_ID)
    if r.returncode != 0:
        raise SystemExit("apps_bench: app rm: %s" % r.stderr.strip())
    bt.wait_for(lambda: not live(agents), 120 * bt.SLOW, interval=0.05,
                what="the app's instances ended")
    return time.monotonic() - t0


def direct(agents):
    """The floor: the same N tasks on the same agents through their own API, to all RUNNING."""
    ids, t0 = [], time.monotonic()
    for i in range(N):
        a = agents[i % len(agents)]
        s, c = a.post("/v1/containers", {
            "name": "bench-direct-%d" % i, "command": {"shell": SERVER},
            "resources": {"cpus": 0.01, "mem": "16MiB", "pids": 16}, "ports": 1,
            "network": "host", "health_check": health_check()})
        if s != 201:
            raise SystemExit("apps_bench: direct launch -> %s %r" % (s, c))
        ids.append((a, c["id"]))

    def states():
        out = []
        for a in agents:
            out += [(c["state"], c.get("healthy")) for c in a.get("/v1/containers")[1]
                    ["containers"] if c["name"].startswith("bench-direct-")]
        return out
    t_running = t_healthy = None
    while t_healthy is None and time.monotonic() - t0 < 300 * bt.SLOW:
        s = states()
        if t_running is None and len([x for x in s if x[0] == "RUNNING"]) >= N:
            t_running = time.monotonic() - t0
        if len([x for x in s if x[0] == "RUNNING" and x[1] is True]) >= N:
            t_healthy = time.monotonic() - t0
        time.sleep(0.05)
    for a, cid in ids:
        a.post("/v1/containers/%s/kill" % cid, {"signal": "KILL", "grace_seconds": 0})
    for a, cid in ids:
        a.wait_terminal(cid)
        a.delete("/v1/containers/" + cid)
    return t_running, t_healthy


def submit_token(m):
    """A master token with submit rights in '*', for berth-apps (as docs/install.md makes)."""
    s, body = m.request("POST", "/v1/tokens", {"rights": "submit", "roles": ["*"],
                                               "name": "berth-apps"})
    if s not in (200, 201):
        raise SystemExit("apps_bench: POST /v1/tokens -> %s %r" % (s, body))
    path = os.path.join(m.tmp, "apps-master.token")
    mt.write_token(path, body["token"])
    return path


def main():
    if not os.access(APPS_BIN, os.X_OK):
        raise SystemExit("apps_bench: missing %s (make all first)" % APPS_BIN)
    tmp = tempfile.mkdtemp(prefix="berth-bench-apps-", dir=bt.TMP_BASE)
    os.chmod(tmp, 0o755)
    agents, m, apps = [], None, None
    load0 = open("/proc/loadavg").read().split()[:3]
    try:
        m = mt.Master(tmp, st.FAST + ["--log_level=warning"]).start()
        for n in range(AGENTS):
            d = tempfile.mkdtemp(prefix="berth-test-%d-%d-" % (os.getpid(), 950 + n),
                                 dir=bt.TMP_BASE)
            os.chmod(d, 0o755)
            # host network, one host: each agent its own port range
            ports = "[%d-%d]" % (31000 + 1000 * n, 31999 + 1000 * n)
            a = bt.Agent(d, 950 + n, st.agent_conf(4, "8GiB", ports=ports), m.agent_flags())
            agents.append(a)
            a.start()
        m.wait_agents(AGENTS)
        apps = Apps(tmp, m, submit_token(m)).start()

        def subscribed():
            fws = m.request("GET", "/v1/frameworks")[1].get("frameworks", [])
            return [f for f in fws if f.get("name") == "berth-apps"
                    and f.get("state", "").startswith("CONNECTED")]
        # a deploy on a berth-apps that is up: subscribed at the master, offers coming
        bt.wait_for(subscribed, 30 * bt.SLOW, what="berth-apps subscribed at the master")
        res = deploy(apps, tmp)
        res["rm"] = remove(apps, agents)
        print("apps_bench: deploy of %d instances on %d agents (%s check): answer %.3f s, all "
              "RUNNING %.2f s, all healthy %.2f s, deployment done %.2f s; app rm %.2f s; "
              "per agent %r" % (N, AGENTS, CHECK, res["answer"], res["running"],
                                res["healthy"], res["done"], res["rm"], res["per_agent"]))
        floor_running, floor_healthy = direct(agents)
        print("apps_bench: floor, %d launches on the agents' API: all RUNNING %.2f s, all "
              "healthy %.2f s" % (N, floor_running, floor_healthy))
    finally:
        problems = []
        if apps:
            apps.stop()
        for a in agents:
            problems += conftest._teardown(a)
        if m:
            m.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        mt.remove_tls()
        if problems:
            print("\n".join(problems), file=sys.stderr)
    load1 = open("/proc/loadavg").read().split()[:3]
    text = (
        "Written by `make bench` (tests/bench/apps_bench.py) on %d CPUs, kernel %s, %s; load "
        "average %s before, %s after.\n\n"
        "**One app of %d instances** (0.01 CPU, 16 MiB, pids 16; each `busybox httpd` on its "
        "$PORT0 with an %s health check every second) deployed with `berthctl --apps URL app "
        "deploy` through berth-apps, a real berth-master (TLS, allocation every 200 ms) and %d "
        "real agents on this host, times from the deploy sent, berth-apps' "
        "`/v1/apps/%s/tasks` read every 50 ms:\n\n"
        "| step | time |\n|---|---|\n"
        "| berthctl's answer (the deployment id) | %.3f s |\n"
        "| all %d RUNNING | %.2f s |\n"
        "| all %d healthy | %.2f s |\n"
        "| deployment done (gone from /v1/deployments) | %.2f s |\n"
        "| an instance RUNNING: p50 / p90 | %.2f s / %.2f s |\n"
        "| an instance healthy: p50 / p90 | %.2f s / %.2f s |\n"
        "| `app rm` until every instance has ended on its agent | %.2f s |\n"
        "| floor: the same %d tasks POSTed to the agents' API directly, all RUNNING / all "
        "healthy | %.2f s / %.2f s |\n\n"
        "Instances per agent: %s. Healthy lags RUNNING by the first check (its `delay` is "
        "0, then a check every second on the agent's grid) and by the RUNNING update carrying "
        "`healthy` back through the master to berth-apps.\n"
        % (os.cpu_count(), os.uname().release,
           time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), " ".join(load0),
           " ".join(load1), N, CHECK.upper(), AGENTS, APP_ID, res["answer"], N, res["running"],
           N, res["healthy"], res["done"], pct(res["inst_running"], .5),
           pct(res["inst_running"], .9), pct(res["inst_healthy"], .5),
           pct(res["inst_healthy"], .9), res["rm"], N, floor_running, floor_healthy,
           ", ".join("%d" % v for v in sorted(res["per_agent"].values()))))
    print(text)
    if OUT:
        with open(OUT, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
