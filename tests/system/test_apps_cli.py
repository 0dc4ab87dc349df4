# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_apps_cli.py - `berthctl --apps URL app ...` (docs/cli.md, "With --apps")
against a real berth-apps (appstest.py's apps_env: TLS, on a real berth-master) with a real
agent: every verb (deploy
as create and as update, ls and ls -q, inspect with and without -o json, scale, restart,
update, tasks, rm), the token from --token-file and from $BERTH_APPS_TOKEN_FILE, an app file
on stdin, `inspect` naming the constraint an instance waits for, and the error lines: an
unknown app, a wrong or missing token, a certificate not of --cacert, an unreachable URL, a
file berth-apps refuses,
local checks made before any call. Instances are busybox httpd servers on $PORT0 with an
HTTP health check; the test reaches each on the address `app tasks` prints."""

import json
import os
import re
import subprocess
import urllib.request

import berthtest as bt
import mastertest as mt
from appstest import apps_env  # noqa: F401 (fixture)

SERVER = ("d=$(mktemp -d) && echo ok >\"$d/index.html\" && "
          "exec busybox httpd -f -p \"$PORT0\" -h \"$d\"")
WAIT = 60


class Ctl:
    """berthctl --apps on appstest's berth-apps (TLS: --cacert the session's CA)."""

    def __init__(self, apps):
        self.apps = apps
        self.url = apps.url
        self.token_file = apps.token_file

    def ctl(self, *args, token_file=True, url=None, cacert=True, stdin=None, env=None):
        argv = [bt.CTL_BIN, "--apps", url or self.url]
        if cacert is True:
            argv += ["--cacert", self.apps.ca]
        elif cacert:
            argv += ["--cacert", cacert]
        if token_file is True:
            argv += ["--token-file", self.token_file]
        elif token_file:
            argv += ["--token-file", token_file]
        e = dict(os.environ)
        for k in ("BERTH_APPS_TOKEN_FILE", "BERTH_TOKEN_FILE", "BERTH_CACERT"):
            e.pop(k, None)
        e.update(env or {})
        return subprocess.run(argv + [str(a) for a in args], capture_output=True, text=True,
                              timeout=60, input=stdin, env=e)

    def ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        assert r.returncode == 0 and r.stderr == "", "berthctl %s: %r" % (args, r)
        return r.stdout


def cluster(apps_env, n_agents=1):
    return Ctl(apps_env(n_agents=n_agents).apps)


def app_file(path, app_id, instances, **extra):
    app = {"id": app_id, "command": SERVER, "instances": instances, "cpus": 0.05,
           "mem": "16MiB", "pids": 16, "ports": [{"name": "http"}], "network": "host",
           "health_checks": [{"type": "http", "port_index": 0, "path": "/", "interval": 1,
                              "grace": 30}]}
    app.update(extra)
    with open(path, "w") as f:
        json.dump(app, f)
    return path


def table(out):
    """berthctl's table as a list of {column: cell} (cells are 3 or more spaces apart)."""
    lines = out.rstrip("\n").split("\n")
    head = re.split(r" {3,}", lines[0].strip())
    return [dict(zip(head, re.split(r" {3,}", l.strip()))) for l in lines[1:] if l.strip()]


def inspect_split(out):
    """app inspect's output: (the JSON object, the lines after it)."""
    obj, end = json.JSONDecoder().raw_decode(out)
    return obj, [l for l in out[end:].split("\n") if l]


def wait_tasks(apps, app_id, n, version=None):
    """`app tasks` until n rows are RUNNING and healthy (of version when given)."""
    def ok():
        rows = table(apps.ok("app", "tasks", app_id))
        good = [r for r in rows if r["STATE"] == "RUNNING" and r["HEALTHY"] == "yes"
                and (version is None or r["VERSION"] == version)]
        return rows if len(good) == n and len(rows) == n else None
    return bt.wait_for(ok, WAIT, interval=0.2,
                       what="%d instances of '%s' RUNNING and healthy" % (n, app_id))


def wait_settled(apps, app_id):
    """The app's deployments done (`app ls` DEPLOYMENTS '-')."""
    def ok():
        rows = [r for r in table(apps.ok("app", "ls")) if r["ID"] == app_id]
        return rows[0] if rows and rows[0]["DEPLOYMENTS"] == "-" else None
    return bt.wait_for(ok, WAIT, interval=0.2, what="the deployments of '%s' done" % app_id)


def one_error_line(r, pattern):
    assert r.returncode == 1, r
    assert r.stdout == "", r
    assert r.stderr.count("\n") == 1, r.stderr
    assert re.fullmatch(pattern + r"\n", r.stderr), r.stderr


def test_app_verbs(apps_env, tmp_path):
    apps = cluster(apps_env)
    # nothing yet: the header alone, and -q nothing
    assert apps.ok("app", "ls").split() == ["ID", "INSTANCES", "RUNNING", "HEALTHY", "VERSION",
                                            "WAITING", "DEPLOYMENTS"]
    assert apps.ok("app", "ls", "-q") == ""

    # deploy = create: the deployment id on stdout
    web = app_file(str(tmp_path / "web.json"), "web", 2, env={"GREETING": "one"})
    dep = apps.ok("app", "deploy", web).strip()
    assert re.fullmatch(r"\S+", dep), dep
    rows = wait_tasks(apps, "web", 2)
    for r in rows:
        # each instance answers on the port the table gives (the host is the agent's name,
        # apps-a, which is this host)
        host, port = r["ADDRESS"].rsplit(":", 1)
        assert host == "apps-a"
        with urllib.request.urlopen("http://127.0.0.1:%s/" % port, timeout=10) as resp:
            assert resp.status == 200 and resp.read() == b"ok\n"
    first_ids = {r["ID"] for r in rows}
    row = wait_settled(apps, "web")
    assert (row["INSTANCES"], row["RUNNING"], row["HEALTHY"], row["WAITING"]) == \
        ("2", "2", "2", "0")
    v1 = row["VERSION"]
    assert apps.ok("app", "ls", "-q") == "web\n"
    listed = json.loads(apps.ok("app", "ls", "-o", "json"))
    assert [a["id"] for a in listed["apps"]] == ["web"]

    # inspect: the app as JSON, nothing waits so nothing after it; -o json the same JSON
    obj, after = inspect_split(apps.ok("app", "inspect", "web"))
    assert obj["id"] == "web" and obj["instances"] == 2 and obj["env"] == {"GREETING": "one"}
    assert after == []
    assert json.loads(apps.ok("app", "inspect", "-o", "json", "web"))["id"] == "web"
    tasks = json.loads(apps.ok("app", "tasks", "web", "-o", "json"))["tasks"]
    assert {t["id"] for t in tasks} == first_ids

    # scale 2 -> 3: the two kept, one more
    dep = apps.ok("app", "scale", "web", "3").strip()
    assert re.fullmatch(r"\S+", dep)
    rows = wait_tasks(apps, "web", 3)
    assert first_ids < {r["ID"] for r in rows}
    wait_settled(apps, "web")

    # deploy of an app that exists = update (PUT): a new version, rolled out
    app_file(web, "web", 3, env={"GREETING": "two"})
    assert re.fullmatch(r"\S+\n", apps.ok("app", "deploy", web))
    row = wait_settled(apps, "web")
    v2 = row["VERSION"]
    assert v2 != v1
    wait_tasks(apps, "web", 3, version=v2)
    obj, _ = inspect_split(apps.ok("app", "inspect", "web"))
    assert obj["env"] == {"GREETING": "two"}

    # update ID FILE, from stdin
    text = json.dumps(dict(json.load(open(web)), labels={"team": "cli"}))
    assert re.fullmatch(r"\S+\n", apps.ok("app", "update", "web", "-", stdin=text))
    v3 = wait_settled(apps, "web")["VERSION"]
    assert v3 != v2
    assert inspect_split(apps.ok("app", "inspect", "web"))[0]["labels"] == {"team": "cli"}

    # restart: a new version of the same definition, every instance replaced
    before = {r["ID"] for r in wait_tasks(apps, "web", 3, version=v3)}
    assert re.fullmatch(r"\S+\n", apps.ok("app", "restart", "web"))
    v4 = wait_settled(apps, "web")["VERSION"]
    assert v4 != v3
    rows = wait_tasks(apps, "web", 3, version=v4)
    assert not before & {r["ID"] for r in rows}

    # the token from $BERTH_APPS_TOKEN_FILE, the CA from $BERTH_CACERT; $BERTH_TOKEN_FILE
    # (the master's) is not used
    r = apps.ctl("app", "ls", "-q", token_file=None, cacert=None,
                 env={"BERTH_APPS_TOKEN_FILE": apps.token_file, "BERTH_CACERT": apps.apps.ca})
    assert (r.returncode, r.stdout) == (0, "web\n"), r
    r = apps.ctl("app", "ls", "-q", token_file=None, env={"BERTH_TOKEN_FILE": apps.token_file})
    one_error_line(r, r"berthctl: UNAUTHORIZED: .*")

    # rm: the deployment id, then the app is gone and its instances with it
    assert re.fullmatch(r"\S+\n", apps.ok("app", "rm", "web"))

    def gone():
        r = apps.ctl("app", "inspect", "web")
        return r if r.returncode == 1 else None
    one_error_line(bt.wait_for(gone, WAIT, what="app web gone"),
                   r"berthctl: NOT_FOUND: no app 'web'")
    bt.wait_for(lambda: apps.ok("app", "ls", "-q") == "", WAIT, what="no app listed")


def test_inspect_says_why_instances_wait(apps_env, tmp_path):
    apps = cluster(apps_env)
    # one agent, UNIQUE hostname, 3 instances: one runs, two wait for the constraint
    f = app_file(str(tmp_path / "uniq.json"), "uniq", 3, constraints=[["hostname", "UNIQUE"]])
    apps.ok("app", "deploy", f)
    wait_tasks(apps, "uniq", 1)

    def waiting():
        obj, after = inspect_split(apps.ok("app", "inspect", "uniq"))
        return (obj, after) if after else None
    obj, after = bt.wait_for(waiting, WAIT, interval=0.2, what="app uniq says what waits")
    assert obj["waiting"][0]["reason"] == "CONSTRAINT"
    assert len(after) == len(obj["waiting"])
    assert re.fullmatch(r"2 instances wait: CONSTRAINT .*hostname.*UNIQUE.*", after[0]), after
    # the JSON alone with -o json; ls counts them
    assert json.loads(apps.ok("app", "inspect", "uniq", "-o", "json"))["waiting"]
    row = [r for r in table(apps.ok("app", "ls")) if r["ID"] == "uniq"][0]
    assert (row["RUNNING"], row["WAITING"]) == ("1", "2")
    apps.ok("app", "rm", "uniq")


def test_error_lines(apps_env, tmp_path):
    apps = cluster(apps_env)
    # an unknown app, for every verb that names one
    for args in (("inspect", "nope"), ("tasks", "nope"), ("scale", "nope", "2"),
                 ("restart", "nope"), ("rm", "nope")):
        one_error_line(apps.ctl("app", *args), r"berthctl: NOT_FOUND: .*'nope'.*")
    f = app_file(str(tmp_path / "a.json"), "a", 1)
    one_error_line(apps.ctl("app", "update", "nope", f),
                   r"berthctl: (NOT_FOUND|INVALID_ARGUMENT): .*")
    # a wrong token, no token
    bad = str(tmp_path / "bad.token")
    mt.write_token(bad, "x" * 40)
    one_error_line(apps.ctl("app", "ls", token_file=bad), r"berthctl: UNAUTHORIZED: .*")
    one_error_line(apps.ctl("app", "ls", token_file=None), r"berthctl: UNAUTHORIZED: .*")
    # a certificate that does not chain to --cacert (the system's CAs)
    r = apps.ctl("app", "ls", cacert="/etc/ssl/certs/ca-certificates.crt")
    one_error_line(r, r"berthctl: berth-apps at '%s' is not who it should be: .* \(--cacert\)"
                   % re.escape(apps.url))
    # nothing listens there
    url = "http://127.0.0.1:%d" % mt.free_port()
    one_error_line(apps.ctl("app", "ls", url=url),
                   r"berthctl: cannot connect to berth-apps at '%s': Connection refused"
                   % re.escape(url))
    # files berth-apps refuses: not JSON, a bad field; and one that is not there
    (tmp_path / "broken.json").write_text('{"id": "b", ')
    one_error_line(apps.ctl("app", "deploy", str(tmp_path / "broken.json")),
                   r"berthctl: INVALID_ARGUMENT: .*")
    app_file(str(tmp_path / "neg.json"), "neg", -1)
    one_error_line(apps.ctl("app", "deploy", str(tmp_path / "neg.json")),
                   r"berthctl: INVALID_ARGUMENT: .*instances.*")
    one_error_line(apps.ctl("app", "deploy", str(tmp_path / "missing.json")),
                   r"berthctl: app file '.*missing.json': No such file or directory")
    # local checks, before any call (the URL is unreachable: no call is made)
    one_error_line(apps.ctl("app", "scale", "web", "x", url=url),
                   r"berthctl: app scale: 'x' is not a number of instances \(0-1000\)")
    one_error_line(apps.ctl("app", "scale", "web", "1001", url=url),
                   r"berthctl: app scale: '1001' is not a number of instances \(0-1000\)")
    one_error_line(apps.ctl("app", "frobnicate", url=url), r"berthctl: app: unknown verb .*")
    one_error_line(apps.ctl("app", "inspect", url=url),
                   r"berthctl: app inspect: usage: berthctl --apps URL app inspect ID")
    one_error_line(apps.ctl("ps", url=url), r"berthctl: 'ps' is not a berth-apps verb .*")
    r = subprocess.run([bt.CTL_BIN, "app", "ls"], capture_output=True, text=True)
    one_error_line(r, r"berthctl: app: needs --apps URL \(berth-apps\)")
    r = subprocess.run([bt.CTL_BIN, "--apps", "ftp://x", "app", "ls"], capture_output=True,
                       text=True)
    one_error_line(r, r"berthctl: --apps: 'ftp://x' is not an http:// or https:// URL")
    # nothing was created by any of it
    assert apps.ok("app", "ls", "-q") == ""
