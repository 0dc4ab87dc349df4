# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_lb.py - berth-lb (issue #17, docs/lb.md) with a real HAProxy (Debian's),
a master, two agents and berth-apps, every address on 127.0.0.1: an app's instances reached on
its service port and by Host on the HTTP port; new instances serve within 1 s of turning
healthy and a killed one is out of rotation within 1 s of its event, without a reload; a
rolling update and a reload (a second app) under 200 requests/s with no failed request and
one worker left after the drain timeout, also when the reload is held (its master re-executes
through a wrapper) until the update has ended every old instance; a restart of berth-lb
renders the same haproxy.cfg and adopts HAProxy, and a restart of berth-apps is followed with
no failed request."""

import http.client
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time

import appstest as at
import berthtest as bt
import lbtest as lt
import mastertest as mt
import ssetest
from appstest import apps_env  # noqa: F401 - the fixture
from lbtest import lb_factory  # noqa: F401 - the fixture

DRAIN = 3  # seconds: berth-lb's drain_timeout (and HAProxy's hard-stop-after)


class Events:
    """berth-apps' event stream read by a thread: (monotonic time, event) as they come."""

    def __init__(self, apps):
        ctx = ssl.create_default_context(cafile=apps.ca)
        conn = http.client.HTTPSConnection("127.0.0.1", apps.port, timeout=60, context=ctx)
        self.stream = ssetest.Stream(conn, "/v1/events", apps.token, None, 60)
        assert self.stream.status == 200, self.stream.status
        self.got = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        try:
            while True:
                ev = self.stream.next(3600)
                with self.lock:
                    self.got.append((time.monotonic(), ev))
        except (EOFError, OSError, ValueError, AttributeError):  # closed under it
            pass

    def when(self, pred, after=0):
        with self.lock:
            for t, ev in self.got:
                if t >= after and pred(ev):
                    return t
        return None

    def wait(self, pred, timeout=60, what="an event", after=0):
        return bt.wait_for(lambda: self.when(pred, after), timeout, interval=0.02, what=what)

    def close(self):
        self.stream.close()


def endpoint_ports(apps, sp):
    """The ports `berthctl --apps URL app endpoints web` lists for service port sp."""
    r = subprocess.run([bt.CTL_BIN, "--apps", apps.url, "--cacert", apps.ca, "--token-file",
                        apps.token_file, "app", "endpoints", "web"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    return sorted(int(l.split()[1].rsplit(":", 1)[1]) for l in lines[1:]
                  if l.split()[0] == str(sp))


def inst_event(ev, task_id, **fields):
    inst = (ev.data or {}).get("instance") or {}
    return inst.get("id") == task_id and all(inst.get(k) == v for k, v in fields.items())


def start_web(apps_env, lb_factory, instances=3, flags=()):  # noqa: F811
    env = apps_env(2)
    sp = mt.free_port()
    lb = lb_factory(env.apps, ["--drain_timeout=%ds" % DRAIN] + list(flags))
    env.apps.deploy(lt.web_app(sp, instances))
    tasks = env.apps.wait_healthy("web", instances, timeout=60)
    ports = sorted(t["ports"][0] for t in tasks)
    bt.wait_for(lambda: lb.master() and lb.ready_ports() == ports, 30,
                what="HAProxy routing to %s:\n%s" % (ports, lb.log[-2000:]))
    return env, sp, lb, ports


def test_lb_routes_scales_kills_without_reload(apps_env, lb_factory):  # noqa: F811
    env, sp, lb, ports = start_web(apps_env, lb_factory)
    apps = env.apps
    # (1) 30 requests on the service port reach all 3; so does Host: web.example
    try:
        assert sorted(set(lt.served_ports(sp, 30))) == ports
    except AssertionError:
        print(lb.runtime("show servers state b_web_0"), lb.log[-4000:])
        raise
    assert sorted(set(lt.served_ports(lb.http_port, 30, host="web.example"))) == ports
    st, _ = lt.get(lb.http_port, host="other.example")
    assert st == 503  # no app has that virtual host
    assert "mode http" in lb.cfg() and "frontend f_%d" % sp in lb.cfg()
    workers = lb.workers()
    assert len(workers) == 1, workers
    assert len(lb.haproxies()) == 2, lb.haproxies()  # one master, one worker
    # (2) scale 3 -> 5: each new instance serves within 1 s of its healthy event
    ev = Events(apps)
    try:
        st, body = apps.request("PATCH", "/v1/apps/web", {"instances": 5})
        assert st in (200, 201), (st, body)
        tasks = apps.wait_healthy("web", 5, timeout=60)
        new = [t for t in tasks if t["ports"][0] not in ports]
        assert len(new) == 2
        for t in new:
            healthy_at = ev.wait(lambda e: inst_event(e, t["id"], healthy=True, state="RUNNING"),
                                 what="%s healthy" % t["id"])

            def seen(port=t["ports"][0]):
                return port in lt.served_ports(sp, 6)
            bt.wait_for(seen, 10, interval=0.01, what="port %d served" % t["ports"][0])
            lag = time.monotonic() - healthy_at
            print("new instance %s served %.3f s after turning healthy" % (t["id"], lag))
            assert lag < 1.0 * bt.SLOW, "served %.2f s after turning healthy" % lag
        assert lb.ready_ports() == sorted(t["ports"][0] for t in tasks)
        # berthctl's view of what berth-lb routes to is what HAProxy has
        assert endpoint_ports(apps, sp) == lb.ready_ports()
        # a SIGKILLed instance: out of rotation within 1 s of its event, no reload
        victim = new[0]
        pid = at.pid_listening(victim["ports"][0])
        assert pid
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        gone_at = ev.wait(lambda e: inst_event(e, victim["id"]) and
                          e.data["instance"].get("state") != "RUNNING",
                          what="the event of %s's end" % victim["id"], after=killed_at)
        bt.wait_for(lambda: victim["ports"][0] not in lb.ready_ports(), 5, interval=0.01,
                    what="port %d out of rotation" % victim["ports"][0])
        lag = time.monotonic() - gone_at
        print("killed instance out of rotation %.3f s after its event" % lag)
        assert lag < 1.0 * bt.SLOW, "out of rotation %.2f s after its event" % lag
        # meanwhile every request was answered (a refused connection goes elsewhere)
        assert len(lt.served_ports(sp, 20)) == 20
        assert lb.workers() == workers, "HAProxy reloaded: %s -> %s" % (workers, lb.workers())
        assert "reloading HAProxy" not in lb.log
    finally:
        ev.close()


def test_lb_a_reload_slower_than_kill_delay_fails_no_request(apps_env, lb_factory):  # noqa: F811
    """HAProxy's master re-executes its argv[0] to reload: here a wrapper that holds a reload
    (-sf) until the test says go, while a rolling update ends every old instance (berth-apps'
    kill_delay is 1 s). berth-lb keeps telling the old worker, which serves until the new one
    takes the sockets, and writes servers.state again for the new master: under 100
    requests/s no request fails, before the new worker or after."""
    d = tempfile.mkdtemp(prefix="berth-test-hap-%d-" % os.getpid(), dir=bt.TMP_BASE)
    go, wrapper = os.path.join(d, "go"), os.path.join(d, "haproxy-held")
    with open(wrapper, "w") as f:
        f.write('#!/bin/bash\ncase " $* " in *" -sf "*) while [ ! -e %s ]; do sleep 0.02; done;; '
                'esac\nexec -a "$0" %s "$@"\n' % (go, lt.HAPROXY))
    os.chmod(wrapper, 0o755)
    try:
        env, sp, lb, ports = start_web(apps_env, lb_factory, flags=["--haproxy=" + wrapper])
        apps = env.apps
        load = lt.Load(sp, 100, 120).start()
        try:
            st, body = apps.request("PUT", "/v1/apps/web", lt.web_app(sp, 3, env={"V": "2"}))
            assert st in (200, 201), (st, body)
            apps.deploy(lt.web_app(mt.free_port(), 1, app_id="other", vhost="other.example"))
            bt.wait_for(lambda: "reloading HAProxy" in lb.log, 60, what="a reload for app other")
            apps.wait_no_deployment("web", timeout=60)
            tasks = apps.wait_healthy("web", 3, timeout=60)
            new_ports = sorted(t["ports"][0] for t in tasks)
            assert not set(new_ports) & set(ports), (ports, new_ports)
            bt.wait_for(lambda: lb.log.count("event instance_removed") >= 3, 30,
                        what="the old instances' ends")
            # all while the master waited: no new worker yet, and berth-lb still waits for one
            assert "HAProxy reloaded" not in lb.log and "no new HAProxy worker" not in lb.log
            open(go, "w").close()
            bt.wait_for(lambda: "HAProxy reloaded" in lb.log, 30, what="the new worker")
            bt.wait_for(lambda: lb.ready_ports() == new_ports and len(lb.workers()) == 1,
                        DRAIN + 10, what="the new worker alone, routing to the new instances")
        finally:
            load.stop()
        print("a held reload under load: %d requests answered, %d failed"
              % (load.ok, len(load.failures)))
        assert load.ok > 0
        assert not load.failures, (load.failures[:10], lb.log[-8000:])
    finally:  # lb_factory's cleanup ends HAProxy, a held wrapper too (it is the master's pid)
        shutil.rmtree(d, ignore_errors=True)


def test_lb_rolling_update_reload_and_restarts_under_load(apps_env, lb_factory):  # noqa: F811
    env, sp, lb, ports = start_web(apps_env, lb_factory)
    apps = env.apps
    # (3) a rolling update, and a second app (a new frontend: a reload), under 200 requests/s
    load = lt.Load(sp, 200, 60).start()
    try:
        time.sleep(2)  # load before the update starts (a bounded, paced client)
        st, body = apps.request("PUT", "/v1/apps/web",
                                lt.web_app(sp, 3, env={"VERSION": "2"}))
        assert st in (200, 201), (st, body)
        sp2 = mt.free_port()
        apps.deploy(lt.web_app(sp2, 1, app_id="other", vhost="other.example"))
        bt.wait_for(lambda: "reloading HAProxy" in lb.log, 60, what="a reload for app other")
        other = apps.wait_healthy("other", 1, timeout=60)[0]["ports"][0]
        bt.wait_for(lambda: lb.ready_ports("b_other_0") == [other], 10, what="other routed")
        apps.wait_no_deployment("web", timeout=90)
        tasks = apps.wait_healthy("web", 3, timeout=60)
        new_ports = sorted(t["ports"][0] for t in tasks)
        assert not set(new_ports) & set(ports), (ports, new_ports)
        bt.wait_for(lambda: lb.ready_ports() == new_ports, 10, what="the new instances routed")
        # one worker once the old one had drain_timeout to finish (hard-stop-after)
        bt.wait_for(lambda: len(lb.workers()) == 1, DRAIN + 10, what="one HAProxy worker")
        assert sorted(set(lt.served_ports(lb.http_port, 10, host="other.example")))
    finally:
        load.join()
    print("rolling update + reload under load: %d requests answered, %d failed"
          % (load.ok, len(load.failures)))
    assert load.ok >= 60 * 200 * 0.9, load.ok
    if load.failures:  # when they came (wall clock) against berth-lb's log, to find why
        off = time.time() - time.monotonic()
        when = ["%.3f %s" % (t + off, e[:40].replace("\n", " ")) for t, e in load.failures]
        print("failed requests:\n%s\nberth-lb's log:\n%s\n%s" % (
            "\n".join(when[:20]), lb.log[-12000:], lb.runtime("show servers state b_web_0")))
    assert not load.failures, load.failures[:10]
    # (4) restart berth-lb: the same haproxy.cfg, HAProxy adopted (no reload), no failure
    cfg = lb.cfg()
    workers = lb.workers()
    load = lt.Load(sp, 100, 15).start()
    try:
        assert lb.stop() == 0
        lb.start()
        bt.wait_for(lambda: lb.log.count("snapshot (id") >= 2, 30, what="berth-lb's snapshot")
        bt.wait_for(lambda: "adopted the running HAProxy" in lb.log, 5, what="adoption")
        time.sleep(1)
        assert lb.cfg() == cfg
        assert lb.workers() == workers
        # restart berth-apps: berth-lb follows the new one (resumes, or takes its snapshot)
        snaps = lb.log.count("snapshot (id")
        assert apps.stop() == 0
        apps.start(timeout=20)
        bt.wait_for(lambda: lb.log.count("snapshot (id") > snaps, 30,
                    what="berth-lb following the restarted berth-apps")
    finally:
        load.join()
    print("restarts of berth-lb and berth-apps under load: %d requests answered, %d failed"
          % (load.ok, len(load.failures)))
    assert load.ok > 0
    assert not load.failures, load.failures[:10]
    assert lb.cfg() == cfg
    # and it still follows: scale down, the removed ones leave the rotation
    st, body = apps.request("PATCH", "/v1/apps/web", {"instances": 2})
    assert st in (200, 201), (st, body)
    tasks = apps.wait_tasks("web", lambda ts: len(ts) == 2, timeout=60)
    bt.wait_for(lambda: lb.ready_ports() == sorted(t["ports"][0] for t in tasks), 10,
                what="the scaled-down instances routed")
