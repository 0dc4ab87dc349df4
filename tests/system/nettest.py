# SPDX-License-Identifier: Apache-2.0
"""tests/system/nettest.py - what the networking tests share (test_ports.py,
test_network.py; issue #15): an agent that runs inside a network namespace the test makes
(so its bridge, its nftables table and ip_forward live and die there, never in the
machine's own namespace), a "client" namespace wired to it by a veth (the other hosts of
the network), clients that connect from either, and the leak check every such agent passes
at the end: no veth of ours, no port mapping, no task address left. Addresses: the tasks'
subnet 198.18.N.0/24, the uplink 198.19.N.0/24 (host .1, client .2), both in 198.18.0.0/15.
conftest.py's agent_factory makes the agent; this wraps its argv in nsenter --net."""

import itertools
import json
import os
import subprocess

import pytest

import berthtest as bt
from conftest import BASE_CONF

_counter = itertools.count(1)

# agentd's networking fault points (docs/design/recovery.md), walked by test_network.py: a
# crash there is before the launch's 201, so nothing of the launch may remain
NET_POINTS = {"net-after-veth": "gone", "net-after-nat": "gone"}

# "OK <what the server said first>" ("OK" alone when it says nothing), or "ERR <why>"
CONNECT = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
except OSError as e:
    print("ERR %s" % (e.__class__.__name__,))
    sys.exit(0)
s.settimeout(float(sys.argv[3]))
try:
    print(("OK " + s.recv(200).decode(errors="replace")).strip())
except OSError:
    print("OK")
"""

# a server for one connection that answers with the address it came from
PEER = r"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(8)
print("ready", flush=True)
while True:
    c, peer = srv.accept()
    c.sendall(("peer=%s\n" % peer[0]).encode())
    c.close()
"""


def run(argv, check=True, timeout=30):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * bt.SLOW)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %s: %s" % (" ".join(argv), r.returncode, r.stderr))
    return r


class NetNS:
    """A named network namespace (ip netns add), deleted at the end."""

    def __init__(self, name):
        self.name = name
        self.path = "/run/netns/" + name
        run(["ip", "netns", "add", name])
        self.ip("link", "set", "lo", "up")

    def run(self, *argv, check=True, timeout=30):
        return run(["ip", "netns", "exec", self.name] + [str(a) for a in argv], check, timeout)

    def ip(self, *args):
        return self.run("ip", *args)

    def connect(self, addr, port, timeout=3.0):
        """'OK <greeting>' or 'ERR <exception>' of a TCP connect from this namespace."""
        out = self.run("python3", "-c", CONNECT, addr, port, timeout * bt.SLOW,
                       timeout=timeout * bt.SLOW + 30).stdout.strip()
        return out

    def serve_peer(self, port):
        """A server in this namespace telling each client its address; kill() it."""
        p = subprocess.Popen(["ip", "netns", "exec", self.name, "python3", "-c", PEER, str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert p.stdout.readline().strip() == "ready"
        return p

    def delete(self):
        run(["ip", "netns", "del", self.name], check=False)


class NetEnv:
    """One agent in its own namespace `host`, the namespace `client` on its uplink."""

    def __init__(self, agent, n):
        self.agent = agent
        self.n = n
        self.subnet = "198.18.%d.0/24" % n
        self.gateway = "198.18.%d.1" % n
        self.uplink = "198.19.%d.1" % n  # the host's own address, as other hosts see it
        self.client_addr = "198.19.%d.2" % n
        tag = "bt%d-%d" % (os.getpid(), n)
        self.host = NetNS(tag + "h")
        self.client = NetNS(tag + "c")
        self.host.ip("link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns",
                     self.client.name)
        self.host.ip("addr", "add", self.uplink + "/24", "dev", "up0")
        self.host.ip("link", "set", "up0", "up")
        self.client.ip("addr", "add", self.client_addr + "/24", "dev", "eth0")
        self.client.ip("link", "set", "eth0", "up")
        self.client.ip("route", "add", "default", "via", self.uplink)

    def links(self):
        """{name: alias} of the veths in the agent's namespace (`ip -d link`)."""
        out = json.loads(self.host.ip("-j", "-d", "link", "show").stdout or "[]")
        return {l["ifname"]: l.get("ifalias", "") for l in out
                if l.get("linkinfo", {}).get("info_kind") == "veth" and l["ifname"] != "up0"}

    def mappings(self):
        """The elements of the agent's map as nft lists them, "tcp . 31000 : 198.18.1.2 .
        8080" each ([] when there is no table or no element)."""
        r = self.host.run("nft", "list", "map", "inet", "berth", "ports", check=False)
        text = " ".join(r.stdout.split()) if r.returncode == 0 else ""
        if "elements = {" not in text:
            return []
        body = text.split("elements = {", 1)[1].split("}", 1)[0]
        # without /etc/protocols (the VM suite's guest) nft prints the protocols' numbers
        names = {"6": "tcp", "17": "udp"}
        return [" ".join([names.get(e.split()[0], e.split()[0])] + e.split()[1:])
                for e in body.split(",") if e.strip()]

    def ruleset(self):
        return self.host.run("nft", "list", "ruleset").stdout

    def leaks(self):
        """What is left of tasks that ended: veths, mappings, addresses."""
        problems = []
        if self.links():
            problems.append("veths left: %s" % self.links())
        if self.mappings():
            problems.append("port mappings left: %s" % self.mappings())
        try:
            st, node = self.agent.get("/v1/node", timeout=5)
            if st == 200 and node["network"]["addresses_allocated"]:
                problems.append("addresses still allocated: %s" % node["network"])
        except OSError:
            pass
        return problems

    def delete(self):
        self.client.delete()
        self.host.delete()


def conf(n, extra=""):
    return BASE_CONF + "[network]\nsubnet = 198.18.%d.0/24\n" % n + extra


@pytest.fixture
def net_factory(agent_factory):
    """net_factory(extra_conf="", flags=(), start=True) -> NetEnv whose .agent runs in its
    own namespace. At the end: its tasks are killed, the agent stopped, and the test fails
    if a veth, a mapping or an address of an ended task is left; then both namespaces go
    (and with them the bridge, the table, ip_forward)."""
    envs = []

    def make(extra_conf="", flags=(), start=True):
        n = next(_counter) % 200 + 20
        a = agent_factory(conf=conf(n, extra_conf), flags=flags, start=False)
        a.argv = ["nsenter", "--net=/run/netns/bt%d-%dh" % (os.getpid(), n)] + a.argv
        env = NetEnv(a, n)
        envs.append(env)
        if start:
            a.start()
        return env

    yield make
    problems = []
    for env in envs:
        try:
            if env.agent.proc and env.agent.proc.poll() is None:
                env.agent.kill_all()
                problems += ["%s: %s" % (env.host.name, p) for p in env.leaks()]
                env.agent.stop()
        finally:
            env.delete()
    if problems:
        pytest.fail("network leak check failed:\n  " + "\n  ".join(problems), pytrace=False)


def addrs_of(output):
    """{ifname: [addr/prefix...]} and the set of UP links from `ip -o addr` and `ip -o link`
    printed by a task."""
    addrs, up = {}, set()
    for line in output.splitlines():
        f = line.split()
        if len(f) > 3 and f[2] == "inet":
            addrs.setdefault(f[1], []).append(f[3])
        elif len(f) > 2 and f[1].rstrip(":").split("@")[0] and "<" in f[2]:
            name = f[1].rstrip(":").split("@")[0]
            if "UP" in f[2].strip("<>").split(","):
                up.add(name)
    return addrs, up
