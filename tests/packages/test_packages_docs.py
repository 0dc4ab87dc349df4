# SPDX-License-Identifier: Apache-2.0
"""tests/packages/test_packages_docs.py - static checks of what the packages tell their
users, run by run.sh with test_packages.py: the manual pages (man -l, every option of the
binaries' --help), the completion (bash -n, and its verbs and options against berthctl's
help) and the conffiles (against docs/config.md, docs/apps.md and the daemons'
defaults)."""

import os
import re

import pytest

from pkgtest import (  # what the package checks share
    BUILT,
    BUILD,
    REPO,
    run,
)

if not BUILT:
    pytest.skip("run by tests/packages/run.sh (make check-packages), which builds the packages",
                allow_module_level=True)


# ---- manual pages ------------------------------------------------------------------------

def render(deb_root, page):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = run(["man", "--warnings", "-l", os.path.join(deb_root, page)], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", "groff warnings in %s:\n%s" % (page, r.stderr)
    return r.stdout


def help_options(text):
    """Long and short options named in a --help text."""
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text))


def berthctl_verbs():
    out = run([os.path.join(BUILD, "berthctl"), "--help"]).stdout
    block = out.split("Verbs:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in block.splitlines()]


def test_man_berthctl_renders_and_is_complete(deb_root):
    text = render(deb_root, "usr/share/man/man1/berthctl.1.gz")
    assert text.startswith("BERTHCTL(1)")
    ctl = os.path.join(BUILD, "berthctl")
    verbs = berthctl_verbs()
    assert {"run", "ps", "kill", "exec", "node"} <= set(verbs)
    missing = []
    for v in verbs:
        if not re.search(r"^   %s$" % v, text, re.M):
            missing.append("verb " + v)
        for opt in help_options(run([ctl, v, "--help"]).stdout) - {"-h", "--help"}:
            if opt not in text:
                missing.append("%s %s" % (v, opt))
    for opt in help_options(run([ctl, "--help"]).stdout.split("Verbs:")[0]):
        if opt not in text:
            missing.append("global " + opt)
    assert not missing, "berthctl.1 lacks: %s" % missing


def test_man_berth_agent_renders_and_is_complete(deb_root):
    text = render(deb_root, "usr/share/man/man8/berth-agent.8.gz")
    assert text.startswith("BERTH-AGENT(8)")
    opts = help_options(run([os.path.join(BUILD, "berth-agent"), "--help"]).stdout)
    opts -= {"--work_dir", "--listen", "--reserved", "--resources"}  # examples, not options
    missing = sorted(o for o in opts if o not in text)
    assert not missing, "berth-agent.8 lacks %s" % missing


def test_man_berth_master_renders_and_is_complete(deb_roots):
    text = render(deb_roots["berth-master"], "usr/share/man/man8/berth-master.8.gz")
    assert text.startswith("BERTH-MASTER(8)")
    opts = help_options(run([os.path.join(BUILD, "berth-master"), "--help"]).stdout)
    missing = sorted(o for o in opts if o not in text)
    assert not missing, "berth-master.8 lacks %s" % missing


def test_man_berth_apps_renders_and_is_complete(deb_roots):
    text = render(deb_roots["berth-apps"], "usr/share/man/man8/berth-apps.8.gz")
    assert text.startswith("BERTH-APPS(8)")
    opts = help_options(run([os.path.join(BUILD, "berth-apps"), "--help"]).stdout)
    missing = sorted(o for o in opts if o not in text)
    assert not missing, "berth-apps.8 lacks %s" % missing


def apps_doc_keys():
    """The keys of docs/config.md's berth-apps table, in order; docs/apps.md's list the
    same."""
    keys = doc_keys("## berth-apps")["master"]  # doc_keys files one-section tables so
    md = open(os.path.join(REPO, "docs/apps.md")).read()
    body = md.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\| `([a-z_]+)` \|", body, re.M) == keys
    return keys


def test_man_apps_conf_renders_and_has_every_key(deb_roots):
    text = render(deb_roots["berth-apps"], "usr/share/man/man5/berth-apps.conf.5.gz")
    assert text.startswith("BERTH-APPS.CONF(5)")
    keys = apps_doc_keys()
    assert {"listen", "token_file", "master", "master_token_file"} <= set(keys)
    block = text.split("\nKEYS\n", 1)[1]
    for k in keys:
        assert re.search(r"^       %s\b" % k, block, re.M), "[apps] %s" % k


# the keys the packaged apps.conf sets: the tokens, the master's CA, plain HTTP on loopback
APPS_SET = {"token_file": "/etc/berth/apps.token", "plain_http": "true",
            "master_ca": "/etc/berth/tls/ca.crt",
            "master_token_file": "/etc/berth/apps-master.token"}


def test_apps_conffile_every_key_commented_at_its_default(deb_roots):
    conf = open(os.path.join(deb_roots["berth-apps"], "etc/berth/apps.conf")).read()
    assert dict(re.findall(r"^([a-z_]+) = (.*)$", conf, re.M)) == APPS_SET
    defaults = run([os.path.join(BUILD, "berth-apps"), "--print-default-config"]).stdout
    uncommented = re.sub(r"^#([a-z_]+ =)", r"\1", conf, flags=re.M)
    # the keys it sets, with any value, on both sides: "key ="
    keys_set = r"^(%s) =.*$" % "|".join(APPS_SET)
    uncommented = re.sub(keys_set, r"\1 =", uncommented, flags=re.M)
    dflt = [re.sub(keys_set, r"\1 =", l) for l in defaults.splitlines()]
    note = [l for l in uncommented.splitlines() if l not in dflt]
    assert note and all(l.startswith(";") for l in note), note
    assert [l for l in uncommented.splitlines() if l not in note] == dflt
    # its keys are exactly the documented ones (docs/apps.md), in [apps]
    assert re.findall(r"^#?([a-z_]+) =", conf, re.M) == apps_doc_keys()
    assert re.search(r"^\[apps\]$", conf, re.M)


def doc_keys(heading="## Keys"):
    """{section: [keys]} from the tables under the docs/config.md section whose heading
    starts with heading: berth-agent's '## Keys', or '## berth-master' (one [master])."""
    md = open(os.path.join(REPO, "docs/config.md")).read()
    body = md.split("\n" + heading, 1)[1].split("\n## ", 1)[0]
    keys, section = {}, None if heading == "## Keys" else "master"
    for line in body.splitlines():
        m = re.match(r"### `\[([\w.]+)\]`", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"\| `([a-z_]+)` \|", line)
        if m and section:
            keys.setdefault(section, []).append(m.group(1))
    return keys


def test_man_conf_renders_and_has_every_key(deb_root):
    text = render(deb_root, "usr/share/man/man5/berth-agent.conf.5.gz")
    assert text.startswith("BERTH-AGENT.CONF(5)")
    keys = doc_keys()
    assert len(keys.get("agent", [])) >= 10
    for section, names in keys.items():
        block = text.split("[%s]" % section, 1)[1]
        for k in names:
            assert re.search(r"^       %s\b" % k, block, re.M), "[%s] %s" % (section, k)


def test_man_master_conf_renders_and_has_every_key(deb_roots):
    text = render(deb_roots["berth-master"], "usr/share/man/man5/berth-master.conf.5.gz")
    assert text.startswith("BERTH-MASTER.CONF(5)")
    keys = doc_keys("## berth-master")["master"]
    assert {"listen", "work_dir", "token_file"} <= set(keys)
    block = text.split("\nKEYS\n", 1)[1]
    for k in keys:
        assert re.search(r"^       %s\b" % k, block, re.M), "[master] %s" % k


# ---- completion --------------------------------------------------------------------------

COMPLETION = os.path.join(REPO, "packaging/completion/berthctl")


def complete(line, cmd="berthctl"):
    """COMPREPLY for `line` (cursor at the end), from the completion without bash-completion."""
    script = r'''source "$1"
COMP_LINE=$2; COMP_POINT=${#2}
read -r -a COMP_WORDS <<<"$2"
[[ $2 == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_WORDS[0]=$3
_berthctl berthctl
printf "%s\n" "${COMPREPLY[@]}"'''
    r = run(["bash", "--norc", "--noprofile", "-c", script, "bash", COMPLETION, line, cmd])
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_completion_syntax():
    assert run(["bash", "-n", COMPLETION]).returncode == 0


def test_completion_verbs_match_the_binary():
    ctl = os.path.join(BUILD, "berthctl")
    assert sorted(complete("berthctl ", ctl)) == sorted(berthctl_verbs() + ["help"])
    assert complete("berthctl ki", ctl) == ["kill"]


def test_completion_options_match_the_binary():
    ctl = os.path.join(BUILD, "berthctl")
    missing = []
    for v in berthctl_verbs():
        offered = set(complete("berthctl %s -" % v, ctl))
        longs = {o for o in help_options(run([ctl, v, "--help"]).stdout) if o.startswith("--")}
        missing += ["%s %s" % (v, o) for o in sorted(longs - offered)]
    assert not missing, "the completion does not offer: %s" % missing
    assert set(complete("berthctl --", ctl)) >= {"--socket", "--help", "--version"}


def test_completion_option_values():
    assert complete("berthctl kill --signal K") == ["KILL"]
    assert complete("berthctl ps -o ") == ["json"]
    assert complete("berthctl run --cpus-limit n") == ["none"]
    assert complete("berthctl run --cpus 2 --mem 1GiB --name ") == []
    assert complete("berthctl ps --filter state=RU") == ["state=RUNNING"]
    assert complete("berthctl ps -f status=ex") == ["status=exited"]
    assert "name=" in complete("berthctl ps --filter ")


# ---- the conffile ------------------------------------------------------------------------

def test_conffile_every_key_commented_at_its_default(deb_root):
    conf = open(os.path.join(deb_root, "etc/berth/agent.conf")).read()
    assert not re.search(r"^[a-z_]+\s*=", conf, re.M), "a key is set"
    # uncommented, it is exactly the agent's own defaults plus the note we add
    defaults = run([os.path.join(BUILD, "berth-agent"), "--print-default-config"]).stdout
    uncommented = re.sub(r"^#([a-z_]+ =)", r"\1", conf, flags=re.M)
    note = [l for l in uncommented.splitlines() if l not in defaults.splitlines()]
    assert all(l.startswith(";") for l in note), note
    assert [l for l in uncommented.splitlines() if l not in note] == defaults.splitlines()


def test_conffile_documents_every_key_of_the_docs(deb_root):
    conf = open(os.path.join(deb_root, "etc/berth/agent.conf")).read()
    section, found = None, {}
    for line in conf.splitlines():
        m = re.match(r"^\[([\w.]+)\]", line)
        if m:
            section = m.group(1)
        m = re.match(r"^#([a-z_]+) =", line)
        if m:
            found.setdefault(section, []).append(m.group(1))
    docs = doc_keys()
    docs.pop("role.NAME", None)  # shown as the commented [role.analytics] example
    assert found == docs
    assert "; [role.analytics]" in conf


# the keys the packaged master.conf sets: the files berth-master-init makes at install
MASTER_SET = {"token_file": "/etc/berth/master.token", "join_token_file": "/etc/berth/join.token",
              "tls_cert": "/etc/berth/tls/master.crt", "tls_key": "/etc/berth/tls/master.key"}


def test_master_conffile_every_key_commented_at_its_default(deb_roots):
    conf = open(os.path.join(deb_roots["berth-master"], "etc/berth/master.conf")).read()
    assert dict(re.findall(r"^([a-z_]+) = (.*)$", conf, re.M)) == MASTER_SET
    defaults = run([os.path.join(BUILD, "berth-master"), "--print-default-config"]).stdout
    uncommented = re.sub(r"^#([a-z_]+ =)", r"\1", conf, flags=re.M)
    for k in MASTER_SET:
        uncommented = re.sub(r"^%s = .*$" % k, "%s =" % k, uncommented, flags=re.M)
    note = [l for l in uncommented.splitlines() if l not in defaults.splitlines()]
    assert note and all(l.startswith(";") for l in note), note
    assert [l for l in uncommented.splitlines() if l not in note] == defaults.splitlines()
    # and its keys are exactly the documented ones, in [master]
    found = re.findall(r"^#?([a-z_]+) =", conf, re.M)
    assert found == doc_keys("## berth-master")["master"]
    assert re.search(r"^\[master\]$", conf, re.M)


# ---- berth-lb (issue #17) ------------------------------------------------------------------

def test_man_berth_lb_renders_and_is_complete(deb_roots):
    text = render(deb_roots["berth-lb"], "usr/share/man/man8/berth-lb.8.gz")
    assert text.startswith("BERTH-LB(8)")
    opts = help_options(run([os.path.join(BUILD, "berth-lb"), "--help"]).stdout)
    missing = sorted(o for o in opts if o not in text)
    assert not missing, "berth-lb.8 lacks %s" % missing


def test_man_lb_conf_renders_and_has_every_key(deb_roots):
    text = render(deb_roots["berth-lb"], "usr/share/man/man5/berth-lb.conf.5.gz")
    assert text.startswith("BERTH-LB.CONF(5)")
    keys = doc_keys("## berth-lb")["master"]
    assert {"apps", "token_file", "haproxy", "http_port", "slots"} <= set(keys)
    block = text.split("\nKEYS\n", 1)[1]
    for k in keys:
        assert re.search(r"^       %s\b" % k, block, re.M), "[lb] %s" % k


# the keys the packaged lb.conf sets: berth-apps' token and its loopback URL
LB_SET = {"apps": "http://127.0.0.1:5070", "token_file": "/etc/berth/apps.token"}


def test_lb_conffile_every_key_commented_at_its_default(deb_roots):
    conf = open(os.path.join(deb_roots["berth-lb"], "etc/berth/lb.conf")).read()
    assert dict(re.findall(r"^([a-z_]+) = (.*)$", conf, re.M)) == LB_SET
    defaults = run([os.path.join(BUILD, "berth-lb"), "--print-default-config"]).stdout
    uncommented = re.sub(r"^#([a-z_]+ =)", r"\1", conf, flags=re.M)
    keys_set = r"^(%s) =.*$" % "|".join(LB_SET)
    uncommented = re.sub(keys_set, r"\1 =", uncommented, flags=re.M)
    dflt = [re.sub(keys_set, r"\1 =", l) for l in defaults.splitlines()]
    note = [l for l in uncommented.splitlines() if l not in dflt]
    assert note and all(l.startswith(";") for l in note), note
    assert [l for l in uncommented.splitlines() if l not in note] == dflt
    # its keys are exactly the documented ones (docs/config.md's berth-lb table), in [lb]
    assert re.findall(r"^#?([a-z_]+) =", conf, re.M) == doc_keys("## berth-lb")["master"]
    assert re.search(r"^\[lb\]$", conf, re.M)
