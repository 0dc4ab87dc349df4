#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/demo.sh BUILD_DIR - `make demo`: start a standalone berth-agent from an embedded
# config in a temporary directory, launch the seed's two tasks (2 CPUs / 1 GiB and
# 1 CPU / 2 GiB), show them with `berthctl ps` and the limits read back from the kernel's
# cgroup files, then stop everything and remove what it made.
set -euo pipefail
B=${1:?usage: demo.sh BUILD_DIR}
[ "$(id -u)" = 0 ] || { echo "make demo needs root (cgroups and namespaces)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/berth-demo.XXXXXX)
chmod 755 "$TMP"
SOCK=$TMP/agent.sock
CTL=("$B/berthctl" --socket "$SOCK")
AGENT_PID=

MASTER_PID=

# every live container of the agent (the master phase names them after task ids)
live_ids() {
    "${CTL[@]}" ps -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for c in json.load(sys.stdin).get("containers", []):
    if c["state"] not in ("FINISHED", "FAILED", "KILLED", "LOST"):
        print(c["id"])' 2>/dev/null
}

cleanup() {
    set +e
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        for n in $(live_ids); do "${CTL[@]}" kill --grace 1 "$n" >/dev/null 2>&1; done
        for n in $(live_ids); do "${CTL[@]}" wait "$n" >/dev/null 2>&1; done
        kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
    fi
    if [ -n "$MASTER_PID" ]; then kill "$MASTER_PID"; wait "$MASTER_PID" 2>/dev/null; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# The embedded demo configuration. The seed's tasks need 3 CPUs together; a 2-core demo
# host declares 4 so both fit (quotas still hold each task to its own share).
cat > "$TMP/agent.conf" <<CONF
[agent]
work_dir = $TMP/work
listen = unix:$SOCK
cgroup_parent = berth-demo-$$
task_user = nobody
[resources]
cpus = 4
mem = auto
[reserved]
cpus = 0
mem = 1GiB
CONF

echo "== berth-agent (standalone) with $TMP/agent.conf"
"$B/berth-agent" --config="$TMP/agent.conf" 2>"$TMP/agent.log" &
AGENT_PID=$!
for _ in $(seq 50); do "${CTL[@]}" node >/dev/null 2>&1 && break; sleep 0.1; done
"${CTL[@]}" node

echo
echo "== launching the seed's two tasks"
A=$("${CTL[@]}" run --name seed-a --cpus 2 --mem 1GiB -- sleep 600)
B2=$("${CTL[@]}" run --name seed-b --cpus 1 --mem 2GiB -- sleep 600)
sleep 0.3
"${CTL[@]}" ps

echo
echo "== limits read back from the kernel's cgroup files"
for id in "$A" "$B2"; do
    "${CTL[@]}" inspect "$id" | /usr/bin/python3 -c '
import json, os, sys
c = json.load(sys.stdin)
print("%s (%s): cpus=%s mem=%s" % (c["name"], c["id"][:12], c["resources"]["cpus"], c["resources"]["mem"]))
for ctrl, d in sorted(c["cgroups"].items()):
    for f in sorted(os.listdir(d)):
        if f in ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", "cpu.max", "cpu.weight",
                 "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.max",
                 "memory.swap.max", "pids.max"):
            print("  %-60s %s" % (os.path.join(d, f), open(os.path.join(d, f)).read().strip()))
'
done

echo
echo "== stopping the tasks and the agent"
"${CTL[@]}" kill --grace 1 seed-a >/dev/null
"${CTL[@]}" kill --grace 1 seed-b >/dev/null
"${CTL[@]}" wait seed-a >/dev/null || true
"${CTL[@]}" wait seed-b >/dev/null || true
"${CTL[@]}" ps -a
kill "$AGENT_PID"; wait "$AGENT_PID" || true
AGENT_PID=

# ---- issues #7, #11: the same two tasks through berth-master, over TLS -----------------------
echo
echo "== a private CA and the master's certificate (packaging/berth-gen-tls), two tokens"
sh "$(dirname "$0")/../packaging/berth-gen-tls" "$TMP/tls"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MURL=https://127.0.0.1:$PORT
for t in admin join; do
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/$t.token"
    chmod 600 "$TMP/$t.token"
done
echo "admin token $TMP/admin.token (for berthctl), join token $TMP/join.token (for agents)"
echo
echo "== berth-master from its embedded default config, serving TLS; the agent reporting to it"
"$B/berth-master" --print-default-config > "$TMP/master.conf"
"$B/berth-master" --config="$TMP/master.conf" --listen="127.0.0.1:$PORT" \
    --work_dir="$TMP/master" --token_file="$TMP/admin.token" \
    --join_token_file="$TMP/join.token" --tls_cert="$TMP/tls/master.crt" \
    --tls_key="$TMP/tls/master.key" --heartbeat_interval=1s 2>"$TMP/master.log" &
MASTER_PID=$!
MCTL=("$B/berthctl" --master "$MURL" --cacert "$TMP/tls/ca.crt" --token-file "$TMP/admin.token")
for _ in $(seq 50); do "${MCTL[@]}" agents >/dev/null 2>&1 && break; sleep 0.1; done
"$B/berth-agent" --config="$TMP/agent.conf" --master="$MURL" --master_ca="$TMP/tls/ca.crt" \
    --token_file="$TMP/join.token" 2>>"$TMP/agent.log" &
AGENT_PID=$!
for _ in $(seq 50); do "${MCTL[@]}" agents 2>/dev/null | grep -q REACHABLE && break; sleep 0.1; done
"${MCTL[@]}" agents
grep -h "registered with\|our key" "$TMP/master.log" "$TMP/agent.log" | sed 's/^/  /'

echo
echo "== submitting the seed's two tasks to the master"
TA=$("${MCTL[@]}" run --name seed-a --cpus 2 --mem 1GiB -- sh -c 'while :; do :; done')
TB=$("${MCTL[@]}" run --name seed-b --cpus 1 --mem 2GiB -- sleep 600)
echo "seed-a = $TA, seed-b = $TB; waiting for two heartbeats"
sleep 2.5
"${MCTL[@]}" tasks
echo
"${MCTL[@]}" agents

echo
echo "== killing them through the master; their updates as the master recorded them"
"${MCTL[@]}" kill "$TA" >/dev/null
"${MCTL[@]}" kill "$TB" >/dev/null
"${MCTL[@]}" wait "$TA" >/dev/null 2>&1 || true
"${MCTL[@]}" wait "$TB" >/dev/null 2>&1 || true
for t in "$TA" "$TB"; do
    "${MCTL[@]}" inspect "$t" | /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)
print("%s %s: %s" % (t["name"], t["id"], " -> ".join(
    "%s%s" % (h["state"], "/" + h["reason"] if h["reason"] else "") for h in t["history"])))'
done
kill "$AGENT_PID"; wait "$AGENT_PID" || true
AGENT_PID=
kill "$MASTER_PID"; wait "$MASTER_PID" || true
MASTER_PID=
echo "demo done: every cgroup, process and file it made is gone"
