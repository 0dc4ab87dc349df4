# SPDX-License-Identifier: Apache-2.0
"""tests/bench/crun_bundle.py BUNDLE_DIR CGROUP_PARENT - turn the config.json that
`crun spec` wrote in BUNDLE_DIR into the baseline of the launch benchmark: /bin/true with
the limits berth writes for `--cpus 1 --mem 1GiB` (quota 100000/100000, shares 1024,
memory 1 GiB) and berth's default namespaces (pid, mount, ipc, uts: crun's default list
without "network"), in a cgroup under CGROUP_PARENT."""

import json
import os
import sys


def main():
    bundle, parent = sys.argv[1], sys.argv[2]
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["terminal"] = False
    linux = spec["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    resources = linux.setdefault("resources", {})
    resources["cpu"] = {"quota": 100000, "period": 100000, "shares": 1024}
    resources["memory"] = {"limit": 1073741824}
    # crun's cgroupfs manager joins this under each hierarchy's mount point; run.sh binds
    # the shell's own cgroup over each mount point, so it lands under our own cgroups.
    linux["cgroupsPath"] = "/%s/bench" % parent
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
    print("namespaces: %s" % ",".join(ns["type"] for ns in linux["namespaces"]))


if __name__ == "__main__":
    main()
