# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_store_sync.py - issue #18: the fsync of state.db's WAL is made by a
thread of the agent's (common/syncer.c), not by its loop. Each test slows every fsync of a
durable commit by DELAY (BERTH_TEST_SYNC_DELAY_MS, the agent's test hook for a slow disk;
it slows the loop's own fsync the same way when there is no thread) and checks what a slow
disk may and may not do: a launch or a removal is answered only once its record is on disk,
the loop serves everyone else meanwhile, and launches waiting on one sync share the next."""

import concurrent.futures
import os
import threading
import time

import berthtest as bt
import recoverytest as rt

# scaled like every bound of the suite (a TCG VM's launch holds the loop far longer)
DELAY = 0.6 * bt.SLOW


def slow_disk_agent(agent_factory):
    a = agent_factory(start=False)
    os.environ["BERTH_TEST_SYNC_DELAY_MS"] = str(int(DELAY * 1000))
    try:
        a.start(timeout=10)
    finally:
        os.environ.pop("BERTH_TEST_SYNC_DELAY_MS", None)
    return a


def test_answers_wait_for_the_disk_and_the_loop_does_not(agent_factory):
    a = slow_disk_agent(agent_factory)
    stop, worst, statuses = threading.Event(), [0.0], set()

    def poll():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                statuses.add(a.get("/health", timeout=30)[0])
            except OSError as e:
                statuses.add(repr(e))
            worst[0] = max(worst[0], time.monotonic() - t0)
            stop.wait(0.02)
    th = threading.Thread(target=poll)
    th.start()
    try:
        t0 = time.monotonic()
        c = a.launch(argv=["sleep", "1000"])
        took_launch = time.monotonic() - t0
        a.wait_state(c["id"], ("RUNNING",), timeout=10 + DELAY)
        a.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL", "grace_seconds": 0})
        a.wait_terminal(c["id"], timeout=10 + DELAY)
        t0 = time.monotonic()
        st, _ = a.delete("/v1/containers/" + c["id"])
        took_delete = time.monotonic() - t0
    finally:
        stop.set()
        th.join()
    assert st == 204
    assert statuses == {200}, statuses
    # a 201 or 204 says "stored": not before the WAL is on disk
    assert took_launch >= DELAY * 0.95, "201 after %.3f s, the sync takes %.1f s" % (took_launch,
                                                                                  DELAY)
    assert took_delete >= DELAY * 0.95, "204 after %.3f s" % took_delete
    # the loop did not wait with it (an fsync on the loop held every request DELAY)
    assert worst[0] < DELAY / 2, "GET /health took %.3f s during a %.1f s sync" % (worst[0],
                                                                                 DELAY)


def test_launches_queued_behind_a_sync_share_the_next(agent_factory):
    a = slow_disk_agent(agent_factory)
    n = 8
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        cs = list(pool.map(lambda i: a.launch(argv=["sleep", "1000"], cpus=0.01, mem="16MiB"),
                           range(n)))
    took = time.monotonic() - t0
    # one sync each (the loop's FULL commits) is n * DELAY; the thread's: the first launch's
    # sync, then one for all those that committed meanwhile (a third on a slow VM)
    assert took < 4 * DELAY, "%d launches took %.2f s with %.1f s syncs" % (n, took, DELAY)
    assert len({c["id"] for c in cs}) == n
    for c in cs:
        a.wait_state(c["id"], ("RUNNING",), timeout=10 + DELAY)


def test_a_crash_while_a_sync_runs_keeps_the_committed_launch(agent_factory):
    a = slow_disk_agent(agent_factory)
    c = a.launch(argv=["sleep", "1000"])
    a.wait_state(c["id"], ("RUNNING",), timeout=10 + DELAY)
    # a second launch: committed (synchronous=NORMAL, in the WAL) and its task RUNNING, its
    # sync still under way when the agent dies; a crash of the agent alone loses nothing in
    # the WAL, so the next start finds it (only a machine crash could, and its launch was
    # never answered)
    def launch_second():
        try:
            a.request("POST", "/v1/containers", {"command": {"argv": ["sleep", "1000"]},
                                                 "resources": {"cpus": 0.25, "mem": "64MiB"}},
                      timeout=30)
        except OSError:  # the agent died before its answer (http.client's are OSErrors too)
            pass
    th = threading.Thread(target=launch_second)
    th.start()

    def second_running():
        cs = a.get("/v1/containers")[1]["containers"]
        return any(x["id"] != c["id"] and x["state"] == "RUNNING" for x in cs)
    try:
        bt.wait_for(second_running, 10, interval=0.01, what="the second task RUNNING")
        a.kill9()
    finally:
        th.join()
    a.start(timeout=10)
    st, body = a.get("/v1/containers")
    assert st == 200
    for x in body["containers"]:
        a.note(x)
    states = {x["id"]: x["state"] for x in body["containers"]}
    assert len(states) == 2 and set(states.values()) == {"RUNNING"}, states
    for cid in states:  # and the kernel agrees: each task lives on in its own cgroups
        assert a.procs(cid), "no process in the cgroups of %s" % cid


def test_what_waits_on_a_launch_runs_when_the_task_runs_first(agent_factory):
    """The executor's RUNNING can come while STARTING's sync is under way: what waits on
    that commit (here the fault point just before the 201) must still run. With the point
    armed the agent dies there; the restart finds the task and re-adopts it."""
    a = agent_factory(start=False)
    os.environ["BERTH_TEST_SYNC_DELAY_MS"] = str(int(DELAY * 1000))
    try:
        rt.start(a, fault="launch-after-starting")
    finally:
        os.environ.pop("BERTH_TEST_SYNC_DELAY_MS", None)
    try:
        a.post("/v1/containers", {"command": {"argv": ["sleep", "1000"]},
                                  "resources": {"cpus": 0.25, "mem": "64MiB"}}, timeout=30)
    except OSError:
        pass  # the agent died before its answer, as it should
    rt.wait_died(a, timeout=10 + 2 * DELAY)
    rt.start(a)
    cs = a.get("/v1/containers")[1]["containers"]
    for x in cs:
        a.note(x)
    assert [x["state"] for x in cs] == ["RUNNING"], cs
    assert a.procs(cs[0]["id"]), "no process in the task's cgroups"


def test_a_kill_waits_for_no_sync(agent_factory):
    """A kill's record promises nothing of the disk (a crash of the machine ends the task
    anyway): it goes out, and its 202 with it, while another launch's sync runs. Before,
    every answer waited behind the syncs under way: in a burst of kills, one each (~8 ms)."""
    a = slow_disk_agent(agent_factory)
    c = a.launch(argv=["sleep", "1000"])
    a.wait_state(c["id"], ("RUNNING",), timeout=10 + DELAY)
    task = a.procs(c["id"])
    assert task, "no process in the task's cgroups"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        t0 = time.monotonic()
        other = pool.submit(a.launch, argv=["sleep", "1000"])
        # its record is written and its sync under way once it is listed
        bt.wait_for(lambda: len(a.get("/v1/containers")[1]["containers"]) == 2, DELAY / 2,
                    interval=0.01, what="the second launch listed")
        t1 = time.monotonic()
        st, _ = a.post("/v1/containers/%s/kill" % c["id"], {"signal": "KILL", "grace_seconds": 0})
        took_kill = time.monotonic() - t1
        assert st == 202
        assert not other.done(), "the launch's sync ended before the kill was answered"
        assert took_kill < DELAY / 3, "the 202 took %.3f s behind a %.1f s sync" % (took_kill,
                                                                                    DELAY)
        # the kernel's word: the task is gone while the other launch's sync still runs
        bt.wait_for(lambda: not any(bt.alive(p) for p in task), DELAY / 3,
                    interval=0.01, what="the killed task gone")
        assert not other.done(), "the launch's sync ended before the task was gone"
        assert other.result(timeout=10 + DELAY)["id"]
        assert time.monotonic() - t0 >= DELAY * 0.95
    end = a.wait_terminal(c["id"], timeout=10 + DELAY)
    assert (end["state"], end["reason"]) == ("KILLED", "KILLED_BY_REQUEST"), end


def test_checkpoints_are_not_the_loops(agent):
    """agentd/checkpoint.c: SQLite checkpoints the WAL at 1,000 pages, and inside the commit
    that got there it fsynced the WAL and the database on the loop (6-20 ms turns, the
    longest of a burst). A thread of the agent's does it now: strace on the loop's thread
    alone sees no fsync of state.db while launches take the WAL past 1,000 pages and
    state.db grows by the pages checkpointed into it. (The loop still syncs the WAL's header
    when its next write starts the WAL over after a checkpoint, synchronous=NORMAL.)"""
    import shutil
    import subprocess
    strace = shutil.which("strace")
    assert strace, "strace is needed (apt-get install strace)"
    db = os.path.join(agent.work, "state.db")
    size0 = os.path.getsize(db)
    out = os.path.join(agent.tmp, "loop.strace")
    tr = subprocess.Popen([strace, "-p", str(agent.proc.pid), "-e", "trace=fsync,fdatasync",
                           "-o", out], stderr=subprocess.PIPE, text=True)
    try:
        assert "attached" in tr.stderr.readline()
        # a record of ~32 kB, written at each state: ~30 pages a launch, 1,000 in ~35
        argv = ["true"] + ["x" * 4000] * 8
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for _ in range(16):
                cs = list(pool.map(lambda i: agent.launch(argv=argv, cpus=0.01, mem="16MiB"),
                                   range(16)))
                for c in cs:
                    agent.wait_terminal(c["id"])
                if os.path.getsize(db) > size0 + (1 << 20):
                    break
    finally:
        tr.terminate()
        tr.wait(timeout=30)
    assert os.path.getsize(db) > size0 + (1 << 20), "no checkpoint into state.db"
    fds = {int(line.split("(")[1].split(")")[0]) for line in bt.read(out, "").splitlines()
           if "sync(" in line}
    paths = {fd: os.readlink("/proc/%d/fd/%d" % (agent.proc.pid, fd)) for fd in fds}
    assert db not in paths.values(), "the loop synced state.db: %s" % paths
    assert set(paths.values()) <= {db + "-wal"}, paths


def test_the_wal_is_written_ahead_and_read_up_to_its_zeros(agent):
    """agentd/checkpoint.c wal_presize: from the agent's start the WAL has written blocks
    (no hole) for more than the 1,000 pages at which it starts over, so a commit's fdatasync
    no longer waits for the allocation of the blocks it grew into (a launch's 3.5-4 ms on a
    new agent here). SQLite reads a WAL up to its first frame that is not of its header's
    generation: after a SIGKILL, with the records' frames not checkpointed, the next start
    finds every record in front of the zeros, and the WAL goes on serving after it."""
    wal = os.path.join(agent.work, "state.db-wal")
    sb = os.stat(wal)
    assert sb.st_size >= 32 + 1000 * (4096 + 24), "a WAL of %d bytes" % sb.st_size
    assert sb.st_blocks * 512 >= sb.st_size, "holes: %d of %d bytes in blocks" % (
        sb.st_blocks * 512, sb.st_size)
    ids = set()
    for _ in range(2):
        for _ in range(4):
            c = agent.launch(argv=["sleep", "1000"], cpus=0.01, mem="16MiB")
            agent.wait_state(c["id"], "RUNNING")
            ids.add(c["id"])
        agent.kill9()
        agent.start(timeout=10)
        states = {x["id"]: x["state"] for x in agent.get("/v1/containers")[1]["containers"]}
        assert states == {cid: "RUNNING" for cid in ids}, states
