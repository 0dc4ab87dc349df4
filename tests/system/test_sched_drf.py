# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_sched_drf.py - issue #14, what it must show 2: Dominant Resource Fairness
between frameworks that are always hungry (each launches one task from every offer it can use
and gives the rest back at once), with real agents and sandboxes. The DRF paper's example (9
CPUs and 18 GiB; A's tasks <1 CPU, 4 GiB>, B's <3 CPUs, 1 GiB>): A ends with 3 tasks, B with 2,
both at a dominant share of 2/3. Role weights 2:1 over 30 one-CPU slots on three agents:
20 +- 1 and 10 +- 1. The paper's example needs the 9 CPUs on one agent (on three agents of 3
CPUs no agent could hold a task of each), so that test runs one agent. Helpers: schedtest.py."""

import schedtest as st

GiB = 1 << 30


def test_drf_paper_example(master_factory, agent_factory):
    m, agents = st.cluster(master_factory, agent_factory, [st.agent_conf(9, "18GiB")])
    (a, b), counts = st.run_hungry(m, [("fw-a", ["*"], 1, 4 * GiB), ("fw-b", ["*"], 3, 1 * GiB)])
    assert counts == [3, 2], counts
    fws = st.frameworks(m)
    sa, sb = fws[a.fw.framework_id], fws[b.fw.framework_id]
    assert sa["allocated"] == {"cpus": 3, "mem": 12 * GiB}, sa
    assert sb["allocated"] == {"cpus": 6, "mem": 2 * GiB}, sb
    assert abs(sa["dominant_share"] - 2 / 3) < 1e-3, sa   # mem: 12 of 18 GiB
    assert abs(sb["dominant_share"] - 2 / 3) < 1e-3, sb   # cpus: 6 of 9
    # the metric says the same
    text = m.get("/metrics")[1]
    line = [x for x in text.splitlines()
            if x.startswith("berth_master_framework_dominant_share{framework=\"%s\""
                            % b.fw.framework_id)][0]
    assert abs(float(line.split()[-1]) - 2 / 3) < 1e-3, line
    a.fw.call("TEARDOWN")
    b.fw.call("TEARDOWN")


def test_role_weights_two_to_one(master_factory, agent_factory):
    confs = [st.agent_conf(10, "4GiB")] * 3
    m, agents = st.cluster(master_factory, agent_factory, confs,
                           flags=["--role.heavy.weight=2"])
    (h, light), counts = st.run_hungry(m, [("fw-heavy", ["heavy"], 1, 64 << 20),
                                        ("fw-light", ["light"], 1, 64 << 20)])
    assert sum(counts) == 30, counts
    assert 19 <= counts[0] <= 21 and 9 <= counts[1] <= 11, counts
    r = m.ctl("roles")
    assert r.returncode == 0, r.stderr
    heavy = [x for x in r.stdout.splitlines() if x.startswith("heavy")][0]
    assert heavy.split()[1] == "2", r.stdout
    h.fw.call("TEARDOWN")
    light.fw.call("TEARDOWN")
