"""tests/packages/test_packages.py - static checks of the built packages, berth-agent and
berth-master, run by run.sh (`make check-packages`) with BERTH_PKG_* naming the .debs, the
upgrade .debs, the signed .rpms and the package build tree: lintian and rpmlint (every
remaining message must be an override or filter with a written reason), the license, the
.rpms' files, scripts, config marks and dependencies (rpm -qp), the .debs' contents and
computed dependencies, the units (systemd-analyze verify, and security for the master's
sandbox), the manual pages (man -l), the completion (bash -n, and its verbs and options
against berthctl's help) and the conffiles (against docs/config.md and the daemons'
defaults). install-test.sh does the install, upgrade and purge."""

import glob
import gzip
import os
import re
import shutil
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKGS = ["berth-agent", "berth-master"]
DEBS = {"berth-agent": os.environ.get("BERTH_PKG_DEB", ""),
        "berth-master": os.environ.get("BERTH_PKG_MASTER_DEB", "")}
UP_DEBS = {"berth-agent": os.environ.get("BERTH_PKG_UP_DEB", ""),
           "berth-master": os.environ.get("BERTH_PKG_MASTER_UP_DEB", "")}
RPMS = {"berth-agent": os.environ.get("BERTH_PKG_RPM", ""),
        "berth-master": os.environ.get("BERTH_PKG_MASTER_RPM", "")}
DEB, UP_DEB, RPM = DEBS["berth-agent"], UP_DEBS["berth-agent"], RPMS["berth-agent"]
PKG_DIR = os.environ.get("BERTH_PKG_DIR", "")
BUILD = os.environ.get("BERTH_PKG_BUILD", "")
RPMLINT_HOME = os.environ.get("BERTH_PKG_RPMLINT_HOME", "")

if not (all(DEBS.values()) and all(RPMS.values()) and BUILD):
    pytest.skip("run by tests/packages/run.sh (make check-packages), which builds the packages",
                allow_module_level=True)

# What the packages hold (SPEC section 2, issues #8 and #19). Directories end in "/".
FILES_COMMON = {
    "berth-agent": [
        "/etc/berth/", "/etc/berth/agent.conf", "/etc/berth/agent.conf.d/",
        "/usr/bin/berthctl", "/usr/libexec/berth/", "/usr/libexec/berth/berth-executor",
        "/usr/sbin/berth-agent", "/usr/share/bash-completion/completions/berthctl",
        "/usr/share/doc/berth-agent/README.md", "/usr/share/doc/berth-agent/config.md",
        "/usr/share/man/man1/berthctl.1.gz", "/usr/share/man/man5/berth-agent.conf.5.gz",
        "/usr/share/man/man8/berth-agent.8.gz", "/var/lib/berth/",
    ],
    # no /var/lib/berth-master: the unit's StateDirectory= makes it, owned by berth-master
    "berth-master": [
        "/etc/berth/", "/etc/berth/master.conf", "/usr/libexec/berth/berth-master-init",
        "/usr/sbin/berth-gen-tls", "/usr/sbin/berth-master",
        "/usr/share/doc/berth-master/README.md", "/usr/share/doc/berth-master/config.md",
        "/usr/share/man/man5/berth-master.conf.5.gz", "/usr/share/man/man8/berth-gen-tls.8.gz",
        "/usr/share/man/man8/berth-master.8.gz",
    ],
}
FILES_DEB = {
    p: FILES_COMMON[p] + [
        "/lib/systemd/system/%s.service" % p,
        "/usr/share/doc/%s/changelog.Debian.gz" % p, "/usr/share/doc/%s/copyright" % p,
        "/usr/share/lintian/overrides/%s" % p,
    ] for p in PKGS}
FILES_RPM = {
    p: FILES_COMMON[p] + [
        "/usr/lib/systemd/system/%s.service" % p, "/usr/share/licenses/%s/LICENSE" % p,
    ] for p in PKGS}
FILES_RPM["berth-agent"] += ["/usr/share/bash-completion/",
                             "/usr/share/bash-completion/completions/"]
BINARIES = {"berth-agent": ["berth-agent", "berth-executor", "berthctl"],
            "berth-master": ["berth-master"]}
INSTALLED = {"berth-agent": "/usr/sbin/berth-agent", "berth-executor":
             "/usr/libexec/berth/berth-executor", "berthctl": "/usr/bin/berthctl",
             "berth-master": "/usr/sbin/berth-master"}
CONFFILE = {"berth-agent": "/etc/berth/agent.conf", "berth-master": "/etc/berth/master.conf"}
# who owns what the package leaves behind, and what purge deletes
STATE_DIR = {"berth-agent": "/var/lib/berth", "berth-master": "/var/lib/berth-master"}


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, **kw)


@pytest.fixture(scope="module")
def deb_roots():
    """{package: its .deb unpacked (dpkg-deb -x) into a temp dir}."""
    roots = {}
    for p in PKGS:
        roots[p] = tempfile.mkdtemp(prefix="berth-pkgtest-deb-")
        subprocess.run(["dpkg-deb", "-x", DEBS[p], roots[p]], check=True)
    yield roots
    for d in roots.values():
        shutil.rmtree(d)


@pytest.fixture(scope="module")
def deb_root(deb_roots):
    """The agent's .deb unpacked."""
    return deb_roots["berth-agent"]


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


def needed_sonames(pkg):
    """DT_NEEDED of the package's binaries, as built for the packages."""
    sonames = set()
    for b in BINARIES[pkg]:
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

@pytest.mark.parametrize("pkg", PKGS)
@pytest.mark.parametrize("which", ["deb", "upgrade-deb"])
def test_lintian_clean(pkg, which):
    deb = DEBS[pkg] if which == "deb" else UP_DEBS[pkg]
    # for the log: what was overridden, and why (--show-overrides changes the exit status)
    print(run(["lintian", "--pedantic", "--display-info", "--show-overrides", deb]).stdout)
    r = run(["lintian", "--fail-on", "error,warning", "--display-info", "--pedantic", deb])
    print(r.stdout + r.stderr)
    assert r.returncode == 0, "lintian failed:\n" + r.stdout
    assert not re.search(r"^[EW]: ", r.stdout, re.M)


@pytest.mark.parametrize("pkg", PKGS)
def test_lintian_overrides_have_reasons(pkg):
    lines = open(os.path.join(REPO, "packaging/deb/%s.lintian-overrides" % pkg)).read() \
        .splitlines()
    tags = [i for i, l in enumerate(lines) if l.startswith(pkg + ":")]
    assert tags
    assert all(l.startswith(("#", pkg + ":")) or not l.strip() for l in lines), \
        "an override for another package"
    for i in tags:
        assert comments_before(lines, i), "override without a reason: " + lines[i]


def test_rpmlint_clean():
    specs = [os.path.join(PKG_DIR, "rpm", "SPECS", p + ".spec") for p in PKGS]
    env = dict(os.environ, HOME=RPMLINT_HOME)  # .rpmmacros there: the test key's rpm db
    r = run(["rpmlint", "-c", os.path.join(REPO, "packaging/rpm/rpmlint.toml")] +
            [RPMS[p] for p in PKGS] + specs, env=env)
    print(r.stdout + r.stderr)
    assert r.returncode == 0
    assert re.search(r"\b2 packages and 2 specfiles checked; 0 errors, 0 warnings\b", r.stdout), \
        r.stdout


def test_rpmlint_filters_have_reasons():
    lines = open(os.path.join(REPO, "packaging/rpm/rpmlint.toml")).read().splitlines()
    filters = [i for i, l in enumerate(lines) if l.strip().startswith('"berth-')]
    assert filters
    for i in filters:
        assert comments_before(lines, i), "filter without a reason: " + lines[i]


@pytest.mark.parametrize("pkg", PKGS)
def test_rpm_signed_and_verified(pkg):
    r = run(["rpm", "--dbpath", os.path.join(PKG_DIR, "rpmdb"), "-Kv", RPMS[pkg]])
    print(r.stdout)
    assert r.returncode == 0
    assert re.search(r"Header V4 RSA/SHA\d+ Signature, key ID \w+: OK", r.stdout)


# ---- the license ---------------------------------------------------------------------------

def test_license_is_apache_2(deb_roots):
    """LICENSE is the Apache License 2.0, and every package says so: DEP-5 copyright with
    License: Apache-2.0 (the text in Debian's common-licenses), rpm License: Apache-2.0."""
    text = open(os.path.join(REPO, "LICENSE")).read()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    common = "/usr/share/common-licenses/Apache-2.0"
    if os.path.exists(common):
        assert text == open(common).read(), "LICENSE differs from " + common
    for p in PKGS:
        copyright = open(os.path.join(deb_roots[p], "usr/share/doc/%s/copyright" % p)).read()
        assert copyright.startswith(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
        assert re.search(r"^Files: \*\n(.+\n)*License: Apache-2.0$", copyright, re.M)
        assert '"/usr/share/common-licenses/Apache-2.0"' in copyright
        assert rpm_q(p, "--qf", "%{LICENSE}") == "Apache-2.0"
        assert "/usr/share/licenses/%s/LICENSE" % p in rpm_q(p, "-L").split()


# ---- the .rpm: rpm -qp -------------------------------------------------------------------

def rpm_q(pkg, *args):
    r = run(["rpm", "-qp"] + list(args) + [RPMS[pkg]])
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("pkg", PKGS)
def test_rpm_files(pkg):
    out = rpm_q(pkg, "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]")
    got = sorted(l.split()[2] + ("/" if l.startswith("d") else "") for l in out.splitlines())
    assert got == sorted(FILES_RPM[pkg])
    execs = {INSTALLED[b] for b in BINARIES[pkg]}
    for l in out.splitlines():
        perms, owner, path = l.split()
        assert owner == "root:root", l
        if path in execs:
            assert perms == "-rwxr-xr-x", l


@pytest.mark.parametrize("pkg", PKGS)
def test_rpm_config_marks(pkg):
    assert rpm_q(pkg, "-c").split() == [CONFFILE[pkg]]
    marks = dict(l.split(" ", 1)[::-1] for l in rpm_q(
        pkg, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]").splitlines() if l.strip())
    # c = %config, n = noreplace: a changed file is kept, the new one is .rpmnew
    assert marks[CONFFILE[pkg]] == "cn"
    docs = [p for p, f in marks.items() if "d" in f]
    assert "/usr/share/man/man8/%s.8.gz" % pkg in docs


@pytest.mark.parametrize("pkg", PKGS)
def test_rpm_scripts(pkg):
    out = rpm_q(pkg, "--scripts")
    parts = re.split(r"^(\w+) scriptlet \(using /bin/sh\):\n", out, flags=re.M)
    scripts = dict(zip(parts[1::2], parts[2::2]))
    unit = pkg + ".service"
    assert set(scripts) == {"preinstall", "postinstall", "preuninstall", "postuninstall"}
    if pkg == "berth-agent":
        assert "groupadd -r berth" in scripts["preinstall"]
    else:
        # the unit's User=: a system user with its own group, no login
        assert "groupadd -r berth-master" in scripts["preinstall"]
        assert re.search(r"useradd -r -g berth-master .*-s /sbin/nologin", scripts["preinstall"])
    # install: enable per preset, never start; erase: stop; upgrade: try-restart
    assert "preset %s" % unit in scripts["postinstall"]
    assert "$1 -eq 0" in scripts["preuninstall"]
    assert "disable --now %s" % unit in scripts["preuninstall"]
    assert re.search(r"\$1 -ge 1 .*\n\s+systemctl try-restart %s" % re.escape(unit),
                     scripts["postuninstall"])
    # nothing in them touches a task (tasks live on across agent restarts) or deletes state
    for name, text in scripts.items():
        assert not re.search(r"\b(kill|pkill|berthctl|cgroup)\b", text), name
        assert "rm -rf" not in text, name


@pytest.mark.parametrize("pkg", PKGS)
def test_rpm_requires_computed(pkg):
    requires = set(rpm_q(pkg, "--requires").split("\n"))
    for soname in needed_sonames(pkg):
        assert soname + "()(64bit)" in requires, "no automatic requires for " + soname
    assert "/usr/sbin/groupadd" in requires
    # the spec types no library dependency: rpm's ELF dependency generator computes them
    spec = open(os.path.join(REPO, "packaging/rpm/%s.spec.in" % pkg)).read()
    assert not re.search(r"^Requires:.*lib", spec, re.M)


# ---- the .deb ----------------------------------------------------------------------------

@pytest.mark.parametrize("pkg", PKGS)
def test_deb_files(pkg):
    assert sorted(p for p in deb_listing(DEBS[pkg])
                  if not p.endswith("/") or p in FILES_DEB[pkg]) == sorted(FILES_DEB[pkg])


@pytest.mark.parametrize("pkg", PKGS)
def test_deb_control_and_conffiles(pkg):
    ctrl = run(["dpkg-deb", "-f", DEBS[pkg]]).stdout
    assert "Package: %s\n" % pkg in ctrl
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["dpkg-deb", "-e", DEBS[pkg], d], check=True)
        assert open(os.path.join(d, "conffiles")).read().split() == [CONFFILE[pkg]]
        for s in ("postinst", "prerm", "postrm"):
            path = os.path.join(d, s)
            assert os.access(path, os.X_OK)
            assert run(["sh", "-n", path]).returncode == 0
        postinst = open(os.path.join(d, "postinst")).read()
        prerm = open(os.path.join(d, "prerm")).read()
        postrm = open(os.path.join(d, "postrm")).read()
    unit = pkg + ".service"
    if pkg == "berth-agent":
        assert "addgroup --system --quiet berth" in postinst
    else:
        assert re.search(r"adduser --system --group .*--no-create-home", postinst)
        assert "berth-master" in postinst.split("adduser", 1)[1].split("\n\n", 1)[0]
    # upgrade: restart (the daemon only); fresh install: start; remove: stop; never a task
    assert '_dh_action=restart' in postinst and 'deb-systemd-invoke $_dh_action' in postinst
    assert "'%s'" % unit in postinst and "'%s'" % unit in prerm and "'%s'" % unit in postrm
    assert '[ "$1" = remove ]' in prerm
    for text in (postinst, prerm, postrm):
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        assert not re.search(r"\b(kill|pkill|berthctl)\b", code)
    # state goes on purge only
    purge = postrm.split('if [ "$1" = "purge" ]; then', 1)[1]
    assert "rm -rf --one-file-system %s" % STATE_DIR[pkg] in purge
    # besides the state: the master's CA, certificate and tokens its postinst made
    assert postrm.count("rm -rf") == (2 if pkg == "berth-master" else 1)
    if pkg == "berth-master":
        assert "/usr/libexec/berth/berth-master-init" in postinst
        assert "rm -rf /etc/berth/tls" in purge


@pytest.mark.parametrize("pkg", PKGS)
def test_deb_depends_computed(pkg):
    depends = run(["dpkg-deb", "-f", DEBS[pkg], "Depends"]).stdout
    # the control template types no library: dpkg-shlibdeps computed every one
    template = open(os.path.join(REPO, "packaging/deb/control")).read()
    stanza = template.split("Package: %s\n" % pkg, 1)[1].split("\n\n", 1)[0]
    # besides the libraries: adduser (the users), openssl for the master (berth-gen-tls)
    extra = ", openssl" if pkg == "berth-master" else ""
    assert re.search(r"^Depends: \$\{shlibs:Depends\}, adduser%s$" % extra, stanza, re.M)
    for soname in needed_sonames(pkg):
        lib = run(["dpkg-query", "-S", "*/" + soname]).stdout.split(":")[0]
        assert lib, soname
        assert re.search(r"(^|, )%s( \(|,|$)" % re.escape(lib), depends), (soname, lib, depends)


@pytest.mark.parametrize("pkg", PKGS)
def test_deb_binaries_hardened(deb_roots, pkg):
    for b in BINARIES[pkg]:
        f = os.path.join(deb_roots[pkg], INSTALLED[b].lstrip("/"))
        hdr = run(["readelf", "-h", "-d", "-l", "-S", f]).stdout
        assert "DYN (Position-Independent Executable" in hdr, b
        assert "GNU_RELRO" in hdr and "BIND_NOW" in hdr, b
        assert ".debug_info" not in hdr and ".symtab" not in hdr, b + " is not stripped"
        syms = run(["readelf", "--dyn-syms", "-W", f]).stdout
        assert "__stack_chk_fail" in syms, b


@pytest.mark.parametrize("pkg", PKGS)
def test_deb_unit_is_the_packaging_one(deb_roots, pkg):
    shipped = open(os.path.join(deb_roots[pkg], "lib/systemd/system/%s.service" % pkg)).read()
    assert shipped == open(os.path.join(REPO, "packaging/%s.service" % pkg)).read()


# ---- the units ---------------------------------------------------------------------------

def unit_settings(pkg="berth-agent"):
    settings = {}
    for line in open(os.path.join(REPO, "packaging/%s.service" % pkg)):
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


def test_master_unit_settings():
    """berth-master.service: Type=notify, its own system user, and systemd's sandbox for a
    network daemon that writes nothing but its state directory (docs/install.md). The
    install test runs it under systemd and checks the running process."""
    s = unit_settings("berth-master")
    assert s["Type"] == ["notify"]  # common/notify.c: READY=1 once the listener is bound
    assert s["ExecStart"] == ["/usr/sbin/berth-master"]
    assert s["User"] == ["berth-master"] and s["Group"] == ["berth-master"]
    assert s["StateDirectory"] == ["berth-master"]  # /var/lib/berth-master, its work_dir
    assert s["Restart"] == ["on-failure"]
    for k in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
              "PrivateMounts", "PrivateUsers", "ProtectKernelTunables", "ProtectKernelModules",
              "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
              "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
              "MemoryDenyWriteExecute", "RemoveIPC"):
        assert s.get(k) == ["yes"], k
    assert s["ProtectSystem"] == ["strict"]
    assert s["CapabilityBoundingSet"] == [""] and s["AmbientCapabilities"] == [""]
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert s["SystemCallFilter"][0] == "@system-service"
    for k in ("Delegate", "KillMode"):  # the agent's, not the master's
        assert k not in s
    assert s["WantedBy"] == ["multi-user.target"]


def verify_script(tool_args):
    """A shell script for unshare: the packaged binaries and manual pages overlaid on the
    host's /usr/sbin and /usr/share/man, then systemd-analyze TOOL_ARGS "$2" (verify
    checks that ExecStart exists and that the Documentation= man pages open)."""
    return """set -e
mount -t overlay overlay -o lowerdir=$1/usr/sbin:/usr/sbin /usr/sbin
mount -t overlay overlay -o lowerdir=$1/usr/share/man:/usr/share/man /usr/share/man
exec systemd-analyze %s "$2"
""" % tool_args


@pytest.mark.parametrize("pkg", PKGS)
def test_systemd_analyze_verify(deb_roots, pkg):
    """systemd-analyze verify on the packaged unit, in a private mount namespace where the
    packaged binary and manual pages are overlaid on the host's."""
    root = deb_roots[pkg]
    unit = os.path.join(root, "lib/systemd/system/%s.service" % pkg)
    r = run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
             verify_script("verify --man=yes"), "sh", root, unit])
    print(r.stdout + r.stderr)
    assert r.returncode == 0
    assert r.stdout + r.stderr == ""


def test_master_unit_exposure(deb_roots):
    """systemd's own rating of the master's sandbox: at most 2.0 of 10 ("OK"; a unit
    without sandboxing rates 9.6 UNSAFE)."""
    root = deb_roots["berth-master"]
    unit = os.path.join(root, "lib/systemd/system/berth-master.service")
    r = run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
             verify_script("security --offline=true --threshold=20 --no-pager"), "sh", root,
             unit])
    print(r.stdout + r.stderr)
    m = re.search(r"Overall exposure level for berth-master.service: (\d+\.\d)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0
    assert r.returncode == 0


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
