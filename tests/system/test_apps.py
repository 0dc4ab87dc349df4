# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_apps.py - berth-apps (issue #16, docs/apps.md) through its HTTP API, on a
master with two agents and real sandboxes: deploy to RUNNING and healthy, reachable on the
ports it chose; replacement of a killed instance and the backoff of a crash loop (growing by
the factor to the maximum, reset after the stable time); scale up and down keeping the oldest;
rolling updates within the upgrade strategy and one stopped on a version that never turns
healthy; a slow starter within its grace; UNIQUE hostname naming the constraint that keeps an
instance waiting; SIGKILL of berth-apps and of the master mid-deployment; the API's errors."""

import os
import signal
import threading
import time

import pytest

import berthtest as bt
from appstest import apps_env, get_ok, pid_listening, web_app  # noqa: F401 (fixture)


def test_deploy_three_healthy_and_reachable(apps_env):
    env = apps_env()
    a = env.apps
    t0 = time.monotonic()
    body = a.deploy(web_app())
    assert body["app"]["id"] == "web" and body["deployment_id"]
    tasks = a.wait_healthy("web", 3, timeout=30)
    took = time.monotonic() - t0
    print("3/3 RUNNING and healthy in %.2f s (load %.2f)" % (took, os.getloadavg()[0]))
    # must-show 1 asks 5 s; under the shared host's load we allow more but say it
    assert took < 5 * bt.SLOW * (3 if os.getloadavg()[0] > 4 else 1), took
    for t in tasks:
        assert len(t["ports"]) == 1 and t["host"] in ("apps-a", "apps-b"), t
        assert get_ok(t["ports"][0]) == 200
    # the ports are the agents' (each from its own range) and all differ
    assert len({t["ports"][0] for t in tasks}) == 3
    app = a.app("web")
    assert (app["running"], app["healthy"], app["instances"]) == (3, 3, 3), app
    assert app["waiting"] == [] and app["version"].endswith("Z")
    a.wait_no_deployment("web")
    # the master runs them as berth-apps' framework, as the spec asked
    mt_tasks = {t["id"]: t for t in env.m.tasks()}
    for t in tasks:
        mtask = mt_tasks[t["id"]]
        assert mtask["state"] == "RUNNING" and mtask["healthy"] is True, mtask
        assert mtask["resources"]["cpus"] == 0.25, mtask


def test_killed_instance_is_replaced_and_backoff_grows_then_resets(apps_env):
    env = apps_env()
    a = env.apps
    app = web_app(instances=1, backoff={"seconds": 0.2, "factor": 2, "max_seconds": 1.6,
                                        "reset_seconds": 6})
    a.deploy(app)
    [t] = a.wait_healthy("web", 1)
    pid = pid_listening(t["ports"][0])
    assert pid, "no process of %s" % t
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    [t2] = a.wait_tasks("web", lambda ts: len(ts) == 1 and ts[0]["id"] != t["id"]
                        and ts[0]["state"] == "RUNNING", timeout=10, what="a replacement")
    took = time.monotonic() - t0
    print("replacement RUNNING %.2f s after the SIGKILL" % took)
    assert took < 2 * bt.SLOW * (2 if os.getloadavg()[0] > 4 else 1), took
    # a crash loop: each instance is killed as soon as it runs; the delays between an end and
    # the next launch (the master's times) grow by the factor up to the maximum
    ids = [t["id"], t2["id"]]
    for _ in range(9):
        cur = a.wait_tasks("web", lambda ts: len(ts) == 1 and ts[0]["state"] == "RUNNING"
                           and ts[0]["id"] == ids[-1], timeout=20, what="the next")[0]
        pid = bt.wait_for(lambda: pid_listening(cur["ports"][0]), 10, what="its process")
        os.kill(pid, signal.SIGKILL)
        nxt = a.wait_tasks("web", lambda ts: len(ts) == 1 and ts[0]["id"] != ids[-1],
                           timeout=20, what="a replacement")[0]
        ids.append(nxt["id"])
    ms = {t["id"]: t for t in env.m.tasks()}
    delays = [ms[ids[k + 1]]["created_at"] - ms[ids[k]]["updated_at"] for k in range(10)]
    want = [min(0.2 * 2 ** k, 1.6) for k in range(10)]
    print("delays %s, expected %s" % (["%.2f" % d for d in delays], want))
    for d, w in zip(delays, want):
        assert w * 0.9 - 0.05 <= d <= w + 1.0 * bt.SLOW, (delays, want)
    # stable for reset_seconds: the count goes back, the next delay is the first one again
    last = a.wait_tasks("web", lambda ts: len(ts) == 1 and ts[0]["state"] == "RUNNING", 20)[0]
    time.sleep(6.5)  # the stable time itself is what is tested
    pid = bt.wait_for(lambda: pid_listening(last["ports"][0]), 10, what="its process")
    os.kill(pid, signal.SIGKILL)
    nxt = a.wait_tasks("web", lambda ts: len(ts) == 1 and ts[0]["id"] != last["id"], 20)[0]
    ms = {t["id"]: t for t in env.m.tasks()}
    d = ms[nxt["id"]]["created_at"] - ms[last["id"]]["updated_at"]
    print("after the stable time: delay %.2f" % d)
    assert d <= 0.2 + 1.0 * bt.SLOW, d


def test_scale_up_and_down_keeps_the_oldest(apps_env):
    env = apps_env()
    a = env.apps
    a.deploy(web_app())
    first = {t["id"] for t in a.wait_healthy("web", 3)}
    t0 = time.monotonic()
    st, body = a.request("PATCH", "/v1/apps/web", {"instances": 6})
    assert st == 200 and body["app"]["instances"] == 6, body
    six = a.wait_tasks("web", lambda ts: len(ts) == 6 and all(t["state"] == "RUNNING"
                                                              for t in ts), timeout=30)
    print("3 -> 6 RUNNING in %.2f s" % (time.monotonic() - t0))
    assert first <= {t["id"] for t in six}
    a.wait_no_deployment("web")
    st, body = a.request("PATCH", "/v1/apps/web", {"instances": 2})
    assert st == 200, body
    two = a.wait_tasks("web", lambda ts: len(ts) == 2, timeout=30)
    kept = {t["id"] for t in two}
    assert kept <= first, "kept %s, the first three were %s" % (kept, first)
    ms = {t["id"]: t for t in env.m.tasks()}
    killed = [i for i in ms if i not in kept and ms[i]["framework_id"] == ms[next(iter(kept))]
              ["framework_id"]]
    assert len(killed) == 4, killed
    for i in killed:
        assert env.m.wait_task(i, "KILLED")["state"] == "KILLED"
    for i in kept:  # untouched: still the same RUNNING task
        assert ms[i]["state"] == "RUNNING" and not ms[i]["kill_requested"], ms[i]
    a.wait_no_deployment("web")
    # the version did not change: a scale is not an update
    assert len({t["version"] for t in a.tasks("web")}) == 1
    # a restart: a new version of the same definition, every instance replaced
    st, body = a.request("POST", "/v1/apps/web/restart")
    assert st == 200 and body["app"]["version"] != two[0]["version"], body
    renewed = check_settled(env, "web", 2, body["app"]["version"])
    assert not {t["id"] for t in renewed} & kept
    # delete: every instance killed, then the app is forgotten
    st, body = a.request("DELETE", "/v1/apps/web")
    assert st == 202, body
    bt.wait_for(lambda: a.get("/v1/apps/web")[0] == 404, 30, what="the app gone")
    for t in renewed:
        assert env.m.wait_task(t["id"], "KILLED")["state"] == "KILLED"
    assert a.deployments() == []


def test_api_errors(apps_env):
    env = apps_env(n_agents=1)
    a = env.apps
    st, body = a.request("GET", "/v1/apps", token=False)
    assert st == 401 and body["error"]["code"] == "UNAUTHORIZED", body
    st, body = a.request("GET", "/v1/apps", token="Bearer " + "x" * 40)
    assert st == 401 and body["error"]["code"] == "UNAUTHORIZED", body
    st, body = a.request("GET", "/v1/apps/nope")
    assert st == 404 and body["error"]["code"] == "NOT_FOUND", body
    for bad, field in [({"cpus": "lots"}, "cpus"), ({"instances": -1}, "instances"),
                       ({"health_checks": [{"type": "gopher"}]}, "health_checks"),
                       ({"constraints": [["hostname", "NEAR"]]}, "constraints"),
                       ({"colour": "red"}, "colour")]:
        app = web_app(**bad)
        st, body = a.request("POST", "/v1/apps", app)
        assert st == 400 and body["error"]["code"] == "INVALID_ARGUMENT", body
        assert field in body["error"]["message"], body
    st, body = a.request("POST", "/v1/apps", raw=b"{not json")
    assert st == 400, body
    a.deploy(web_app(instances=0))
    st, body = a.request("POST", "/v1/apps", web_app(instances=0))
    assert st == 409, body
    st, body = a.request("PATCH", "/v1/apps/web", {"mem": "lots"})
    assert st == 400 and "mem" in body["error"]["message"], body
    st, body = a.request("DELETE", "/v1/apps/web")
    assert st == 202 and body["deployment_id"], body
    bt.wait_for(lambda: a.get("/v1/apps/web")[0] == 404, 10, what="the app gone")
    st, body = a.get("/v1/apps")
    assert st == 200 and body["apps"] == [], body


def framework_tasks(m, fw_id):
    return [t for t in m.tasks() if t["framework_id"] == fw_id]


def live(tasks):
    return [t for t in tasks if t["state"] not in bt.TERMINAL]


# Starts answering 2 s after it starts: a deployment of it takes a few seconds per step.
SLOW_WEB = "sleep 2; exec python3 -m http.server --bind 127.0.0.1 $PORT0"


def check_settled(env, app_id, n, version):
    """n instances of version RUNNING and healthy, and the master holds exactly those for
    the framework: nothing duplicated, nothing lost."""
    a = env.apps
    a.wait_no_deployment(app_id, timeout=90)
    tasks = a.wait_healthy(app_id, n, timeout=60)
    assert {t["version"] for t in tasks} == {version}, tasks
    fw = env.m.task(tasks[0]["id"])["framework_id"]
    alive = live(framework_tasks(env.m, fw))
    assert sorted(t["id"] for t in alive) == sorted(t["id"] for t in tasks), (alive, tasks)
    return tasks


@pytest.mark.parametrize("victim", ["apps", "master"])
def test_sigkill_mid_deployment_resumes_without_duplicates(apps_env, victim):
    env = apps_env()
    a = env.apps
    app = web_app(command=SLOW_WEB, upgrade_strategy={"minimum_health_capacity": 1,
                                                      "maximum_over_capacity": 0.34})
    a.deploy(app)
    old = a.wait_healthy("web", 3, timeout=30)
    a.wait_no_deployment("web")
    app["env"] = {"V": "2"}
    st, body = a.request("PUT", "/v1/apps/web", app)
    assert st == 200 and body["deployment_id"], body
    v2 = body["app"]["version"]
    assert v2 != old[0]["version"]
    # mid-way: one new instance is there, the old ones still are
    a.wait_tasks("web", lambda ts: any(t["version"] == v2 for t in ts), timeout=20,
                 what="a first instance of the new version")
    if victim == "apps":
        a.kill9()
        a.start(timeout=10)
    else:
        env.m.kill9()
        time.sleep(1)  # the master is away for a while: berth-apps keeps retrying
        env.m.start(timeout=10)
    a.wait_subscribed(timeout=30)
    tasks = check_settled(env, "web", 3, v2)
    assert not {t["id"] for t in tasks} & {t["id"] for t in old}
    # every instance of the new version the master ever saw is one of the three: none was
    # launched twice (a restart that forgot one would have launched a fourth)
    fw = env.m.task(tasks[0]["id"])["framework_id"]
    ever = [t for t in framework_tasks(env.m, fw) if t["id"] not in {o["id"] for o in old}]
    assert len(ever) == 3, [(t["id"], t["state"], t["reason"]) for t in ever]


class Sampler(threading.Thread):
    """Every 100 ms: (RUNNING, healthy) of the framework's tasks at the master."""

    def __init__(self, m, fw):
        super().__init__(daemon=True)
        self.m, self.fw, self.samples, self.stop = m, fw, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            ts = [t for t in framework_tasks(self.m, self.fw) if t["state"] == "RUNNING"]
            self.samples.append((len(ts), sum(1 for t in ts if t.get("healthy"))))
            time.sleep(0.1)


def test_rolling_update_within_the_strategy_and_a_failing_version_stops(apps_env):
    env = apps_env()
    a = env.apps
    app = web_app(command=SLOW_WEB, upgrade_strategy={"minimum_health_capacity": 1,
                                                      "maximum_over_capacity": 0.34})
    a.deploy(app)
    old = a.wait_healthy("web", 3, timeout=30)
    a.wait_no_deployment("web")
    fw = env.m.task(old[0]["id"])["framework_id"]
    s = Sampler(env.m, fw)
    s.start()
    try:
        app["env"] = {"V": "2"}
        st, body = a.request("PUT", "/v1/apps/web", app)
        assert st == 200, body
        v2 = body["app"]["version"]
        new = check_settled(env, "web", 3, v2)
    finally:
        s.stop.set()
        s.join()
    print("samples (running, healthy): %d, min healthy %d, max running %d"
          % (len(s.samples), min(h for _, h in s.samples), max(r for r, _ in s.samples)))
    assert len(s.samples) > 20
    assert all(h >= 3 for _, h in s.samples), s.samples
    assert all(r <= 4 for r, _ in s.samples), s.samples
    assert max(r for r, _ in s.samples) == 4  # it did run one over
    assert not {t["id"] for t in new} & {t["id"] for t in old}
    # a version whose check never passes: the deployment stops, the old ones keep serving
    bad = dict(app, env={"V": "3"},
               health_checks=[{"type": "http", "port_index": 0, "path": "/nope", "interval": 0.3,
                               "timeout": 1, "grace": 0.5, "consecutive_failures": 2}])
    s = Sampler(env.m, fw)
    s.start()
    try:
        st, body = a.request("PUT", "/v1/apps/web", bad)
        assert st == 200, body
        dep_id = body["deployment_id"]

        def stopped():
            ds = [d for d in a.deployments() if d["id"] == dep_id]
            return ds and ds[0]["state"] != "running" and ds[0]
        dep = bt.wait_for(stopped, 90, interval=0.2, what="the deployment to stop")
        kept = check_settled_old(a, new)
    finally:
        s.stop.set()
        s.join()
    print("stopped: %s" % dep["message"])
    assert "health check" in dep["message"] and v2 in dep["message"], dep
    assert all(h >= 3 for _, h in s.samples), s.samples
    assert {t["id"] for t in kept} == {t["id"] for t in new}
    for t in kept:
        assert get_ok(t["ports"][0]) == 200


def check_settled_old(a, new):
    return a.wait_tasks("web", lambda ts: sorted(t["id"] for t in ts) ==
                        sorted(t["id"] for t in new) and all(t.get("healthy") for t in ts),
                        timeout=60, what="only the serving version's instances")


SLOW_SERVER = r"""
import http.server, os, sys, time
stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
started = int(stat[19]) / os.sysconf("SC_CLK_TCK")
time.sleep(max(0.0, 8 - (time.clock_gettime(time.CLOCK_BOOTTIME) - started)))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists("fail") else 200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@pytest.mark.slow
def test_slow_starter_within_its_grace_is_kept_and_a_500_replaced(apps_env):
    env = apps_env(n_agents=1)
    a = env.apps
    app = web_app(instances=1, cpus=1,
                  health_checks=[{"type": "http", "port_index": 0, "interval": 0.5,
                                  "timeout": 1, "grace": 10, "consecutive_failures": 2}])
    del app["command"]  # an argv instead: the script as $0 of a shell that expands $PORT0
    app["args"] = ["/bin/sh", "-c", 'exec python3 -c "$0" "$PORT0"', SLOW_SERVER]
    a.deploy(app)
    [t] = a.wait_tasks("web", lambda ts: len(ts) == 1 and ts[0]["state"] == "RUNNING", 20)
    t0 = time.monotonic()
    [h] = a.wait_healthy("web", 1, timeout=30)
    print("healthy %.1f s after RUNNING was seen" % (time.monotonic() - t0))
    assert h["id"] == t["id"], (t, h)  # the same instance: never killed
    mtask = env.m.task(t["id"])
    assert mtask["state"] == "RUNNING"
    # it starts answering 500: killed HEALTH_CHECK_FAILED after its failures, and replaced
    with open(os.path.join(env.agents[0].sandbox(mtask["container_id"]), "fail"), "w"):
        pass
    end = env.m.wait_task(t["id"], bt.TERMINAL, timeout=30)
    assert (end["state"], end["reason"]) == ("KILLED", "HEALTH_CHECK_FAILED"), end
    a.wait_tasks("web", lambda ts: len(ts) == 1 and ts[0]["id"] != t["id"], 20,
                 what="a replacement")


def test_constraints_and_why_instances_wait(apps_env):
    env = apps_env()
    a = env.apps
    a.deploy(web_app(constraints=[["hostname", "UNIQUE"]]))
    ts = a.wait_tasks("web", lambda ts: len(ts) == 2 and all(t["state"] == "RUNNING"
                                                             for t in ts), 30)
    assert sorted(t["hostname"] for t in ts) == ["apps-a", "apps-b"], ts

    def waiting():
        w = a.app("web")["waiting"]
        return w and w[0]["reason"] == "CONSTRAINT" and w
    [w] = bt.wait_for(waiting, 15, interval=0.2, what="the app to say why one waits")
    print("waiting: %s" % w)
    assert w["instances"] == 1 and "hostname" in w["message"] and "UNIQUE" in w["message"], w
    time.sleep(1)
    assert len(a.tasks("web")) == 2
    # an attribute: only on rack r1's agent
    a.deploy(web_app("r1only", instances=2, constraints=[["rack", "LIKE", "r1"]]))
    ts = a.wait_tasks("r1only", lambda ts: len(ts) == 2 and all(t["state"] == "RUNNING"
                                                                for t in ts), 30)
    assert [t["hostname"] for t in ts] == ["apps-a", "apps-a"], ts
    # more than any agent has: the resource is named; another role: the role is
    big = web_app("big", instances=1, cpus=3)
    a.deploy(big)
    other = web_app("other", instances=1, role="elsewhere")
    a.deploy(other)
    for app_id, reason, words in [("big", "RESOURCES", "cpus"), ("other", "ROLE", "elsewhere")]:
        def why():
            w = a.app(app_id)["waiting"]
            return w and w[0]["reason"] == reason and w[0]
        w = bt.wait_for(why, 15, interval=0.2, what="%s waiting for %s" % (app_id, reason))
        print("waiting: %s" % w)
        assert words in w["message"], w
        assert a.tasks(app_id) == []
