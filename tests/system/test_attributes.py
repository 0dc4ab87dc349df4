# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_attributes.py - issue #16, agent attributes end to end: two agents with
different [attributes] (and [agent] hostname, so two agents on this one host have names of
their own) register at a master; a framework written from docs/protocol.md (schedtest.
Framework) sees each agent's attributes and hostname on that agent's offers; GET /v1/agents,
GET /v1/offers, berthctl agents and the agent's GET /v1/node show them; the master keeps them
in master.db across its restart; an agent restarted with changed attributes brings the new
ones to the registry and the offers; a malformed attributes object in SUBSCRIBE is refused
with 400; and a bad attribute line makes the agent refuse to start, naming FILE:LINE."""

import secrets

import berthtest as bt
import mastertest as mt
import schedtest as st
import ssetest


def conf(hostname, attrs):
    text = st.agent_conf(2, "4GiB")
    text += "[agent]\nhostname = %s\n[attributes]\n" % hostname
    text += "".join("%s = %s\n" % kv for kv in attrs.items())
    return text


A_ATTRS = {"rack": "r1", "zone": "eu-west-1a", "gpu.model": "none"}
B_ATTRS = {"rack": "r2", "zone": "eu-west-1b"}


def registered(m):
    """{hostname: agent} of the registry."""
    return {a["hostname"]: a for a in m.agents()}


def offers_by_host(fw, want, timeout=15):
    """Collect offers until one of each hostname in want arrived: {hostname: offer}. Each
    offer is declined at once (refuse 0) so the next pass offers it again."""
    seen = {}

    def more():
        for o in fw.offers(timeout=2):
            seen[o["hostname"]] = o
            fw.decline([o["id"]], refuse=0)
        return seen if want <= set(seen) else None
    return bt.wait_for(more, timeout, interval=0, what="offers of %s" % sorted(want))


def test_attributes_on_registry_and_offers(master_factory, agent_factory):
    m, (a, b) = st.cluster(master_factory, agent_factory,
                           [conf("node-a", A_ATTRS), conf("node-b", B_ATTRS)])
    # the agent itself says what it sends
    assert a.get("/v1/node")[1]["attributes"] == A_ATTRS
    assert a.get("/v1/node")[1]["hostname"] == "node-a"
    # two agents on one host, two names, each with its own attributes (in their file order)
    reg = registered(m)
    assert set(reg) == {"node-a", "node-b"}, reg
    assert reg["node-a"]["attributes"] == A_ATTRS
    assert list(reg["node-a"]["attributes"]) == list(A_ATTRS)
    assert reg["node-b"]["attributes"] == B_ATTRS
    r = m.ctl("agents")
    assert r.returncode == 0 and "ATTRIBUTES" in r.stdout.splitlines()[0], r
    rows = {line.split()[1]: line for line in r.stdout.splitlines()[1:]}
    assert rows["node-a"].rstrip().endswith("rack=r1,zone=eu-west-1a,gpu.model=none"), r.stdout
    assert rows["node-b"].rstrip().endswith("rack=r2,zone=eu-west-1b"), r.stdout
    # and the master's event stream (issue #17) shows them in its snapshot of the agents
    s = ssetest.open_stream(m)
    try:
        snap = s.next()
        assert snap.event == "snapshot", snap
        ev = {ag["hostname"]: ag["attributes"] for ag in snap.data["agents"]}
        assert ev == {"node-a": A_ATTRS, "node-b": B_ATTRS}, snap.data["agents"]
    finally:
        s.close()

    fw = st.Framework(m, "attrs")
    fw.subscribe()
    try:
        offers = offers_by_host(fw, {"node-a", "node-b"})
        assert offers["node-a"]["attributes"] == A_ATTRS, offers["node-a"]
        assert offers["node-b"]["attributes"] == B_ATTRS, offers["node-b"]
        assert offers["node-a"]["agent_id"] == reg["node-a"]["id"]
        # the master's own view of the offers it holds out (the next ones, left unanswered)
        # says the same
        outstanding = bt.wait_for(lambda: m.get("/v1/offers")[1]["offers"], 10,
                                  what="outstanding offers in GET /v1/offers")
        for o in outstanding:
            want = A_ATTRS if o["hostname"] == "node-a" else B_ATTRS
            assert o["attributes"] == want, o
    finally:
        fw.close()

    # the registry keeps them in master.db: with node-b gone, a restarted master still shows
    # its attributes (node-a subscribes again and brings its own)
    assert b.stop() == 0
    assert m.stop() == 0
    m.start()
    reg = registered(m)
    assert reg["node-b"]["attributes"] == B_ATTRS, reg["node-b"]
    assert not reg["node-b"]["connected"]
    m.wait_agents(1)
    assert registered(m)["node-a"]["attributes"] == A_ATTRS

    # node-b comes back with other attributes: the registry and the offers change
    changed = {"rack": "r3", "ssd": "true"}
    with open(b.conf, "w") as f:
        f.write(conf("node-b", changed))
    b.start()
    bt.wait_for(lambda: registered(m)["node-b"]["connected"]
                and registered(m)["node-b"]["attributes"] == changed, 15,
                what="node-b registered again with its new attributes")
    fw = st.Framework(m, "attrs-after")
    fw.subscribe()
    try:
        offers = offers_by_host(fw, {"node-a", "node-b"})
        assert offers["node-b"]["attributes"] == changed, offers["node-b"]
        assert offers["node-a"]["attributes"] == A_ATTRS
    finally:
        fw.close()
    assert "its attributes changed" in m.log


def test_agent_without_attributes_has_none(master_factory, agent_factory):
    m, (a,) = st.cluster(master_factory, agent_factory, [st.agent_conf(1, "1GiB")])
    ag = m.agents()[0]
    assert ag["attributes"] == {} and ag["hostname"], ag
    fw = st.Framework(m, "plain")
    fw.subscribe()
    try:
        offers = fw.offers()
        assert offers and offers[0]["attributes"] == {}, offers
    finally:
        fw.close()
    assert a.get("/v1/node")[1]["attributes"] == {}


def test_malformed_attributes_refused_at_subscribe(master_factory):
    m = master_factory(st.FAST)
    for bad, word in (({"rack": 1}, "bad value of 'rack'"),
                      ({"ra ck": "r1"}, "bad name"),
                      ({"rack": "r1\nINJECTED"}, "bad value of 'rack'"),
                      (["rack", "r1"], "object")):
        call = mt.subscribe_call("e" * 32, "join", secrets.token_hex(32),
                                 mt.token_id(m.join_token))
        call["subscribe"]["attributes"] = bad
        _, status, body = mt.open_subscribe(m, call)
        assert status == 400 and word in body["error"]["message"], (bad, status, body)
        assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert "INJECTED" not in m.log
    assert m.agents() == []


def test_bad_attribute_line_refuses_start(agent_factory):
    for text, line, want in (
            ("[attributes]\nrack = r1\nra/ck = r2\n", 3, "[attributes] bad name 'ra/ck'"),
            ("[agent]\nhostname = a b\n", 2, "[agent] hostname: bad host name 'a b'"),
            ("[attributes]\n" + "".join("a%d = x\n" % i for i in range(65)), 66,
             "[attributes] a64: too many attributes (at most 64)")):
        a = agent_factory(conf=text, start=False)
        r = a.run_foreground()
        assert r.returncode == 1, r
        assert "%s:%d: %s" % (a.conf, line, want) in r.stderr, r.stderr
