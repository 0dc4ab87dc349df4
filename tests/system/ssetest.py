# SPDX-License-Identifier: Apache-2.0
"""tests/system/ssetest.py - a Server-Sent Events client for the tests of GET /v1/events
(issue #17; berth-master now, berth-apps next): it reads a text/event-stream reply as the
HTML spec's EventSource does (id, event, data lines joined with \\n; comments kept apart),
over http.client so TLS and chunked replies need nothing else, and a stalled subscriber that
asks and never reads (a raw socket with a small receive buffer)."""

import http.client
import json
import socket
import ssl
import time


class Event:
    def __init__(self, eid, name, data):
        self.id = eid
        self.event = name
        self.text = data
        try:
            self.data = json.loads(data)
        except ValueError:
            self.data = None

    def seq(self):
        """The (epoch, seq) of the id, for ordering."""
        e, s = self.id.split("-")
        return int(e), int(s)

    def __repr__(self):
        return "Event(%s %s %.120s)" % (self.id, self.event, self.text)


class Stream:
    """An open GET of an event stream. status/headers are the reply's; next() the events."""

    def __init__(self, conn, path="/v1/events", token=None, last_id=None, timeout=20):
        self.conn = conn
        self.comments = []
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = "Bearer " + token
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        conn.timeout = timeout
        conn.request("GET", path, headers=headers)
        self.resp = conn.getresponse()
        self.status = self.resp.status
        self.headers = dict(self.resp.getheaders())
        if self.status != 200:
            self.body = self.resp.read().decode("utf-8", "replace")

    def next(self, timeout=20):
        """The next event (comments are collected in self.comments); EOFError when the
        stream ends, socket.timeout when none comes in time."""
        end = time.monotonic() + timeout
        eid, name, data = None, "message", []
        while True:
            left = end - time.monotonic()  # keepalive comments must not extend the wait
            if left <= 0:
                raise socket.timeout("no event within %ss" % timeout)
            self.conn.sock.settimeout(left)
            line = self.resp.readline()
            if not line:
                raise EOFError("the event stream ended")
            line = line.decode("utf-8").rstrip("\n").rstrip("\r")
            if line == "":
                if data or eid is not None:
                    return Event(eid, name, "\n".join(data))
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                eid = value
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)

    def idle(self, seconds, slack=10):
        """Read a quiet stream for seconds: only comments (keepalives) may come, each within
        slack seconds; EOFError when it ends. (A socket timeout would leave the response
        unreadable, so this needs comments to arrive.)"""
        end = time.monotonic() + seconds
        self.conn.sock.settimeout(slack)
        while time.monotonic() < end:
            line = self.resp.readline()
            if not line:
                raise EOFError("the event stream ended")
            line = line.decode("utf-8").strip()
            assert line == "" or line.startswith(":"), "an event on a quiet stream: %r" % line
            if line:
                self.comments.append(line[1:].strip())

    def until(self, pred, timeout=30, what="an event"):
        """Events up to and including the first for which pred is true."""
        got, end = [], time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %ss; got %r" % (what, timeout, got[-5:]))
            ev = self.next(left)
            got.append(ev)
            if pred(ev):
                return got

    def close(self):
        self.conn.close()


def open_stream(m, path="/v1/events", token=True, last_id=None, timeout=20):
    """A Stream on mastertest.Master m (token True: the admin token)."""
    return Stream(m.connection(timeout), path, m.token if token is True else token, last_id,
                  timeout)


def stalled(host, port, path, token, rcvbuf=4096, ca=None):
    """A subscriber that sends its GET and never reads: a socket whose receive buffer is
    small, so what the daemon sends piles up on its side. Returns the socket."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window
    s.connect((host, port))
    if ca:
        s = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (path, host, token)).encode())
    return s


def drain(sock, timeout=20):
    """Read sock to its end: (bytes read, True when it ended by EOF or reset)."""
    sock.settimeout(timeout)
    n, end = 0, time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            return n, True
        except socket.timeout:
            return n, False
        if not b:
            return n, True
        n += len(b)
    return n, False
