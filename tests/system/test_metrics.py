# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_metrics.py - issue #5: GET /metrics is valid Prometheus text with the
SPEC §8 names (checked by Debian's promtool), every name is documented in docs/metrics.md,
and a real Prometheus server (loopback, its own temp dir) scrapes the agent's TCP listener
and answers a query for a running task's CPU counter. The TCP API needs the token for
everything but /metrics and /health."""

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request

import pytest

import berthtest as bt

SPEC_NAMES = [
    "berth_container_cpu_usage_seconds_total", "berth_container_cpu_throttled_periods_total",
    "berth_container_cpu_throttled_seconds_total", "berth_container_memory_usage_bytes",
    "berth_container_memory_working_set_bytes", "berth_container_memory_rss_bytes",
    "berth_container_memory_limit_bytes", "berth_container_cpu_limit_cores",
    "berth_container_oom_events_total", "berth_container_pids",
    "berth_node_resource_capacity",  # SPEC's berth_node_resource_total: docs/metrics.md
    "berth_node_resource_reserved", "berth_node_resource_allocatable",
    "berth_node_resource_allocated", "berth_node_cpu_usage_seconds_total",
    "berth_node_memory_used_bytes", "berth_containers", "berth_launches_total",
    "berth_launch_duration_seconds",
]
TOKEN = "test-token-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_agent(agent_factory):
    port = free_port()
    agent = agent_factory(start=False)
    token = os.path.join(agent.tmp, "token")
    with open(token, "w") as f:
        f.write(TOKEN + "\n")
    agent.argv[agent.argv.index("--listen=unix:" + agent.sock)] = \
        "--listen=unix:%s,tcp:127.0.0.1:%d" % (agent.sock, port)
    agent.argv.append("--api_token_file=" + token)
    agent.start()
    return agent, port


def http_get(url, headers=None, timeout=10):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_names_promtool_and_docs(agent):
    c = agent.probe("spin", 2, 1, 30, cpus=0.5, mem="64MiB")
    agent.wait_state(c["id"], "RUNNING")
    series = 'berth_container_cpu_usage_seconds_total{id="%s",' % c["id"]

    def sampled():  # a container's series appear once the sampler has read its cgroup
        st, text = agent.request("GET", "/metrics")
        assert st == 200
        return text if series in text else None
    text = bt.wait_for(sampled, 5, interval=0.1, what="a sample of %s in /metrics" % c["id"])
    for name in SPEC_NAMES:
        assert "# TYPE %s " % name in text, "metric %s missing" % name
    assert 'berth_container_cpu_usage_seconds_total{id="%s",name="%s"}' % (c["id"], c["name"]) \
        in text
    assert 'berth_launch_duration_seconds_bucket{le="+Inf"} 1' in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make check` installs Debian's prometheus package")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, "promtool check metrics:\n%s%s" % (r.stdout, r.stderr)
    docs = bt.read(os.path.join(bt.REPO, "docs", "metrics.md"))
    for name in SPEC_NAMES:
        assert name in docs, "%s is not in docs/metrics.md" % name


def test_tcp_listener_token(agent_factory):
    agent, port = tcp_agent(agent_factory)
    base = "http://127.0.0.1:%d" % port
    assert http_get(base + "/health")[0] == 200
    assert http_get(base + "/metrics")[0] == 200
    st, body = http_get(base + "/v1/containers")
    assert st == 401 and json.loads(body)["error"]["code"] == "UNAUTHORIZED"
    st, body = http_get(base + "/v1/containers", {"Authorization": "Bearer wrong-token-xxxxxx"})
    assert st == 401
    st, body = http_get(base + "/v1/containers", {"Authorization": "Bearer " + TOKEN})
    assert st == 200 and "containers" in json.loads(body)


def test_prometheus_scrapes_the_agent(agent_factory, tmp_path):
    prom = shutil.which("prometheus")
    if prom is None:
        pytest.fail("prometheus is missing: `make check` installs Debian's prometheus package")
    agent, port = tcp_agent(agent_factory)
    c = agent.probe("spin", 20, 1, cpus=0.5, mem="64MiB")
    agent.wait_state(c["id"], "RUNNING")
    pport = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                   "scrape_configs:\n  - job_name: berth\n    static_configs:\n"
                   "      - targets: ['127.0.0.1:%d']\n" % port)
    os.chmod(str(tmp_path), 0o755)
    p = subprocess.Popen([prom, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % (tmp_path / "db"),
                          "--web.listen-address=127.0.0.1:%d" % pport],
                         stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prom.log", "wb"))
    try:
        q = urllib.parse.quote('berth_container_cpu_usage_seconds_total{id="%s"}' % c["id"])
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (pport, q)

        def answered():
            try:
                st, body = http_get(url, timeout=2)
            except OSError:
                return None
            if st != 200:
                return None
            res = json.loads(body)["data"]["result"]
            return res if res and float(res[0]["value"][1]) > 0 else None
        try:
            res = bt.wait_for(answered, 45, interval=0.5, what="prometheus to answer the query")
        except AssertionError:
            st, targets = http_get("http://127.0.0.1:%d/api/v1/targets" % pport)
            st2, last = http_get(url)
            st3, mine = http_get("http://127.0.0.1:%d/metrics" % port)
            mine = [l for l in mine.splitlines() if "cpu_usage_seconds_total" in l]
            raise AssertionError("no answer; targets: %s\nquery: %s\nagent: %s\nstate: %s"
                                 % (targets, last, mine, {k: agent.inspect(c["id"])[k] for k in ("state", "reason", "message", "exit_code", "signal")}))
        assert res[0]["metric"]["name"] == c["name"]
        assert res[0]["metric"]["job"] == "berth"
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
