# SPDX-License-Identifier: Apache-2.0
"""tests/system/test_notify.py - the daemons' readiness protocol (common/notify.c), which
berth-agent.service and berth-master.service rely on as Type=notify: READY=1 to
$NOTIFY_SOCKET only once the agent's API socket (the master's TCP listener) accepts
connections, STOPPING=1 on SIGTERM, and nothing the agent starts inherits NOTIFY_SOCKET.
systemd is not pid 1 here, so the test plays the service manager."""

import os
import socket
import time


def _notify_socket(path_or_abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    s.bind(path_or_abstract)
    s.settimeout(10)
    return s


def _ready_then_serving(agent_factory, monkeypatch, addr, env_value):
    s = _notify_socket(addr)
    try:
        a = agent_factory(start=False)
        monkeypatch.setenv("NOTIFY_SOCKET", env_value)
        a.start()
        t0 = time.monotonic()
        msg = s.recv(4096).decode()
        assert "READY=1" in msg.split("\n"), msg
        # the listener was bound before READY=1: connecting right now must work
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(a.sock)
        c.close()
        assert time.monotonic() - t0 < 10
        return a, s
    except BaseException:
        s.close()
        raise


def test_ready_after_listen_and_stopping_on_sigterm(agent_factory, monkeypatch):
    path = "/run/berth-test-notify-%d.sock" % os.getpid()
    a, s = _ready_then_serving(agent_factory, monkeypatch, path, path)
    try:
        # a task must not see the service manager's socket
        r = a.ctl("run", "--cpus", "0.1", "--mem", "64MiB", "--wait", "--", "/bin/sh", "-c",
                  'test -z "$NOTIFY_SOCKET"')
        assert r.returncode == 0, r.stderr
        assert a.stop() == 0
        msg = s.recv(4096).decode()
        assert "STOPPING=1" in msg.split("\n"), msg
    finally:
        s.close()
        os.unlink(path)


def test_abstract_notify_socket(agent_factory, monkeypatch):
    name = "berth-test-notify-%d" % os.getpid()
    a, s = _ready_then_serving(agent_factory, monkeypatch, "\0" + name, "@" + name)
    s.close()


def test_no_notify_socket_is_fine(agent):
    assert agent.healthy()


def test_master_ready_after_listen_and_stopping_on_sigterm(master_factory, monkeypatch):
    """berth-master.service is Type=notify too: READY=1 once its TCP listener accepts (so
    agents ordered after it connect at once), STOPPING=1 on SIGTERM."""
    path = "/run/berth-test-master-notify-%d.sock" % os.getpid()
    s = _notify_socket(path)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        m = master_factory()
        monkeypatch.delenv("NOTIFY_SOCKET")
        msg = s.recv(4096).decode()
        assert "READY=1" in msg.split("\n"), msg
        c = socket.create_connection(("127.0.0.1", m.port), timeout=5)
        c.close()
        assert m.stop() == 0
        msg = s.recv(4096).decode()
        assert "STOPPING=1" in msg.split("\n"), msg
    finally:
        s.close()
        os.unlink(path)
