"""tests/packages/test_packages.py - static checks of the built packages, run by run.sh
(`make check-packages`) with BERTH_PKG_* naming the .deb, the upgrade .deb, the signed .rpm
and the package build tree: lintian and rpmlint (every remaining message must be an
override or filter with a written reason), the .rpm's files, scripts, config marks and
dependencies (rpm -qp), the .deb's contents and computed dependencies, the unit
(systemd-analyze verify), the manual pages (man -l), the completion (bash -n, and its verbs
and options against berthctl's help) and the conffile (against docs/config.md and the
agent's defaults). install-test.sh does the install, upgrade and purge."""

import glob
import gzip
import os
import re
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEB = os.environ.get("BERTH_PKG_DEB", "")
UP_DEB = os.environ.get("BERTH_PKG_UP_DEB", "")
RPM = os.environ.get("BERTH_PKG_RPM", "")
PKG_DIR = os.environ.get("BERTH_PKG_DIR", "")
BUILD = os.environ.get("BERTH_PKG_BUILD", "")
RPMLINT_HOME = os.environ.get("BERTH_PKG_RPMLINT_HOME", "")

if not (DEB and RPM and BUILD):
    pytest.skip("run by tests/packages/run.sh (make check-packages), which builds the packages",
                allow_module_level=True)

# What the packages hold (SPEC section 2, issue #8). Directories end in "/".
FILES_COMMON = [
    "/etc/berth/", "/etc/berth/agent.conf", "/etc/berth/agent.conf.d/",
    "/usr/bin/berthctl", "/usr/libexec/berth/", "/usr/libexec/berth/berth-executor",
    "/usr/sbin/berth-agent", "/usr/share/bash-completion/completions/berthctl",
    "/usr/share/doc/berth-agent/README.md", "/usr/share/doc/berth-agent/config.md",
    "/usr/share/man/man1/berthctl.1.gz", "/usr/share/man/man5/berth-agent.conf.5.gz",
    "/usr/share/man/man8/berth-agent.8.gz", "/var/lib/berth/",
]
FILES_DEB = FILES_COMMON + [
    "/lib/systemd/system/berth-agent.service",
    "/usr/share/doc/berth-agent/changelog.Debian.gz", "/usr/share/doc/berth-agent/copyright",
    "/usr/share/lintian/overrides/berth-agent",
]
FILES_RPM = FILES_COMMON + [
    "/usr/share/licenses/berth-agent/LICENSE",
    "/usr/lib/systemd/system/berth-agent.service",
    "/usr/share/bash-completion/", "/usr/share/bash-completion/completions/",
]
BINARIES = ["berth-agent", "berth-executor", "berthctl"]


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, **kw)


@pytest.fixture(scope="module")
def deb_root():
    """The .deb unpacked (dpkg-deb -x) into a temp dir."""
    d = tempfile.mkdtemp(prefix="berth-pkgtest-deb-")
    subprocess.run(["dpkg-deb", "-x", DEB, d], check=True)
    yield d
    shutil.rmtree(d)


def deb_listing(deb):
    out = run(["dpkg-deb", "-c", deb]).stdout
    paths = []
    for line in out.splitlines():
        name = line.split(None, 5)[5].split(" -> ")[0]
        name = name[1:] if name.startswith("./") else name
        name = "/" + name.lstrip("/")
        if name != "/":
            paths.append(name)
    return paths


def needed_sonames():
    """DT_NEEDED of the three binaries, as built for the packages."""
    sonames = set()
    for b in BINARIES:
        out = run(["readelf", "-d", os.path.join(BUILD, b)]).stdout
        sonames |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))
    return sonames


def comments_before(lines, i):
    """The comment lines directly above line i."""
    out = []
    j = i - 1
    while j >= 0 and lines[j].lstrip().startswith("#"):
        out.append(lines[j])
        j -= 1
    return out


# ---- lint ------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["deb", "upgrade-deb"])
def test_lintian_clean(which):
    deb = DEB if which == "deb" else UP_DEB
    # for the log: what was overridden, and why (--show-overrides changes the exit status)
    print(run(["lintian", "--pedantic", "--display-info", "--show-overrides", deb]).stdout)
    r = run(["lintian", "--fail-on", "error,warning", "--display-info", "--pedantic", deb])
    print(r.stdout + r.stderr)
    assert r.returncode == 0, "lintian failed:\n" + r.stdout
    assert not re.search(r"^[EW]: ", r.stdout, re.M)


def test_lintian_overrides_have_reasons():
    lines = open(os.path.join(REPO, "packaging/deb/lintian-overrides")).read().splitlines()
    tags = [i for i, l in enumerate(lines) if l.startswith("berth-agent:")]
    assert tags
    for i in tags:
        assert comments_before(lines, i), "override without a reason: " + lines[i]


def test_rpmlint_clean():
    spec = os.path.join(PKG_DIR, "rpm", "SPECS", "berth-agent.spec")
    env = dict(os.environ, HOME=RPMLINT_HOME)  # .rpmmacros there: the test key's rpm db
    r = run(["rpmlint", "-c", os.path.join(REPO, "packaging/rpm/rpmlint.toml"), RPM, spec],
            env=env)
    print(r.stdout + r.stderr)
    assert r.returncode == 0
    assert re.search(r"\b0 errors, 0 warnings\b", r.stdout), r.stdout


def test_rpmlint_filters_have_reasons():
    lines = open(os.path.join(REPO, "packaging/rpm/rpmlint.toml")).read().splitlines()
    filters = [i for i, l in enumerate(lines) if l.strip().startswith('"berth-agent')]
    assert filters
    for i in filters:
        assert comments_before(lines, i), "filter without a reason: " + lines[i]


def test_rpm_signed_and_verified():
    r = run(["rpm", "--dbpath", os.path.join(PKG_DIR, "rpmdb"), "-Kv", RPM])
    print(r.stdout)
    assert r.returncode == 0
    assert re.search(r"Header V4 RSA/SHA\d+ Signature, key ID \w+: OK", r.stdout)


# ---- the license ---------------------------------------------------------------------------

def test_license_is_apache_2():
    """LICENSE is the Apache License 2.0, and both packages say so: DEP-5 copyright with
    License: Apache-2.0 (the text in Debian's common-licenses), rpm License: Apache-2.0."""
    text = open(os.path.join(REPO, "LICENSE")).read()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    common = "/usr/share/common-licenses/Apache-2.0"
    if os.path.exists(common):
        assert text == open(common).read(), "LICENSE differs from " + common
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["dpkg-deb", "-x", DEB, d], check=True)
        copyright = open(os.path.join(d, "usr/share/doc/berth-agent/copyright")).read()
    assert copyright.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
    assert re.search(r"^Files: \*\n(.+\n)*License: Apache-2.0$", copyright, re.M)
    assert '"/usr/share/common-licenses/Apache-2.0"' in copyright
    assert rpm_q("--qf", "%{LICENSE}") == "Apache-2.0"
    assert "/usr/share/licenses/berth-agent/LICENSE" in rpm_q("-L").split()


# ---- the .rpm: rpm -qp -------------------------------------------------------------------

def rpm_q(*args):
    r = run(["rpm", "-qp"] + list(args) + [RPM])
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_rpm_files():
    out = rpm_q("--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]")
    got = sorted(l.split()[2] + ("/" if l.startswith("d") else "") for l in out.splitlines())
    assert got == sorted(FILES_RPM)
    for l in out.splitlines():
        perms, owner, path = l.split()
        assert owner == "root:root", l
        if path.endswith(("/berth-agent", "/berth-executor", "/berthctl")) and "/bin" in path \
                or "libexec/berth/berth-executor" in path:
            assert perms == "-rwxr-xr-x", l


def test_rpm_config_marks():
    assert rpm_q("-c").split() == ["/etc/berth/agent.conf"]
    marks = dict(l.split(" ", 1)[::-1] for l in rpm_q(
        "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]").splitlines() if l.strip())
    # c = %config, n = noreplace: a changed agent.conf is kept, the new one is .rpmnew
    assert marks["/etc/berth/agent.conf"] == "cn"
    docs = [p for p, f in marks.items() if "d" in f]
    assert "/usr/share/man/man1/berthctl.1.gz" in docs


def test_rpm_scripts():
    out = rpm_q("--scripts")
    parts = re.split(r"^(\w+) scriptlet \(using /bin/sh\):\n", out, flags=re.M)
    scripts = dict(zip(parts[1::2], parts[2::2]))
    assert set(scripts) == {"preinstall", "postinstall", "preuninstall", "postuninstall"}
    assert "groupadd -r berth" in scripts["preinstall"]
    # install: enable per preset, never start; erase: stop; upgrade: try-restart the agent
    assert "preset berth-agent.service" in scripts["postinstall"]
    assert "$1 -eq 0" in scripts["preuninstall"]
    assert "disable --now berth-agent.service" in scripts["preuninstall"]
    assert re.search(r"\$1 -ge 1 .*\n\s+systemctl try-restart berth-agent.service",
                     scripts["postuninstall"])
    # nothing in them touches a task (tasks live on across agent restarts)
    for name, text in scripts.items():
        assert not re.search(r"\b(kill|pkill|berthctl|cgroup)\b", text), name
        assert "rm -rf" not in text, name


def test_rpm_requires_computed():
    requires = set(rpm_q("--requires").split("\n"))
    for soname in needed_sonames():
        assert soname + "()(64bit)" in requires, "no automatic requires for " + soname
    assert "/usr/sbin/groupadd" in requires
    # the spec types no library dependency: rpm's ELF dependency generator computes them
    spec = open(os.path.join(REPO, "packaging/rpm/berth-agent.spec.in")).read()
    assert not re.search(r"^Requires:.*lib", spec, re.M)


# ---- the .deb ----------------------------------------------------------------------------

def test_deb_files():
    assert sorted(p for p in deb_listing(DEB) if not p.endswith("/") or p in FILES_DEB) == \
        sorted(FILES_DEB)


def test_deb_control_and_conffiles():
    ctrl = run(["dpkg-deb", "-f", DEB]).stdout
    assert "Package: berth-agent" in ctrl
    conffiles = run(["dpkg-deb", "--ctrl-tarfile", DEB], text=False).stdout
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["dpkg-deb", "-e", DEB, d], check=True)
        assert open(os.path.join(d, "conffiles")).read().split() == ["/etc/berth/agent.conf"]
        for s in ("postinst", "prerm", "postrm"):
            path = os.path.join(d, s)
            assert os.access(path, os.X_OK)
            assert run(["sh", "-n", path]).returncode == 0
        postinst = open(os.path.join(d, "postinst")).read()
        prerm = open(os.path.join(d, "prerm")).read()
        postrm = open(os.path.join(d, "postrm")).read()
    assert conffiles
    assert "addgroup --system --quiet berth" in postinst
    # upgrade: restart (the agent only); fresh install: start; remove: stop; never a task
    assert '_dh_action=restart' in postinst and 'deb-systemd-invoke $_dh_action' in postinst
    assert '[ "$1" = remove ]' in prerm
    for text in (postinst, prerm, postrm):
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        assert not re.search(r"\b(kill|pkill|berthctl)\b", code)
    # state goes on purge only
    purge = postrm.split('if [ "$1" = "purge" ]; then', 1)[1]
    assert "rm -rf --one-file-system /var/lib/berth" in purge
    assert postrm.count("rm -rf") == 1


def test_deb_depends_computed():
    depends = run(["dpkg-deb", "-f", DEB, "Depends"]).stdout
    # the control template types no library: dpkg-shlibdeps computed every one
    template = open(os.path.join(REPO, "packaging/deb/control")).read()
    assert re.search(r"^Depends: \$\{shlibs:Depends\}, adduser$", template, re.M)
    for soname in needed_sonames():
        lib = run(["dpkg-query", "-S", "*/" + soname]).stdout.split(":")[0]
        assert lib, soname
        assert re.search(r"(^|, )%s( \(|,|$)" % re.escape(lib), depends), (soname, lib, depends)


def test_deb_binaries_hardened(deb_root):
    for path in ("usr/sbin/berth-agent", "usr/libexec/berth/berth-executor", "usr/bin/berthctl"):
        f = os.path.join(deb_root, path)
        hdr = run(["readelf", "-h", "-d", "-l", "-S", f]).stdout
        assert "DYN (Position-Independent Executable" in hdr, path
        assert "GNU_RELRO" in hdr and "BIND_NOW" in hdr, path
        assert ".debug_info" not in hdr and ".symtab" not in hdr, path + " is not stripped"
        syms = run(["readelf", "--dyn-syms", "-W", f]).stdout
        assert "__stack_chk_fail" in syms, path


def test_deb_unit_is_the_packaging_one(deb_root):
    shipped = open(os.path.join(deb_root, "lib/systemd/system/berth-agent.service")).read()
    assert shipped == open(os.path.join(REPO, "packaging/berth-agent.service")).read()


# ---- the unit ----------------------------------------------------------------------------

def unit_settings():
    settings = {}
    for line in open(os.path.join(REPO, "packaging/berth-agent.service")):
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    return settings


def test_unit_settings():
    s = unit_settings()
    assert s["Delegate"] == ["yes"]
    assert s["KillMode"] == ["process"]  # tasks survive an agent restart
    assert s["Restart"] == ["on-failure"]
    assert s["Type"] == ["notify"]  # common/notify.c sends READY=1 once the API listens
    assert int(s["LimitNOFILE"][0]) >= 65536
    assert "network-online.target" in s["After"][0]
    assert s["ExecStart"] == ["/usr/sbin/berth-agent"]
    assert s["WantedBy"] == ["multi-user.target"]


def test_systemd_analyze_verify(deb_root):
    """systemd-analyze verify on the packaged unit, in a private mount namespace where the
    packaged binary and manual pages are overlaid on the host's /usr/sbin and
    /usr/share/man (verify checks that ExecStart exists and Documentation= man pages open)."""
    unit = os.path.join(deb_root, "lib/systemd/system/berth-agent.service")
    script = """set -e
mount -t overlay overlay -o lowerdir=$1/usr/sbin:/usr/sbin /usr/sbin
mount -t overlay overlay -o lowerdir=$1/usr/share/man:/usr/share/man /usr/share/man
exec systemd-analyze verify --man=yes "$2"
"""
    r = run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh",
             deb_root, unit])
    print(r.stdout + r.stderr)
    assert r.returncode == 0
    assert r.stdout + r.stderr == ""


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


def doc_keys():
    """{section: [keys]} from the tables under docs/config.md's '## Keys'."""
    md = open(os.path.join(REPO, "docs/config.md")).read()
    body = md.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    keys, section = {}, None
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
