# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_gc.py - issue #6 item 5, sandbox garbage collection (agentd/gc.c): an
ended container is removed (sandbox, runtime dir, record) gc_delay after it ended; when the
work_dir file system is above gc_disk_watermark, ended containers go sooner, oldest end
first, until it is below; a live container is never removed, however old or large."""

import os
import subprocess
import time

import berthtest as bt


def gone(a, cid):
    st, _ = a.get("/v1/containers/" + cid)
    return st == 404 and not any(
        os.path.exists(os.path.join(a.work, sub, cid)) for sub in ("sandboxes", "containers"))


def test_gc_by_age(agent_factory):
    a = agent_factory(flags=["--gc_delay=2s"])
    live = a.launch(shell="sleep 600")
    a.wait_state(live["id"], "RUNNING")
    short = a.launch(shell="echo bye")
    end = a.wait_terminal(short["id"])
    assert end["state"] == "FINISHED"
    assert os.path.exists(os.path.join(a.work, "sandboxes", short["id"], "stdout"))
    t_end = end["finished_at"]
    bt.wait_for(lambda: gone(a, short["id"]), 6, what="the ended container to be removed")
    took = time.time() - t_end
    assert 2.0 <= took <= 5.0, "removed %.1fs after it ended (gc_delay 2s)" % took
    assert "gc: removed container '%s'" % short["id"] in a.log
    # the live one is older than gc_delay and stays
    time.sleep(max(0.0, live["created_at"] + 3 - time.time()))
    c = a.inspect(live["id"])
    assert c["state"] == "RUNNING"
    assert os.path.isdir(os.path.join(a.work, "sandboxes", live["id"]))
    # ... until it ends too
    a.post("/v1/containers/%s/kill" % live["id"], {"signal": "KILL"})
    a.wait_terminal(live["id"])
    bt.wait_for(lambda: gone(a, live["id"]), 6, what="the killed container to be removed")


def test_gc_survives_a_restart(agent_factory):
    """The age counts from the end, across restarts: an ended container whose gc_delay
    passed while the agent was down goes at the next start."""
    a = agent_factory(flags=["--gc_delay=1s"])
    c = a.launch(shell="true")
    a.wait_terminal(c["id"])
    a.proc.kill()
    a.proc.wait()
    time.sleep(1.2)
    a.start()
    bt.wait_for(lambda: gone(a, c["id"]), 3, what="removal at start")


def test_gc_by_disk_watermark_oldest_first(agent_factory):
    """work_dir on a 64 MiB tmpfs, watermark 50%, gc_delay a week: each task leaves 12 MiB
    of output. Once the disk passes 50%, the oldest ended sandboxes go first until it is
    below; a live container holding 12 MiB, the oldest of all, is never removed."""
    a = agent_factory(start=False, flags=["--gc_disk_watermark=50%", "--gc_delay=1w",
                                          "--gc_min_age=0", "--log_max_size=0"])
    os.makedirs(a.work)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "berth-test-gc", a.work],
                   check=True)
    try:
        a.start()

        def used_pct():
            st = os.statvfs(a.work)
            used = st.f_blocks - st.f_bfree
            return 100.0 * used / (used + st.f_bavail)

        write12 = "head -c 12582912 /dev/zero"
        live = a.launch(shell=write12 + "; exec sleep 600", mem="128MiB")
        a.wait_state(live["id"], "RUNNING")
        bt.wait_for(lambda: os.path.getsize(os.path.join(a.work, "sandboxes", live["id"],
                                                         "stdout")) == 12582912, 10,
                    what="the live task's output")
        ended = []
        for i in range(4):
            c = a.launch(shell=write12, mem="128MiB", name="w%d" % i)
            a.wait_terminal(c["id"])
            ended.append(c["id"])
            # a GC pass runs at every end (the next check is gc_interval, 1 min, away)
            bt.wait_for(lambda: used_pct() < 50 or all(gone(a, x) for x in ended), 5,
                        interval=0.1,
                        what="the GC pass at the end of %s to go below 50%%" % c["id"])
        # 5 x 12 MiB were written to 64 MiB: the live 12 and the 2 newest fit below 50%
        kept = [x for x in ended if not gone(a, x)]
        removed = [x for x in ended if gone(a, x)]
        assert removed and kept, (removed, kept)
        assert ended[:len(removed)] == removed, "not oldest first: removed %s of %s" % (
            removed, ended)
        assert used_pct() < 50
        assert a.inspect(live["id"])["state"] == "RUNNING"
        assert os.path.getsize(os.path.join(a.work, "sandboxes", live["id"], "stdout")) == \
            12582912
        assert "above gc_disk_watermark" in a.log
        # more pressure than ended containers can relieve: only live data is left, it stays
        big = a.launch(shell="head -c 20971520 /dev/zero; exec sleep 600", mem="128MiB")
        bt.wait_for(lambda: os.path.exists(os.path.join(a.work, "sandboxes", big["id"],
                                                        "stdout")) and
                    os.path.getsize(os.path.join(a.work, "sandboxes", big["id"], "stdout")) ==
                    20971520, 10, what="20 MiB written")
        last = a.launch(shell="true")  # it ends, and under this pressure goes at once
        bt.wait_for(lambda: all(gone(a, x) for x in ended + [last["id"]]), 5,
                    what="every ended container removed under pressure")
        for c in (live, big):
            assert a.inspect(c["id"])["state"] == "RUNNING"
        # the warning comes with the pass after the last removal's `rm` (agentd/trash.c)
        bt.wait_for(lambda: "no ended container is left to remove" in a.log, 5,
                    what="the warning that nothing is left to remove")
    finally:
        a.kill_all()
        a.stop()
        subprocess.run(["umount", "-l", a.work])


def test_removals_go_to_the_thread_and_a_deep_tree_to_rm(agent):
    """agentd/trash.c: the trees moved into the trash are removed by the agent's removal
    thread (common/util.c's rm_rf_here): 12 DELETEs from 4 clients at once start no `rm`
    (the agent before it started one per batch, 12 here at most). A tree deeper than the
    thread's bound (128 levels) goes to one `rm -rf`, which removes it; a symbolic link in it
    to a file outside is removed, its target is not. Everything is gone, the trash too."""
    import concurrent.futures
    ids = [agent.launch(shell="true")["id"] for _ in range(13)]
    for cid in ids:
        agent.wait_terminal(cid)
    deep_id, ids = ids[0], ids[1:]
    trash = os.path.join(agent.work, "trash")

    def all_gone(some):
        return all(gone(agent, x) for x in some) and not os.listdir(trash)
    before = agent.metric("berth_agent_trash_rm_total")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda cid: agent.delete("/v1/containers/" + cid)[0], ids))
    assert answers == [204] * len(ids), answers
    bt.wait_for(lambda: all_gone(ids), 10, interval=0.05,
                what="every removed container's dirs and the trash empty")
    assert agent.metric("berth_agent_trash_rm_total") == before, "an rm was started"

    outside = os.path.join(agent.tmp, "outside")
    with open(outside, "w") as f:
        f.write("keep")
    d = os.path.join(agent.sandbox(deep_id), "deep")
    os.makedirs(os.path.join(d, *(["d"] * 140)))
    os.symlink(outside, os.path.join(d, "d", "link"))
    assert agent.delete("/v1/containers/" + deep_id)[0] == 204
    bt.wait_for(lambda: all_gone([deep_id]), 10, interval=0.05,
                what="the deep tree removed, the trash empty")
    assert agent.metric("berth_agent_trash_rm_total") == before + 1
    assert open(outside).read() == "keep"
