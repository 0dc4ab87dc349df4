# SPDX-License-Identifier: Apache-2.0
"""tests/packages/test_packages.py - static checks of the built packages, berth-agent,
berth-master and berth-apps, run by run.sh (`make check-packages`) with BERTH_PKG_* naming
the .debs, the upgrade .debs, the signed .rpms and the package build tree: lintian and
rpmlint (every remaining message must be an override or filter with a written reason), the
license, the .rpms' files, scripts, config marks and dependencies (rpm -qp), the .debs'
contents and computed dependencies, the units (systemd-analyze verify, and security for the
master's and berth-apps' sandbox), test_packages_docs.py the manual pages, the completion
and the conffiles.
install-test.sh does the install, upgrade and purge."""

import os
import re
import subprocess
import tempfile

import pytest

from pkgtest import (  # what the package checks share
    BUILD,
    BUILT,
    BINARIES,
    CONFFILE,
    DEBS,
    FILES_DEB,
    FILES_RPM,
    INSTALLED,
    PKGS,
    PKG_DIR,
    REPO,
    RPMLINT_HOME,
    RPMS,
    STATE_DIR,
    UP_DEBS,
    USER_PKGS,
    comments_before,
    deb_listing,
    needed_sonames,
    run,
)

if not BUILT:
    pytest.skip("run by tests/packages/run.sh (make check-packages), which builds the packages",
                allow_module_level=True)


# ---- lint ------------------------------------------------------------------------------

@pytest.mark.parametrize("pkg", PKGS)
@pytest.mark.parametrize("which", ["deb", "upgrade-deb"])
def test_lintian_clean(pkg, which):
    deb = DEBS[pkg] if which == "deb" else UP_DEBS[pkg]
    # lintian leaves its MLDBM caches (mldbm-elf-*) in $TMPDIR: give it one that goes away
    with tempfile.TemporaryDirectory(prefix="berth-lintian-") as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        # for the log: what was overridden, and why (--show-overrides changes the exit status)
        print(run(["lintian", "--pedantic", "--display-info", "--show-overrides", deb],
                  env=env).stdout)
        r = run(["lintian", "--fail-on", "error,warning", "--display-info", "--pedantic", deb],
                env=env)
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
    assert re.search(r"\b%d packages and %d specfiles checked; 0 errors, 0 warnings\b"
                     % (len(PKGS), len(PKGS)), r.stdout), r.stdout


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
    if pkg == "berth-lb":
        # no user of its own (root: its HAProxy binds ports): no preinstall
        assert set(scripts) == {"postinstall", "preuninstall", "postuninstall"}
        assert "berth-lb --stop-haproxy" in scripts["preuninstall"]
    else:
        assert set(scripts) == {"preinstall", "postinstall", "preuninstall", "postuninstall"}
    if pkg == "berth-agent":
        assert "groupadd -r berth" in scripts["preinstall"]
    elif pkg in USER_PKGS:
        # the unit's User=: a system user with its own group, no login
        assert "groupadd -r %s" % pkg in scripts["preinstall"]
        assert re.search(r"useradd -r -g %s .*-s /sbin/nologin" % pkg, scripts["preinstall"])
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
    if pkg == "berth-lb":
        assert "haproxy >= 2.2" in requires
    else:
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
    elif pkg == "berth-lb":
        assert "adduser" not in postinst  # root: its HAProxy binds ports
        assert "berth-lb --stop-haproxy" in prerm  # remove: HAProxy soft-stops
    else:
        assert re.search(r"adduser --system --group .*--no-create-home", postinst)
        assert pkg in postinst.split("adduser", 1)[1].split("\n\n", 1)[0]
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
    if pkg == "berth-apps":
        # its API token is made at install and goes on purge; the master token is the
        # operator's and stays
        assert "/usr/libexec/berth/berth-apps-init" in postinst
        assert "rm -f /etc/berth/apps.token\n" in purge
        assert "apps-master.token" not in purge.split("rm -f", 1)[1].split("\n", 1)[0]


@pytest.mark.parametrize("pkg", PKGS)
def test_deb_depends_computed(pkg):
    depends = run(["dpkg-deb", "-f", DEBS[pkg], "Depends"]).stdout
    # the control template types no library: dpkg-shlibdeps computed every one
    template = open(os.path.join(REPO, "packaging/deb/control")).read()
    stanza = template.split("Package: %s\n" % pkg, 1)[1].split("\n\n", 1)[0]
    # besides the libraries: adduser (the users), openssl for the master (berth-gen-tls)
    extra = ", openssl" if pkg == "berth-master" else ""
    if pkg == "berth-lb":  # no user; the HAProxy it drives
        assert re.search(r"^Depends: \$\{shlibs:Depends\}, haproxy \(>= 2\.2\)$", stanza, re.M)
    else:
        assert re.search(r"^Depends: \$\{shlibs:Depends\}, adduser%s$" % extra, stanza, re.M)
    for soname in needed_sonames(pkg):
        # the package that ships it for this architecture (libm.so.6 is also libc6-i386's,
        # in /lib32): one of the owners must be a dependency
        owners = set()
        for line in run(["dpkg-query", "-S", "*/" + soname]).stdout.splitlines():
            owners |= {o.strip().split(":")[0] for o in line.split(": ", 1)[0].split(",")}
        assert owners, soname
        assert any(re.search(r"(^|, )%s( \(|,|$)" % re.escape(o), depends) for o in owners), \
            (soname, owners, depends)


def build_id(path):
    return run(["readelf", "-n", path]).stdout.split("Build ID: ")[1].split()[0]


@pytest.mark.parametrize("pkg", PKGS)
def test_deb_binaries_hardened(deb_roots, pkg):
    for b in BINARIES[pkg]:
        f = os.path.join(deb_roots[pkg], INSTALLED[b].lstrip("/"))
        hdr = run(["readelf", "-h", "-d", "-l", "-S", f]).stdout
        assert "DYN (Position-Independent Executable" in hdr, b
        assert "GNU_RELRO" in hdr and "BIND_NOW" in hdr, b
        assert ".debug_info" not in hdr and ".symtab" not in hdr, b + " is not stripped"
        if "INTERP" not in run(["readelf", "-l", f]).stdout:
            # static-pie (berth-executor): no dynamic symbols; the unstripped build shows the
            # stack protector, and the shipped file is that build, stripped
            assert b == "berth-executor", b + " is static"
            built = os.path.join(BUILD, b)
            assert build_id(f) == build_id(built), b + " is not the build's binary"
            syms = run(["readelf", "-s", "-W", built]).stdout
        else:
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


@pytest.mark.parametrize("pkg", USER_PKGS)
def test_master_unit_settings(pkg):
    """berth-master.service and berth-apps.service: Type=notify, a system user of their
    own, and systemd's sandbox for a network daemon that writes nothing but its state
    directory (docs/install.md). The install test runs them under systemd and checks the
    running process."""
    s = unit_settings(pkg)
    assert s["Type"] == ["notify"]  # common/notify.c: READY=1 once the listener is bound
    assert s["ExecStart"] == ["/usr/sbin/" + pkg]
    assert s["User"] == [pkg] and s["Group"] == [pkg]
    assert s["StateDirectory"] == [pkg]  # /var/lib/PKG, its work_dir
    if pkg == "berth-apps":
        # started once the operator made its master token (docs/install.md)
        assert s["ConditionPathExists"] == ["/etc/berth/apps-master.token"]
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


@pytest.mark.parametrize("pkg", USER_PKGS)
def test_master_unit_exposure(deb_roots, pkg):
    """systemd's own rating of the master's and berth-apps' sandbox: at most 2.0 of 10
    ("OK"; a unit without sandboxing rates 9.6 UNSAFE)."""
    root = deb_roots[pkg]
    unit = os.path.join(root, "lib/systemd/system/%s.service" % pkg)
    r = run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
             verify_script("security --offline=true --threshold=20 --no-pager"), "sh", root,
             unit])
    print(r.stdout + r.stderr)
    m = re.search(r"Overall exposure level for %s.service: (\d+\.\d)" % pkg, r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0
    assert r.returncode == 0
