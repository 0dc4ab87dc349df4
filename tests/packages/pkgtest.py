# SPDX-License-Identifier: Apache-2.0
"""tests/packages/pkgtest.py - what the static package checks share (test_packages.py,
test_packages_docs.py): where run.sh put the packages, what each must hold, and small
helpers to run a tool and read a package. BUILT says whether run.sh set it all up."""

import os
import re
import subprocess


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKGS = ["berth-agent", "berth-master", "berth-apps", "berth-lb"]
# the daemons that run as a system user of their own, in systemd's sandbox
USER_PKGS = ["berth-master", "berth-apps"]
DEBS = {"berth-agent": os.environ.get("BERTH_PKG_DEB", ""),
        "berth-master": os.environ.get("BERTH_PKG_MASTER_DEB", ""),
        "berth-apps": os.environ.get("BERTH_PKG_APPS_DEB", ""),
        "berth-lb": os.environ.get("BERTH_PKG_LB_DEB", "")}
UP_DEBS = {"berth-agent": os.environ.get("BERTH_PKG_UP_DEB", ""),
           "berth-master": os.environ.get("BERTH_PKG_MASTER_UP_DEB", ""),
           "berth-apps": os.environ.get("BERTH_PKG_APPS_UP_DEB", ""),
           "berth-lb": os.environ.get("BERTH_PKG_LB_UP_DEB", "")}
RPMS = {"berth-agent": os.environ.get("BERTH_PKG_RPM", ""),
        "berth-master": os.environ.get("BERTH_PKG_MASTER_RPM", ""),
        "berth-apps": os.environ.get("BERTH_PKG_APPS_RPM", ""),
        "berth-lb": os.environ.get("BERTH_PKG_LB_RPM", "")}
DEB, UP_DEB, RPM = DEBS["berth-agent"], UP_DEBS["berth-agent"], RPMS["berth-agent"]
PKG_DIR = os.environ.get("BERTH_PKG_DIR", "")
BUILD = os.environ.get("BERTH_PKG_BUILD", "")
RPMLINT_HOME = os.environ.get("BERTH_PKG_RPMLINT_HOME", "")


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
    # no /var/lib/berth-apps either (StateDirectory=); its docs are docs/apps.md
    "berth-apps": [
        "/etc/berth/", "/etc/berth/apps.conf", "/usr/libexec/berth/berth-apps-init",
        "/usr/sbin/berth-apps", "/usr/share/doc/berth-apps/README.md",
        "/usr/share/doc/berth-apps/apps.md", "/usr/share/man/man5/berth-apps.conf.5.gz",
        "/usr/share/man/man8/berth-apps.8.gz",
    ],
    # no /run/berth-lb: the unit's RuntimeDirectory= makes it; its docs are docs/lb.md
    "berth-lb": [
        "/etc/berth/", "/etc/berth/lb.conf", "/usr/sbin/berth-lb",
        "/usr/share/doc/berth-lb/README.md", "/usr/share/doc/berth-lb/lb.md",
        "/usr/share/man/man5/berth-lb.conf.5.gz", "/usr/share/man/man8/berth-lb.8.gz",
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
            "berth-master": ["berth-master"], "berth-apps": ["berth-apps"],
            "berth-lb": ["berth-lb"]}
INSTALLED = {"berth-agent": "/usr/sbin/berth-agent", "berth-executor":
             "/usr/libexec/berth/berth-executor", "berthctl": "/usr/bin/berthctl",
             "berth-master": "/usr/sbin/berth-master", "berth-apps": "/usr/sbin/berth-apps",
             "berth-lb": "/usr/sbin/berth-lb"}
CONFFILE = {"berth-agent": "/etc/berth/agent.conf", "berth-master": "/etc/berth/master.conf",
            "berth-apps": "/etc/berth/apps.conf", "berth-lb": "/etc/berth/lb.conf"}
# who owns what the package leaves behind, and what purge deletes
STATE_DIR = {"berth-agent": "/var/lib/berth", "berth-master": "/var/lib/berth-master",
             "berth-apps": "/var/lib/berth-apps", "berth-lb": "/run/berth-lb"}


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, **kw)


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


BUILT = bool(all(DEBS.values()) and all(RPMS.values()) and BUILD)
