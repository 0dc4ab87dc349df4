# SPDX-License-Identifier: Apache-2.0
"""tests/system/conftest.py - fixtures of the system tests: a session sweep of stale
berth-test-* cgroups, and `agent` / `agent_factory`, which start berth-agent on a temp
work_dir and socket with cgroup_parent=berth-test-<pid>-<n>, and whose finalizer stops it,
cleans up whatever it left (processes, cgroups) and fails the test if anything leaked.
Helpers live in berthtest.py."""

import glob
import itertools
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import berthtest as bt  # noqa: E402

_counter = itertools.count(1)

# Defaults for every test agent: this 2-CPU test host must hold the seed's two tasks
# (2 + 1 CPUs) at once, and nothing is withheld for the host, so the burst test can use
# every CPU. pids: the test host's pid_max is 32768, which admits only ~28 tasks of the
# default 1024 pids; the suite runs more at once (test_pids.py checks the real budget).
# Tests pass their own text to agent_factory(conf=...) when they need another.
BASE_CONF = """\
[resources]
cpus = 4
pids = 4194304
[reserved]
cpus = 0
mem = 512MiB
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes several seconds")
    # tmp_path dirs in a base of our own, removed at the end: pytest's default keeps its last
    # three runs' in /tmp/pytest-of-USER (Debian 12's pytest 7.2 has no retention policy)
    if not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="berth-pytest-", dir="/var/tmp")
        config._berth_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    base = getattr(config, "_berth_basetemp", None)
    if base:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _session_checks():
    if os.geteuid() != 0:
        pytest.skip("system tests need root (cgroups, namespaces)", allow_module_level=True)
    bt.sweep_stale_cgroups()
    if os.access(bt.PROBE_BUILT, os.X_OK):
        bt.install_probe()
    yield
    bt.remove_probe()
    bt.sweep_stale_cgroups()
    import mastertest
    mastertest.remove_tls()


def _need(path, what):
    if not os.access(path, os.X_OK):
        pytest.skip("%s not built: %s (set BERTH_BUILD or run make all)" % (what, path))


@pytest.fixture
def agent_factory(request):
    """agent_factory(conf=None, flags=(), start=True, env=None) -> berthtest.Agent (started;
    env: extra environment variables)."""
    _need(bt.AGENT_BIN, "berth-agent")
    _need(bt.EXECUTOR_BIN, "berth-executor")
    _need(bt.PROBE_BUILT, "tests/probe")
    agents = []

    def make(conf=None, flags=(), start=True, env=None):
        n = next(_counter)
        tmp = tempfile.mkdtemp(prefix="berth-test-%d-%d-" % (os.getpid(), n), dir=bt.TMP_BASE)
        os.chmod(tmp, 0o755)  # tasks run as nobody below it
        a = bt.Agent(tmp, n, BASE_CONF if conf is None else conf, flags)
        a.env = env
        agents.append(a)
        if start:
            a.start()
        return a

    yield make

    problems = []
    for a in agents:
        problems += _teardown(a)
    if problems:
        pytest.fail("leak check failed:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def agent(agent_factory):
    return agent_factory()


@pytest.fixture
def master_factory():
    """master_factory(flags=(), tls=True, start=True) -> mastertest.Master (started), stopped
    at the end; fails the test on sanitizer reports in its log (issues #7, #11; agents come
    from agent_factory with m.agent_flags())."""
    import mastertest
    _need(mastertest.MASTER_BIN, "berth-master")
    masters = []

    def make(flags=(), tls=True, start=True):
        tmp = tempfile.mkdtemp(prefix="berth-test-master-%d-" % os.getpid(), dir=bt.TMP_BASE)
        m = mastertest.Master(tmp, flags, tls=tls)
        masters.append(m)
        return m.start() if start else m

    yield make
    problems = []
    for m in masters:
        rc = m.stop()
        if rc not in (0, None, -9):
            problems.append("berth-master stop: exit status %s" % rc)
        problems += m.sanitizer_reports()
        shutil.rmtree(m.tmp, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _teardown(a):
    """Stop agent a, clean everything it left, and return the list of leaks found."""
    problems = []
    if a.proc is not None:
        if a.proc.poll() is None:
            a.kill_all()
        elif a.proc.returncode not in (0, None):
            problems.append("berth-agent had exited with status %s before the end of the "
                            "test" % a.proc.returncode)
        rc = a.stop()
        if rc not in (0, None):
            problems.append("berth-agent stop: exit status %s" % rc)
    # cgroups: nothing may remain under the test's parent, and the parent itself must be gone
    for key, d in sorted(a.parent_dirs.items()):
        if os.path.isdir(d):
            sub = [os.path.relpath(s, d) for s in bt._leaves_first(d)]
            killed, failed = bt.kill_cgroup_tree(d)
            problems.append("cgroup %s left after the agent stopped (dirs %s, killed %s)"
                            % (d, sub, killed))
            if failed:
                problems.append("could not remove cgroup dirs %s" % failed)
    for d in sorted(a.seen_cgroups):
        if os.path.isdir(d):
            killed, failed = bt.kill_cgroup_tree(d)
            problems.append("container cgroup %s left (killed %s)" % (d, killed))
    # processes: every pid we saw must be gone; nothing may still run from the temp dir
    for pid, start in sorted(a.seen.items()):
        if bt.alive(pid, start):
            problems.append("process %d (%s) still running" % (pid, bt.proc_comm(pid)))
            try:
                os.kill(pid, 9)
            except OSError:
                pass
    for pid in bt.procs_mentioning(a.tmp):
        problems.append("process %d (%s) still uses %s" % (pid, bt.proc_comm(pid), a.tmp))
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    # sanitizer reports (SAN=1 builds) in the agent's and the executors' logs
    problems += a.sanitizer_reports(
        glob.glob(os.path.join(a.work, "containers", "*", "executor.log")))
    mounts = bt.mounts_mentioning(a.tmp)
    if mounts:
        problems.append("mounts left in our namespace: %s" % mounts)
    if problems:  # the log lives in a.tmp: read before it goes
        problems.append("agent log tail:\n" + a.log[-3000:])
    if not mounts:
        shutil.rmtree(a.tmp, ignore_errors=True)
    return problems
