# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_sched_offers.py - issue #14, what it must show 3: starvation cannot happen.
On one cluster (three agents, offer_timeout 3 s, a pass every 200 ms): a framework that holds
offers and never answers loses them after offer_timeout, and a second framework gets those
resources within the timeout and one allocation interval; a DECLINE with refuse_seconds 5
keeps the resources from the decliner for 5 s while another framework is offered them at once;
a SUPPRESSed framework gets no offer for 30 s while all this churns around it, and one within
an interval after REVIVE. Also the offer metrics. Helpers: schedtest.py."""

import threading
import time

import berthtest as bt
import schedtest as st

TIMEOUT = 3.0     # offer_timeout
INTERVAL = 0.2    # allocation_interval
SLACK = 1.0 * bt.SLOW


def offers_on(fw, agent_id, timeout):
    """The next OFFERS event of fw holding an offer on agent_id: (arrival, offer) or None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ev = fw.next_event(("OFFERS",), end - time.monotonic())
        if not ev:
            return None
        for o in ev["offers"]["offers"]:
            if o["agent_id"] == agent_id:
                return ev["_t"], o
            fw.decline([o["id"]], refuse=60)  # the other agents stay out of the way
    return None


def watch_offers(fw, stop, seen):
    """Count every OFFERS fw gets until stop is set."""
    while not stop.is_set():
        ev = fw.next_event(("OFFERS",), 0.2)
        if ev:
            seen.append(ev)


def test_offer_timeout_decline_suppress_revive(master_factory, agent_factory):
    confs = [st.agent_conf(4, "8GiB")] * 3
    m, agents = st.cluster(master_factory, agent_factory, confs,
                           flags=["--offer_timeout=%gs" % TIMEOUT])
    ids = [a.get("/v1/node")[1]["id"] for a in agents]

    # S: suppressed before anything else happens, watched for 30 s
    s = st.Framework(m, "suppressed")
    s.subscribe()
    first = s.offers()
    assert len(first) == 3, first
    assert s.call("SUPPRESS")[0] == 202
    s.decline([o["id"] for o in first], refuse=0)
    t_sup = time.monotonic()
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_offers, args=(s, stop, seen), daemon=True)
    watcher.start()
    row = [x for x in m.ctl("frameworks").stdout.splitlines() if "suppressed" in x]
    assert row and "CONNECTED, suppressed" in row[0], row

    # hoarder H holds every offer and never answers; F2 comes later
    h = st.Framework(m, "hoarder")
    h.subscribe()
    held = h.offers()
    t_held = time.monotonic()
    assert len(held) == 3, held
    f2 = st.Framework(m, "patient")
    f2.subscribe()
    got = f2.next_event(("OFFERS",), TIMEOUT + 5)
    assert got, "the second framework got nothing after the hoarder's offers timed out"
    waited = got["_t"] - t_held
    assert TIMEOUT - 0.5 <= waited <= TIMEOUT + INTERVAL + SLACK, waited
    rescinds = [h.next_event(("RESCIND",), 2) for _ in range(3)]
    assert all(r and "offer_timeout" in r["rescind"]["reason"] for r in rescinds), rescinds
    assert {r["rescind"]["offer_id"] for r in rescinds} == {o["id"] for o in held}
    assert st.metric(m, "berth_master_offers_rescinded_total") >= 3
    assert h.call("TEARDOWN")[0] == 202
    assert f2.call("TEARDOWN")[0] == 202

    # DECLINE, refuse_seconds 5: the decliner X is kept from agent 0 for 5 s, Y gets it at once
    x = st.Framework(m, "decliner")
    x.subscribe()
    y = st.Framework(m, "other")
    y.subscribe()
    got = offers_on(x, ids[0], 5)
    assert got, "X was not offered agent 0"
    t0 = time.monotonic()
    x.decline([got[1]["id"]], refuse=5)
    got_y = offers_on(y, ids[0], 5)
    assert got_y and got_y[0] - t0 <= INTERVAL + SLACK, "Y was not offered agent 0 at once"
    y.decline([got_y[1]["id"]], refuse=60)
    row = [x for x in m.ctl("frameworks").stdout.splitlines() if "decliner" in x]
    assert row and "CONNECTED, declined" in row[0], row  # why it is offered nothing
    again = offers_on(x, ids[0], 10)
    assert again, "X never got agent 0 back"
    assert 5 - 0.2 <= again[0] - t0 <= 5 + INTERVAL + SLACK, again[0] - t0
    assert st.metric(m, "berth_master_offers_declined_total") >= 3

    # 30 s after SUPPRESS: not one offer; REVIVE: one within an interval
    left = 30 - (time.monotonic() - t_sup)
    if left > 0:
        time.sleep(left)  # the thing under test is that nothing arrives: a quiet wait
    stop.set()
    watcher.join()
    assert not seen, "a suppressed framework was offered %r" % seen
    t_rev = time.monotonic()
    assert s.call("REVIVE")[0] == 202
    ev = s.next_event(("OFFERS",), 5)
    assert ev and ev["_t"] - t_rev <= INTERVAL + SLACK, ev
    assert st.metric(m, "berth_master_offers_made_total") >= 10
    assert st.metric(m, "berth_master_offers_outstanding") >= 1
    assert st.metric(m, "berth_master_allocation_duration_seconds_count") > 10
    for fw in (s, x, y):
        fw.call("TEARDOWN")
