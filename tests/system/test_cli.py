# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_cli.py - berthctl's everyday verbs against a real agent: logs (stdout,
stderr, --tail, -f following until the end), exec inside the sandbox, ps / inspect / rm,
ids by unique prefix and by name, node; ps -q piped into kill and rm (several ids), and
ps --filter."""

import json
import os
import subprocess
import time

import berthtest as bt


def test_logs(agent):
    c = agent.launch(["/bin/sh", "-c", "echo out1; echo err1 >&2; echo out2"])
    agent.wait_terminal(c["id"])
    r = agent.ctl("logs", c["id"])
    assert r.returncode == 0 and r.stdout == "out1\nout2\n", r
    r = agent.ctl("logs", "--stderr", c["id"])
    assert r.returncode == 0 and r.stdout == "err1\n", r
    r = agent.ctl("logs", "--tail", "1", c["id"])
    assert r.returncode == 0 and r.stdout == "out2\n", r
    st, text = agent.get("/v1/containers/%s/logs?stream=stdout&tail=1" % c["id"])
    assert st == 200 and text == "out2\n", (st, text)


def test_logs_follow_until_end(agent):
    c = agent.launch(["/bin/sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 0.4; done"])
    t0 = time.monotonic()
    p = subprocess.Popen([bt.CTL_BIN, "--socket", agent.sock, "logs", "-f", c["id"]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        assert first == "line1\n", first
        assert time.monotonic() - t0 < 1.2 * bt.SLOW, "the first line came only at the end"
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert first + out == "line1\nline2\nline3\nline4\n"
    assert agent.inspect(c["id"])["state"] == "FINISHED"


def test_exec_runs_inside(agent):
    c = agent.launch(["/bin/sh", "-c", "%s hostname; exec sleep 30" % bt.PROBE])
    agent.wait_output(c["id"], "hostname")
    agent.wait_state(c["id"], "RUNNING")
    task_host = bt.parse_kv(agent.output(c["id"]))["hostname"]
    r = agent.ctl("exec", c["id"], "--", bt.PROBE, "hostname", timeout=20)
    assert r.returncode == 0, r
    assert bt.parse_kv(r.stdout)["hostname"] == task_host
    r = agent.ctl("exec", c["id"], "--", bt.PROBE, "ps", timeout=20)
    assert r.returncode == 0, r
    kv = bt.parse_kv(r.stdout)
    pids = {int(p) for p in kv["pids"].split(",")}
    assert 1 in pids and len(pids) <= 4, "exec sees pids %s (not the sandbox's)" % sorted(pids)
    r = agent.ctl("exec", c["id"], "--", "/bin/sh", "-c", "exit 7", timeout=20)
    assert r.returncode == 7, r
    # exec'd processes are in the container's cgroup and gone afterwards
    assert all(bt.proc_comm(p) in ("berth-executor", "sleep") for p in agent.procs(c["id"]))


def test_ps_inspect_rm_prefix_name(agent):
    run = agent.launch(["sleep", "30"], name="sleeper")
    done = agent.launch(["true"], name="quick")
    agent.wait_state(run["id"], "RUNNING")
    agent.wait_terminal(done["id"])

    r = agent.ctl("ps")
    assert r.returncode == 0, r
    assert run["id"][:12] in r.stdout and "sleeper" in r.stdout
    assert "quick" not in r.stdout, "ps without -a lists an ended container"
    for col in ("ID", "NAME", "STATE", "CPUS", "MEM"):
        assert col in r.stdout.splitlines()[0]
    r = agent.ctl("ps", "-a")
    assert "quick" in r.stdout and "sleeper" in r.stdout, r.stdout
    r = agent.ctl("ps", "-a", "-o", "json")
    assert r.returncode == 0, r
    data = json.loads(r.stdout)
    items = data["containers"] if isinstance(data, dict) else data
    assert {c["name"] for c in items} >= {"sleeper", "quick"}

    for ref in (run["id"], run["id"][:6], "sleeper"):
        r = agent.ctl("inspect", ref)
        assert r.returncode == 0, (ref, r)
        assert json.loads(r.stdout)["id"] == run["id"]
    st, c = agent.get("/v1/containers/" + run["id"][:5])
    assert st == 200 and c["id"] == run["id"]

    # rm: a running container is refused, an ended one removed with its sandbox
    r = agent.ctl("rm", "sleeper")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r
    sandbox = agent.sandbox(done["id"])
    assert os.path.isdir(sandbox)
    r = agent.ctl("rm", "quick")
    assert r.returncode == 0, r
    assert not os.path.exists(sandbox), "rm left the sandbox dir"
    st, _ = agent.get("/v1/containers/" + done["id"])
    assert st == 404
    # its name is free again, and names the new container
    again = agent.launch(["true"], name="quick")
    r = agent.ctl("inspect", "quick")
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == again["id"], r
    # duplicate name refused
    st, err = agent.post("/v1/containers", {"name": "sleeper", "command": {"argv": ["true"]},
                                            "resources": {"cpus": 0.25, "mem": "32MiB"}})
    assert st == 409, (st, err)


def test_node_and_stats(agent):
    st, node = agent.get("/v1/node")
    assert st == 200, node
    res = node["resources"]
    assert float(res["total"]["cpus"]) == 4          # from BASE_CONF
    assert float(res["allocatable"]["cpus"]) == 4
    assert int(res["total"]["mem"]) - int(res["reserved"]["mem"]) == int(res["allocatable"]["mem"])
    c = agent.launch(["sleep", "30"], cpus=1, mem="128MiB")
    agent.wait_state(c["id"], "RUNNING")
    st, node = agent.get("/v1/node")
    assert float(node["resources"]["allocated"]["cpus"]) == 1
    assert int(node["resources"]["allocated"]["mem"]) == 128 << 20
    r = agent.ctl("node")
    assert r.returncode == 0 and "cpus" in r.stdout.lower(), r
    st, s = agent.get("/v1/containers/%s/stats" % c["id"])
    assert st == 200 and s["usage"]["pids"] >= 1, s
    r = agent.ctl("stats", c["id"])
    assert r.returncode == 0, r
    st, text = agent.get("/metrics")
    assert st == 200 and "berth_container_memory_usage_bytes" in text


def test_ps_quiet_piped_into_kill_kills_them_all(agent):
    """Issue #19: `berthctl ps -q` prints the ids, one per line, and `berthctl ps -q | xargs
    berthctl kill` ends every running container (kill takes several ids); -a adds the ended
    ones, --no-trunc the whole id."""
    live = [agent.launch(["sleep", "600"], name="sleeper-%d" % i)["id"] for i in range(3)]
    done = agent.launch(["true"], name="done")["id"]
    agent.wait_terminal(done)
    pids = [agent.wait_state(cid, "RUNNING")["pid"] for cid in live]
    r = agent.ctl("ps", "-q")
    assert r.returncode == 0 and r.stderr == "", r
    assert sorted(r.stdout.splitlines()) == sorted(cid[:12] for cid in live), r.stdout
    r = agent.ctl("ps", "-a", "-q", "--no-trunc")
    assert sorted(r.stdout.splitlines()) == sorted(live + [done]), r.stdout
    ctl = "%s --socket %s" % (bt.CTL_BIN, agent.sock)
    r = subprocess.run(["/bin/sh", "-c", "%s ps -q | xargs %s kill --grace 1" % (ctl, ctl)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r
    for cid in live:
        c = agent.wait_terminal(cid)
        assert (c["state"], c["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), c
    for p in pids:
        bt.wait_for(lambda: not bt.alive(p), 5, what="executor %d to be gone" % p)
    r = agent.ctl("ps", "-q")
    assert r.returncode == 0 and r.stdout == "", r
    # and rm takes several ids too: remove every ended one
    r = subprocess.run(["/bin/sh", "-c", "%s ps -aq | xargs -r %s rm" % (ctl, ctl)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r
    assert agent.ctl("ps", "-aq").stdout == ""


def test_kill_several_ids_reports_each_failure(agent):
    a = agent.launch(["sleep", "600"], name="k1")["id"]
    agent.wait_state(a, "RUNNING")
    r = agent.ctl("kill", "nosuch1", a, "nosuch2")
    # every id is tried; one line per failure, status 1
    assert r.returncode == 1, r
    assert r.stderr.splitlines() == ["berthctl: no container 'nosuch1'",
                                     "berthctl: no container 'nosuch2'"], r.stderr
    assert agent.wait_terminal(a)["state"] == "KILLED"
    r = agent.ctl("kill")
    assert r.returncode == 1 and r.stderr == "berthctl: kill: expected a container ID\n", r


def test_ps_filter(agent):
    """`ps --filter` as docker users type it: state= / status=, name=, id=, reason=; a key
    twice is either value, two keys both; a state filter lists ended containers without -a;
    an unknown key is one line on stderr and status 1."""
    web = agent.launch(["sleep", "600"], name="web-1")["id"]
    api = agent.launch(["sleep", "600"], name="api-1")["id"]
    ok = agent.launch(["true"], name="web-done")["id"]
    bad = agent.launch(["/bin/sh", "-c", "exit 3"], name="job")["id"]
    agent.wait_all_terminal([ok, bad])
    agent.wait_state(web, "RUNNING")
    agent.wait_state(api, "RUNNING")

    def ids(*args):
        r = agent.ctl("ps", "-q", "--no-trunc", *args)
        assert r.returncode == 0 and r.stderr == "", r
        return set(r.stdout.split())

    assert ids("--filter", "state=RUNNING") == {web, api}
    assert ids("--filter", "state=finished") == {ok}  # no -a needed
    assert ids("-f", "state=FINISHED", "-f", "state=FAILED") == {ok, bad}
    assert ids("--filter", "status=exited") == {ok, bad}
    assert ids("--filter", "status=running") == {web, api}
    assert ids("--filter", "name=web") == {web}  # without -a: running ones only
    assert ids("-a", "--filter", "name=web") == {web, ok}
    assert ids("-a", "--filter", "name=web", "--filter", "status=exited") == {ok}
    assert ids("-a", "--filter", "id=" + api[:6]) == {api}
    exited = {c for c in (ok, bad) if agent.inspect(c).get("reason") == "EXITED"}
    assert bad in exited
    assert ids("-a", "--filter", "reason=exited") == exited
    # the table and the JSON are filtered alike
    r = agent.ctl("ps", "--filter", "name=api")
    assert r.returncode == 0 and "api-1" in r.stdout and "web-1" not in r.stdout, r
    r = agent.ctl("ps", "-o", "json", "--filter", "state=FAILED")
    assert [c["id"] for c in json.loads(r.stdout)["containers"]] == [bad], r.stdout
    for bad_arg, msg in (("label=x", "ps: unknown filter 'label' (state, status, name, id, "
                                     "reason)"),
                         ("state=PAUSED", "ps: --filter 'state=PAUSED': no such state"),
                         ("running", "ps: --filter 'running': expected KEY=VALUE")):
        r = agent.ctl("ps", "--filter", bad_arg)
        assert r.returncode == 1 and r.stdout == "", r
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("berthctl: " + msg), r
    r = agent.ctl("ps", "-q", "-o", "json")
    assert r.returncode == 1 and "exclude each other" in r.stderr, r


SAN_RUNTIME = ("libasan.so", "libubsan.so", "libm.so", "libgcc_s.so", "libstdc++.so")


def _loaded_objects(ld_debug_dir):
    """The shared objects the dynamic loader mapped, from LD_DEBUG=files logs (one file per
    process): "file=libcurl.so.4 [0];  needed by ..." or "... dynamically loaded by ..."."""
    names = set()
    for f in os.listdir(ld_debug_dir):
        with open(os.path.join(ld_debug_dir, f)) as fh:
            for line in fh:
                line = line.strip()
                if "file=" in line and ("needed by" in line or "dynamically loaded" in line):
                    names.add(line.split("file=", 1)[1].split()[0])
    return names


def test_local_verbs_load_no_libcurl(agent, tmp_path):
    """Issue #18: berthctl on the agent's socket maps libc alone (libevent's HTTP client and
    yajl are linked in); libcurl, with its 33 libraries and ~4 ms of start-up, is dlopen'ed
    for --master only. Seen by the dynamic loader (LD_DEBUG=files, which also reports a
    dlopen) and, for a berthctl in mid-call, in /proc/PID/maps."""
    c = agent.launch(["/bin/sh", "-c", "echo hello=1; exec sleep 600"], name="lib-check")
    agent.wait_output(c["id"], "hello")

    def loaded(*args):
        d = tmp_path / ("ld-%d" % len(os.listdir(tmp_path)))
        d.mkdir()
        env = dict(os.environ, LD_DEBUG="files", LD_DEBUG_OUTPUT=str(d / "ld"))
        r = subprocess.run([bt.CTL_BIN] + list(args), capture_output=True, text=True,
                           timeout=30, env=env)
        names = _loaded_objects(d)
        assert "libc.so.6" in names, "LD_DEBUG reported nothing: %r" % names
        if any(n.startswith("libasan.so") for n in names):  # a SAN=1 build: its runtime
            names = {n for n in names if not n.startswith(SAN_RUNTIME)}
        return r, names

    for verb in (["ps"], ["inspect", "lib-check"], ["logs", "lib-check"], ["node"],
                 ["stats", "--no-stream", "lib-check"]):
        r, names = loaded("--socket", agent.sock, *verb)
        assert r.returncode == 0, (verb, r)
        assert names == {"libc.so.6"}, "berthctl %s loaded %s" % (verb[0], sorted(names))
    # the check sees a dlopen: --master loads libcurl (the connection is refused, one line)
    r, names = loaded("--master", "http://127.0.0.1:1", "agents")
    assert r.returncode == 1 and r.stderr.startswith(
        "berthctl: cannot connect to the master at 'http://127.0.0.1:1': "), r
    assert len(r.stderr.splitlines()) == 1, r
    assert "libcurl.so.4" in names, sorted(names)

    # a berthctl following a log, between two calls' bytes: nothing of curl is mapped
    p = subprocess.Popen([bt.CTL_BIN, "--socket", agent.sock, "logs", "-f", "lib-check"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "hello=1\n"
        with open("/proc/%d/maps" % p.pid) as f:
            maps = {line.split()[-1] for line in f if "/" in line.split()[-1]}
        libs = {os.path.basename(m) for m in maps if ".so" in os.path.basename(m)}
        if any(m.startswith("libasan.so") for m in libs):
            libs = {m for m in libs if not m.startswith(SAN_RUNTIME)}
        assert not any("curl" in m or "ssl" in m or "crypto" in m for m in libs), sorted(libs)
        assert {m.split(".so")[0] for m in libs} <= {"libc", "ld-linux-x86-64"}, sorted(libs)
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()
