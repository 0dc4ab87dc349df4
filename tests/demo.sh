#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/demo.sh BUILD_DIR - `make demo`: start a standalone berth-agent from an embedded
# config in a temporary directory, launch the seed's two tasks (2 CPUs / 1 GiB and
# 1 CPU / 2 GiB), show them with `berthctl ps` and the limits read back from the kernel's
# cgroup files; then the same through berth-master; then the whole seed story: the seed
# framework's two tasks through offers, an app of three instances kept by berth-apps, and a
# curl through berth-lb and its HAProxy (issue #17); then stop everything and remove what it
# made.
set -euo pipefail
B=${1:?usage: demo.sh BUILD_DIR}
[ "$(id -u)" = 0 ] || { echo "make demo needs root (cgroups and namespaces)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/berth-demo.XXXXXX)
chmod 755 "$TMP"
SOCK=$TMP/agent.sock
CTL=("$B/berthctl" --socket "$SOCK")
AGENT_PID=

MASTER_PID=
APPS_PID=
LB_PID=

# every live container of the agent (the master phase names them after task ids)
live_ids() {
    "${CTL[@]}" ps -o json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for c in json.load(sys.stdin).get("containers", []):
    if c["state"] not in ("FINISHED", "FAILED", "KILLED", "LOST"):
        print(c["id"])' 2>/dev/null
}

# HAProxy's master (berth-lb's pid file) and its workers, by pid
stop_haproxy() {
    local m
    m=$(cat "$TMP/lb/haproxy.pid" 2>/dev/null) || return 0
    [ -n "$m" ] && grep -q '^haproxy' "/proc/$m/comm" 2>/dev/null || return 0
    kill "$m" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$m" 2>/dev/null || break; sleep 0.1; done
}

cleanup() {
    set +e
    if [ -n "$LB_PID" ]; then kill "$LB_PID"; wait "$LB_PID" 2>/dev/null; fi
    stop_haproxy
    if [ -n "$APPS_PID" ]; then kill "$APPS_PID"; wait "$APPS_PID" 2>/dev/null; fi
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
ports = [39100-39199]
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

# ---- issues #14, #16, #17: the seed framework, an app kept by berth-apps, berth-lb ---------
echo
echo "== the seed framework (libberthsched): the seed's two tasks through the master's offers"
"$B/berth-seed-framework" --master "$MURL" --cacert "$TMP/tls/ca.crt" \
    --token-file "$TMP/admin.token" --command 'sleep 2' | sed 's/^/  /'

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
echo
echo "== berth-apps (plain HTTP on loopback) with a master token of submit rights"
"${MCTL[@]}" token create --rights submit --role '*' --name berth-apps > "$TMP/apps-master.token"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/apps.token"
chmod 600 "$TMP/apps-master.token" "$TMP/apps.token"
APORT=$(free_port)
AURL=http://127.0.0.1:$APORT
"$B/berth-apps" --config=/dev/null --listen="127.0.0.1:$APORT" --work_dir="$TMP/apps" \
    --token_file="$TMP/apps.token" --plain_http=true --master="$MURL" \
    --master_ca="$TMP/tls/ca.crt" --master_token_file="$TMP/apps-master.token" \
    2>"$TMP/apps.log" &
APPS_PID=$!
ACTL=("$B/berthctl" --apps "$AURL" --token-file "$TMP/apps.token")
for _ in $(seq 100); do curl -sf "$AURL/health" | grep -q '"reconciled": *true' && break; sleep 0.1; done
SP=$(free_port)
cat > "$TMP/hello.json" <<APP
{"id": "hello", "instances": 3, "cpus": 0.1, "mem": "64MiB",
 "command": "echo hello from instance \$PORT0 > index.html; exec python3 -m http.server --bind 127.0.0.1 \$PORT0",
 "ports": [{"name": "http", "service_port": $SP}], "labels": {"lb.vhost": "hello.example"},
 "health_checks": [{"type": "http", "port_index": 0, "path": "/", "interval": 0.5, "timeout": 2,
                    "grace": 20}]}
APP
"${ACTL[@]}" app deploy "$TMP/hello.json"
for _ in $(seq 300); do
    [ "$("${ACTL[@]}" app tasks hello 2>/dev/null | grep -c 'RUNNING.*true')" = 3 ] && break
    sleep 0.1
done
"${ACTL[@]}" app tasks hello

echo
echo "== berth-lb: HAProxy on service port $SP and virtual host hello.example"
LBHTTP=$(free_port)
"$B/berth-lb" --config=/dev/null --apps="$AURL" --token_file="$TMP/apps.token" \
    --run_dir="$TMP/lb" --bind=127.0.0.1 --http_port="$LBHTTP" --drain_timeout=2s \
    2>"$TMP/lb.log" &
LB_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SP/" >/dev/null 2>&1 && break; sleep 0.1; done
sed 's/^/  /' "$TMP/lb.log"
echo "what berth-lb routes to (berthctl --apps URL app endpoints hello):"
"${ACTL[@]}" app endpoints hello | sed 's/^/  /'
for i in 1 2 3 4 5 6; do
    echo "curl http://127.0.0.1:$SP/ -> $(curl -s "http://127.0.0.1:$SP/")"
done
echo "curl -H 'Host: hello.example' http://127.0.0.1:$LBHTTP/ -> $(curl -s -H 'Host: hello.example' "http://127.0.0.1:$LBHTTP/")"

echo
echo "== removing the app; stopping berth-lb, HAProxy, berth-apps, the agent and the master"
"${ACTL[@]}" app rm hello >/dev/null
for _ in $(seq 100); do
    [ -z "$("${ACTL[@]}" app ls 2>/dev/null | awk 'NR > 1')" ] && break
    sleep 0.1
done
kill "$LB_PID"; wait "$LB_PID" || true
LB_PID=
stop_haproxy
kill "$APPS_PID"; wait "$APPS_PID" || true
APPS_PID=
kill "$AGENT_PID"; wait "$AGENT_PID" || true
AGENT_PID=
kill "$MASTER_PID"; wait "$MASTER_PID" || true
MASTER_PID=
echo "demo done: every cgroup, process and file it made is gone"
