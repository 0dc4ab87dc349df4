# SPDX-License-Identifier: Apache-2.0
"""tests/bench/agent_sim.py - the agent side of the agent protocol (docs/protocol.md,
"Authentication") for master_load.py's simulated agents, on asyncio streams: a SUBSCRIBE
that registers with the master's join token, the CHALLENGE read from the stream and the
master's proof checked, AUTHENTICATE on a second connection with the agent's proof, the
agent key and session key derived the way masterlink/auth.c does, and HEARTBEATs signed
with the session key (Berth-Signature over the exact body, Berth-Stream-Id), as berth-agent
(agentd/link.c, link-http.c) sends them. No bearer token: the master refuses one here."""

import asyncio
import hashlib
import hmac
import json
import secrets

PATH = "/api/v1/agent"


def token_key(text):
    """A join token's key J (SHA-256 of its text) and its public id (first 16 hex digits)."""
    d = hashlib.sha256(text.encode()).digest()
    return d, d.hex()[:16]


def mac_fields(key, label, agent_id, nonce_agent, nonce_master, stream_id):
    """HMAC-SHA256 over "label\\0agent_id\\0nonce_agent\\0nonce_master\\0stream_id\\0"."""
    msg = b"".join(x.encode() + b"\0"
                   for x in (label, agent_id, nonce_agent, nonce_master, stream_id))
    return hmac.new(key, msg, hashlib.sha256).digest()


def request_bytes(port, body, headers=()):
    """An agent call: POST /api/v1/agent of the exact bytes body, no Authorization."""
    h = ["POST %s HTTP/1.1" % PATH, "Host: 127.0.0.1:%d" % port,
         "Content-Type: application/json", "Content-Length: %d" % len(body)]
    h += ["%s: %s" % kv for kv in headers]
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


class Stream:
    """The SUBSCRIBE reply: HTTP chunks carrying RecordIO records ("<len>\\n<json>")."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.buf = b""

    async def _chunk(self):
        size = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            raise EOFError("the master ended the stream")
        self.buf += (await self.r.readexactly(size + 2))[:size]

    async def record(self):
        while b"\n" not in self.buf:
            await self._chunk()
        n = int(self.buf.split(b"\n", 1)[0])
        start = self.buf.index(b"\n") + 1
        while len(self.buf) < start + n:
            await self._chunk()
        rec, self.buf = self.buf[start:start + n], self.buf[start + n:]
        return json.loads(rec)

    def close(self):
        self.w.close()


class SimAgent:
    """One simulated agent: its id, and after join() its stream, stream id and session key."""

    def __init__(self, agent_id, resources):
        self.id = agent_id
        self.res = resources
        self.stream = None
        self.sid = None
        self.session = None
        self.interval = None

    def subscribe_body(self, key_id, nonce):
        res = self.res
        return {"type": "SUBSCRIBE", "agent_id": self.id,
                "subscribe": {"hostname": "sim-" + self.id[:8], "tasks": [],
                              "resources": {"total": res, "reserved": {"cpus": 0, "mem": 0},
                                            "allocatable": res},
                              "auth": {"method": "join", "key_id": key_id, "nonce": nonce}}}

    async def join(self, port, join_token, call_conn):
        """Register with the join token: SUBSCRIBE (stream kept), CHALLENGE, master's proof
        checked, AUTHENTICATE over call_conn (a keep-alive (reader, writer)), SUBSCRIBED."""
        jkey, kid = token_key(join_token)
        na = secrets.token_hex(32)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(request_bytes(port, json.dumps(self.subscribe_body(kid, na)).encode()))
        head = await r.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n")[0]
        if b" 200 " not in status:
            w.close()
            raise RuntimeError("SUBSCRIBE of %s: %r" % (self.id, status))
        st = Stream(r, w)
        ev = await st.record()
        if ev.get("type") != "CHALLENGE":
            st.close()
            raise RuntimeError("SUBSCRIBE of %s: first event %r, not CHALLENGE" % (self.id, ev))
        ch = ev["challenge"]
        hs = (self.id, na, ch["nonce"], ch["stream_id"])
        want = mac_fields(jkey, "berth master proof v1", *hs).hex()
        if not hmac.compare_digest(want, ch.get("proof", "")):
            st.close()
            raise RuntimeError("CHALLENGE to %s: the master's proof is wrong" % self.id)
        prf = mac_fields(jkey, "berth agent proof v1", *hs).hex()
        body = json.dumps({"type": "AUTHENTICATE", "agent_id": self.id,
                           "authenticate": {"proof": prf}}).encode()
        cr, cw = call_conn
        cw.write(request_bytes(port, body, [("Berth-Stream-Id", ch["stream_id"])]))
        code, text = await read_response(cr)
        if code != 202:
            st.close()
            raise RuntimeError("AUTHENTICATE of %s: %d %r" % (self.id, code, text))
        ev = await st.record()
        while ev.get("type") == "PING":
            ev = await st.record()
        sub = ev.get("subscribed") or {}
        if ev.get("type") != "SUBSCRIBED" or sub.get("stream_id") != ch["stream_id"]:
            st.close()
            raise RuntimeError("%s: %r after AUTHENTICATE, not SUBSCRIBED" % (self.id, ev))
        # a join yields the agent key K (kept in work_dir/master.key by a real agent); the
        # calls of this stream are signed with the session key derived from K
        k = mac_fields(jkey, "berth agent key v1", *hs)
        self.session = mac_fields(k, "berth session key v1", *hs)
        self.sid = ch["stream_id"]
        self.interval = float(sub["heartbeat_interval_seconds"])
        self.stream = st

    def heartbeat_request(self, port, usage):
        """A HEARTBEAT, signed: the request bytes to write on a keep-alive connection."""
        body = json.dumps({"type": "HEARTBEAT", "agent_id": self.id,
                           "heartbeat": {"usage": usage}}).encode()
        sig = hmac.new(self.session, body, hashlib.sha256).hexdigest()
        return request_bytes(port, body, [("Berth-Stream-Id", self.sid),
                                          ("Berth-Signature", sig)])
