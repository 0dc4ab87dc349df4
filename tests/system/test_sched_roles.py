# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_sched_roles.py - issue #14, what it must show 4, and the refusals: an
agent's [role.analytics] reservation is offered only to frameworks in role analytics (and
admitted by the agent as such); quota guarantees a role its share while another role is greedy
(set through PUT /v1/roles, i.e. berthctl role set); an ACCEPT that takes more than its offer
is refused whole with the reason and the offer comes back; ports outside the offer, unknown
offers, tokens without rights in the role are refused; a task POST /v1/tasks queues says why it
waits and runs once the resources free up (the built-in framework goes through the same
allocator). Helpers: schedtest.py."""

import json

import berthtest as bt
import schedtest as st

GiB = 1 << 30


def test_reservation_offered_only_to_its_role(master_factory, agent_factory):
    conf = st.agent_conf(4, "8GiB", roles={"analytics": (2, "4GiB")})
    m, agents = st.cluster(master_factory, agent_factory, [conf])
    web = st.Framework(m, "web")
    web.subscribe()
    [o] = web.offers()
    assert o["role"] == "*" and o["resources"]["cpus"] == 2, o  # the pool only
    assert o["reserved"] == {"cpus": 0, "mem": 0}, o
    an = st.Framework(m, "analytics", roles=["analytics"])
    an.subscribe()
    [r] = an.offers()
    assert r["role"] == "analytics" and r["reserved"]["cpus"] == 2, r
    assert r["resources"] == {"cpus": 2, "mem": 4 * GiB, "ports": None}, r
    # both launch into what they were offered; the agent admits each in its role
    t1 = an.accept([r["id"]], [st.task("crunch", cpus=2, mem="4GiB")])["tasks"][0]["task_id"]
    t2 = web.accept([o["id"]], [st.task("serve", cpus=2, mem="4GiB")])["tasks"][0]["task_id"]
    an.wait_state(t1, "RUNNING")
    web.wait_state(t2, "RUNNING")
    ctr = agents[0].inspect(m.task(t1)["container_id"])
    assert ctr["role"] == "analytics", ctr
    st_, ag = m.get("/v1/agents/" + m.task(t1)["agent_id"])
    assert ag["resources"]["reservations"] == {"analytics": {"cpus": 2, "mem": 4 * GiB}}, ag
    # a framework may only subscribe in roles its token may submit in
    _, tok = m.request("POST", "/v1/tokens", {"rights": "submit", "roles": ["web"]})
    bad = st.Framework(m, "sneaky", roles=["analytics"], token=tok["token"])
    status, body = bad.subscribe(expect=403)
    assert "may not subscribe in role 'analytics'" in body["error"]["message"], body
    for fw in (web, an):
        fw.call("TEARDOWN")


def test_accept_beyond_the_offer_is_refused_whole(master_factory, agent_factory):
    m, agents = st.cluster(master_factory, agent_factory,
                           [st.agent_conf(4, "8GiB", ports="[31000-31009]")])
    fw = st.Framework(m, "greedy")
    fw.subscribe()
    [o] = fw.offers()
    assert o["resources"]["ports"] == "[31000-31009]", o
    tasks = [st.task("big-one", cpus=3, mem="1GiB"), st.task("big-two", cpus=2, mem="1GiB")]
    st_, body = fw.call("ACCEPT", {"offer_ids": [o["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"tasks": tasks}}]})
    assert st_ == 409 and body["error"]["code"] == "INSUFFICIENT_RESOURCES", body
    msg = body["error"]["message"]
    assert "need more cpus than the offers hold" in msg and "5 cpus" in msg, msg
    assert not [t for t in m.tasks() if t["name"].startswith("big-")], "nothing was launched"
    # the offer came back: offered again, whole
    [o2] = fw.offers()
    assert o2["id"] != o["id"] and o2["resources"]["cpus"] == 4, o2
    # a host port outside the offer's ranges, an offer that is not outstanding
    port = st.task("porty", cpus=1, ports=[{"host_port": 8080}])
    st_, body = fw.call("ACCEPT", {"offer_ids": [o2["id"]], "operations": [
        {"type": "LAUNCH", "launch": {"tasks": [port]}}]})
    assert st_ == 409 and "host port 8080 is not in the offers' ports" in \
        body["error"]["message"], body
    [o3] = fw.offers()
    st_, body = fw.call("ACCEPT", {"offer_ids": [o["id"]], "operations": []})
    assert st_ == 404 and "not outstanding" in body["error"]["message"], body
    # o3, not named in that call, is still held
    ok = fw.accept([o3["id"]], [st.task("fits", cpus=4, mem="1GiB", shell="true")])
    fw.wait_state(ok["tasks"][0]["task_id"], "FINISHED")
    # a stale stream id is refused
    st_, body = fw.call("REVIVE", stream_id="0" * 32)
    assert st_ == 409 and body["error"]["code"] == "STALE_STREAM", body
    fw.call("TEARDOWN")


def test_quota_guarantees_a_role_its_share(master_factory, agent_factory):
    m, agents = st.cluster(master_factory, agent_factory, [st.agent_conf(4, "8GiB")] * 2)
    r = m.ctl("role", "set", "batch", "--guarantee-cpus", "4", "--weight", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["guarantee"]["cpus"] == 4
    g = st.Hungry(st.Framework(m, "grabby"), 1, 64 << 20, "grab")
    g.fw.subscribe()
    g.start()
    try:
        assert st.settle([g]) == [4], "the greedy role took the guarantee's headroom"
        b = st.Hungry(st.Framework(m, "batchy", roles=["batch"]), 1, 64 << 20, "batch")
        b.fw.subscribe()
        b.start()
        try:
            assert st.settle([g, b]) == [4, 4]
        finally:
            b.stop.set()
            b.join()
    finally:
        g.stop.set()
        g.join()
    roles = {x["name"]: x for x in m.get("/v1/roles")[1]["roles"]}
    assert roles["batch"]["allocated"]["cpus"] == 4 and roles["*"]["allocated"]["cpus"] == 4
    # a limit caps a role (set through the API, kept across a restart)
    st_, body = m.request("PUT", "/v1/roles/capped", {"limit": {"cpus": 1}})
    assert st_ == 200 and body["limit"]["cpus"] == 1, body
    m.stop()
    m.start()
    assert m.get("/v1/roles/capped")[1]["limit"]["cpus"] == 1
    g.fw.call("TEARDOWN")
    b.fw.call("TEARDOWN")


def test_submitted_task_waits_and_says_why(master_factory, agent_factory):
    m, agents = st.cluster(master_factory, agent_factory, [st.agent_conf(2, "4GiB")])
    hog = m.submit("sleep 600", cpus=1.5, mem="1GiB", name="hog")
    assert hog["agent_id"], "placed at once: the answer names the agent"
    m.wait_task(hog["id"], "RUNNING")
    late = m.submit("true", cpus=1, mem="1GiB", name="late")
    assert late["state"] == "STAGING" and late["agent_id"] is None and late["waiting"], late
    r = m.ctl("inspect", late["id"])
    assert r.returncode == 0, r.stderr
    why = json.loads(r.stdout)["waiting"]
    assert "role '*' is short of cpus" in why and "0.5 cpus" in why, why
    # never fits: refused at once
    st_, body = m.request("POST", "/v1/tasks", {"command": {"shell": "true"},
                                                "resources": {"cpus": 3, "mem": "1GiB"}})
    assert st_ == 409 and "no agent has 3 cpus" in body["error"]["message"], body
    # the hog goes: the waiting task gets its offer and runs
    assert m.ctl("kill", hog["id"]).returncode == 0
    t = m.wait_task(late["id"], bt.TERMINAL, timeout=20)
    assert t["state"] == "FINISHED" and t["agent_id"], t
    fws = st.frameworks(m)
    assert fws["berth-master"]["builtin"] and fws["berth-master"]["suppressed"], fws


def test_ports_come_from_the_offer(master_factory, agent_factory):
    """Issue #15 through #14: a framework launches a task on a host port its offer holds; the
    task gets it as PORT0, the next offer leaves it out while the task runs, and has it again
    once the task ended."""
    m, agents = st.cluster(master_factory, agent_factory,
                           [st.agent_conf(4, "8GiB", ports="[31000-31009]")])
    fw = st.Framework(m, "porty")
    fw.subscribe()
    [o] = fw.offers()
    assert o["resources"]["ports"] == "[31000-31009]", o
    t = st.task("listener", shell='echo "port=$PORT0"; exec sleep 600', cpus=1,
                ports=[{"host_port": 31003, "container_port": 31003}])
    ok = fw.accept([o["id"]], [t])
    tid = ok["tasks"][0]["task_id"]
    fw.wait_state(tid, "RUNNING")
    cid = m.task(tid)["container_id"]
    a = agents[0]
    assert a.wait_output(cid, "port")["port"] == "31003"
    # the next offer holds the agent's other ports only
    o2 = bt.wait_for(lambda: [x for x in fw.offers(timeout=5) if x["resources"].get("ports")],
                     20, what="an offer with ports")[0]
    assert o2["resources"]["ports"] == "[31000-31002,31004-31009]", o2
    fw.decline([o2["id"]], refuse=0)
    st_, _ = fw.call("KILL", {"task_id": tid})
    assert st_ == 202
    fw.wait_state(tid, "KILLED")
    seen = []

    def whole():
        # one offer holds an agent's free ports at a time: hand the others back
        got = fw.offers(timeout=5)
        seen.extend(x["resources"] for x in got)
        back = [x["id"] for x in got if x["resources"].get("ports") != "[31000-31009]"]
        if back:
            fw.decline(back, refuse=0)
        return [x for x in got if x["resources"].get("ports") == "[31000-31009]"]
    try:
        o3 = bt.wait_for(whole, 20, what="the whole range offered again")[0]
    except AssertionError as e:
        raise AssertionError("%s; offers seen: %s" % (e, seen))
    assert o3["agent_id"] == o["agent_id"], o3
    fw.call("TEARDOWN")
