#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/packages/scenario.sh DEB UP_DEB MASTER_DEB MASTER_UP_DEB CGNAME SD_CGROUP ROOT APPS_DEB
# APPS_UP_DEB - runs as root inside the fresh Debian 12 root that install-test.sh prepared (its own pid and mount
# namespaces; pid 1 here), doing what an operator does.
# The agent: apt install the .deb, edit a reservation in /etc/berth/agent.conf, start the
# installed agent from the installed config, launch a task with the installed berthctl and
# check its limits in the kernel's files, use the installed bash completion, upgrade to
# UP_DEB with the task running, restart the agent (as postinst's restart would under
# systemd) and find the task re-adopted.
# The master: boot the root's own systemd (boot-systemd.sh: namespaces of its own, cgroup2
# in SD_CGROUP, a network namespace with only lo), apt install the master's .deb under it
# (postinst makes the user and starts the unit), configure a token and restart it, check the
# running unit's sandbox in the kernel's files, point the installed agent at it and run the
# seed's two tasks (2 CPUs / 1 GiB, 1 CPU / 2 GiB) with `berthctl --master`, read their
# limits in the kernel's files, upgrade the master with the tasks running, kill them through
# the master, remove and purge it. Between the two, berth-apps (scenario-apps.sh): install it
# under the same systemd, make its master token, start it, deploy an app with berthctl
# --apps, upgrade it with the instance running, remove and purge it.
# Then purge the agent and compare the file tree with the one before. CGNAME is the agent's
# cgroup_parent (berth-pkgtest-*, below our own cgroups: host safety); ROOT is this root's
# path on the host (boot-systemd.sh pivots to it).
# Only bash, coreutils, util-linux, grep, sed, awk and apt: no python in a minimal root.
set -euo pipefail
DEB=$1
UP_DEB=$2
MASTER_DEB=$3
MASTER_UP_DEB=$4
CGNAME=$5
SD_CGROUP=$6
HOST_ROOT=$7
APPS_DEB=$8
APPS_UP_DEB=$9
W=/root/pkgtest
LOG=$W/agent.log
# The master's address, in one place: master.conf's listen and the URL agents and berthctl
# use (it listens in systemd's network namespace, so the default port cannot collide with
# anything on the host). The package made its TLS certificate (berth-master-init): agents and
# berthctl verify it against /etc/berth/tls/ca.crt.
MASTER_LISTEN=127.0.0.1:5050
MASTER_URL=https://$MASTER_LISTEN
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
APT_OPTS=(-y -q -o Dpkg::Use-Pty=0 -o APT::Color=0)
AGENT_PID=

step() { echo "-- $*"; }
ok() { echo "   ok: $*"; }
fail() {
    echo "FAIL: $*" >&2
    if [ -s "$LOG" ]; then
        echo "agent log (tail):" >&2
        tail -20 "$LOG" >&2
    fi
    if [ -n "$SD_PID" ] && kill -0 "$SD_PID" 2>/dev/null; then
        echo "systemd: failed units, berth-master's and berth-apps' journal (tail):" >&2
        in_sd systemctl --no-pager --failed >&2 || true
        for u in berth-master berth-apps; do
            in_sd systemctl --no-pager status "$u" >&2 || true
            in_sd journalctl --no-pager -n 20 -u "$u" >&2 || true
        done
    fi
    exit 1
}

SD_PID=     # systemd, pid 1 of its namespaces (boot-systemd.sh), in our numbering
SD_UNSHARE= # the unshare that started it
# A command in systemd's pid and mount namespaces, at its root: what a shell on that host
# runs (apt and systemctl; systemd refuses bus peers it cannot see in its pid namespace).
in_sd() { nsenter --target "$SD_PID" --pid --mount --root --wd -- "$@"; }
# A command in systemd's network namespace only (the agent, berthctl --master): our own pid
# and mount namespaces, where the host's v1 cgroups are, and the master's loopback.
in_net() { nsenter --target "$SD_PID" --net -- "$@"; }

start_systemd() {
    # move into our cgroup2 cgroup (below ours: host safety), then the namespaces
    (
        echo "$BASHPID" >"$SD_CGROUP/cgroup.procs"
        exec unshare --pid --mount --uts --cgroup --net --fork --kill-child \
            --propagation private /bin/bash "$W/boot-systemd.sh" "$HOST_ROOT"
    ) </dev/null >"$W/systemd.log" 2>&1 &
    SD_UNSHARE=$!
    for _ in $(seq 100); do
        SD_PID=$(cat /proc/"$SD_UNSHARE"/task/*/children 2>/dev/null | tr -d ' ')
        [ -n "$SD_PID" ] && break
        sleep 0.1
    done
    [ -n "$SD_PID" ] || fail "systemd did not start: $(cat "$W/systemd.log")"
    # until its bus socket exists, then until the boot is over
    local state=
    for _ in $(seq 300); do
        state=$(timeout 60 nsenter --target "$SD_PID" --pid --mount --root --wd -- \
            systemctl is-system-running --wait 2>&1) || true
        case $state in *"Failed to connect"* | offline | "") sleep 0.1 ;; *) break ;; esac
    done
    [ "$state" = running ] || fail "systemd is '$state', not running"
    ok "systemd $(in_sd systemctl --version | head -1 | cut -d' ' -f2) is pid 1 of its" \
        "namespaces (our pid $SD_PID), system state: running"
}

stop_systemd() {
    in_sd systemctl start poweroff.target --job-mode=replace-irreversibly --no-block \
        >/dev/null 2>&1 || true
    for _ in $(seq 300); do
        kill -0 "$SD_UNSHARE" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SD_UNSHARE" 2>/dev/null; then
        kill -9 "$SD_PID" # pid 1 of its namespace: the kernel ends everything in it
        fail "systemd did not power off within 30 s"
    fi
    wait "$SD_UNSHARE" || true
    SD_PID=
    # its runtime state lives on our /run: without it, the maintainer scripts see a host
    # without systemd again
    rm -rf /run/systemd
    ok "systemd powered off"
}
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; ok "$3 = $2"; }

# The file tree, minus what apt and dpkg keep for themselves and the kernel's file systems.
snapshot() {
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /root -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg \
        -o -path /var/log \) -prune -o -print | sort
}

# First value of "KEY": VALUE in the JSON on stdin (berthctl prints one key per line).
jget() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -n 1; }
# The "total" / "reserved" object of `berthctl node -o json`, then jget.
node_get() { berthctl node -o json | awk -v o="\"$1\": {" 'index($0, o) { on = 1; next }
    on && /}/ { exit } on' | jget "$2"; }

# cgroup_file PID CONTROLLER FILE: the path of FILE in PID's cgroup of CONTROLLER (v1), or
# in its cgroup2 cgroup, found from /proc/PID/cgroup and our mountinfo (not from the agent).
cgroup_file() {
    local pid=$1 ctrl=$2 file=$3 path mnt
    path=$(awk -F: -v c="$ctrl" '{ n = split($2, a, ","); for (i = 1; i <= n; i++)
        if (a[i] == c) print $3 }' "/proc/$pid/cgroup")
    if [ -n "$path" ]; then
        mnt=$(awk -v c="$ctrl" '{ for (s = 1; $s != "-"; s++); if ($(s + 1) != "cgroup") next;
            n = split($(s + 3), a, ","); for (i = 1; i <= n; i++) if (a[i] == c)
            { print $4 " " $5; exit } }' /proc/self/mountinfo)
    else
        path=$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")
        mnt=$(awk '{ for (s = 1; $s != "-"; s++); if ($(s + 1) == "cgroup2") { print $4 " " $5;
            exit } }' /proc/self/mountinfo)
    fi
    [ -n "$mnt" ] || fail "no cgroup mount for '$ctrl'"
    local root=${mnt%% *} point=${mnt#* }
    [ "$root" = / ] || path=${path#"$root"}
    echo "$point$path/$file"
}

start_agent() {
    # as the unit's ExecStart: no flags, the installed config; once systemd runs, in its
    # network namespace, where the master listens
    if [ -n "$SD_PID" ]; then
        # (not through in_net: a function in the background is a subshell, not the agent)
        nsenter --target "$SD_PID" --net -- /usr/sbin/berth-agent </dev/null >>"$LOG" 2>&1 &
    else
        /usr/sbin/berth-agent </dev/null >>"$LOG" 2>&1 &
    fi
    AGENT_PID=$!
    for _ in $(seq 100); do
        if berthctl node >/dev/null 2>&1; then
            ok "berth-agent $AGENT_PID serves /run/berth/agent.sock"
            return
        fi
        kill -0 "$AGENT_PID" 2>/dev/null || fail "berth-agent exited during start-up"
        sleep 0.1
    done
    fail "berth-agent did not answer within 10 s"
}

stop_agent() {
    kill -TERM "$AGENT_PID"
    local rc=0
    wait "$AGENT_PID" || rc=$?
    expect_eq "$rc" 0 "exit status of berth-agent after SIGTERM"
}

wait_state() {
    local want=$1 state=
    for _ in $(seq 100); do
        state=$(berthctl inspect pkgtest | jget state)
        [ "$state" = "$want" ] && return
        sleep 0.1
    done
    fail "container pkgtest: state '$state', want '$want'"
}

# check_task_limits PID CPUS_X1000 SHARES MEM: the limits of the task whose executor is PID,
# read from the kernel's files of its cgroups (v1: quota/period, shares, limit_in_bytes;
# v2: cpu.max, memory.max). The executor itself lives in the agent's supervisor cgroup;
# the task, its child, alone is in the task's cgroups.
check_task_limits() {
    local pid cpus=$2 shares=$3 mem=$4
    pid=$(cut -d' ' -f1 "/proc/$1/task/$1/children")
    [ -n "$pid" ] || fail "executor $1 has no child task"
    if grep -q '^[0-9]*:[^:]*cpu[,:]' "/proc/$pid/cgroup"; then
        local quota period
        quota=$(cat "$(cgroup_file "$pid" cpu cpu.cfs_quota_us)")
        period=$(cat "$(cgroup_file "$pid" cpu cpu.cfs_period_us)")
        expect_eq "$((quota * 1000 / period))" "$cpus" "cpu.cfs_quota_us/cfs_period_us x 1000"
        expect_eq "$(cat "$(cgroup_file "$pid" cpu cpu.shares)")" "$shares" "cpu.shares"
        expect_eq "$(cat "$(cgroup_file "$pid" memory memory.limit_in_bytes)")" "$mem" \
            "memory.limit_in_bytes"
        case $(cgroup_file "$pid" memory memory.limit_in_bytes) in
            */"$CGNAME"/*) ok "the task's cgroup is below cgroup_parent '$CGNAME'" ;;
            *) fail "the task's memory cgroup is not below '$CGNAME'" ;;
        esac
    else
        local max
        max=$(cat "$(cgroup_file "$pid" cpu cpu.max)")
        expect_eq "$((${max% *} * 1000 / ${max#* }))" "$cpus" "cpu.max quota/period x 1000"
        expect_eq "$(cat "$(cgroup_file "$pid" memory memory.max)")" "$mem" "memory.max"
    fi
}

complete_line() {
    # a scripted bash session: bash-completion's loader finds the installed file by name
    bash -c 'source /usr/share/bash-completion/bash_completion
        _completion_loader berthctl
        COMP_LINE=$1; COMP_POINT=${#1}
        read -r -a COMP_WORDS <<<"$1"
        [[ $1 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _berthctl berthctl
        printf "%s\n" "${COMPREPLY[@]}"' _ "$1"
}

step "apt-get update (Debian's archive); install systemd (not in a minimal root) for the master"
apt-get update -q >/dev/null
apt-get install "${APT_OPTS[@]}" --no-install-recommends systemd </dev/null >"$W/apt-systemd.log" 2>&1 ||
    { tail -30 "$W/apt-systemd.log"; fail "apt-get install systemd"; }
ok "systemd $(dpkg-query -W -f='${Version}' systemd) installed (not running yet)"
snapshot >"$W/before.txt"
dpkg-query -W -f='${Package}\n' | sort >"$W/packages-before.txt"
ok "$(wc -l <"$W/before.txt") paths and $(wc -l <"$W/packages-before.txt") packages before the install"

step "install $(basename "$DEB") with apt (dependencies from the archive)"
apt-get install "${APT_OPTS[@]}" "$W/$(basename "$DEB")" </dev/null >"$W/apt-install.log" 2>&1 ||
    { tail -30 "$W/apt-install.log"; fail "apt-get install"; }
expect_eq "$(dpkg-query -W -f='${db:Status-Abbrev}' berth-agent)" "ii " "dpkg status"
# (berth-executor is static-pie with libcap inside and its seccomp filter compiled in: no package of theirs is needed)
for dep in libevent-2.1-7 libsqlite3-0 libcurl4 libcgroup2 libyajl2 libinih1 adduser; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$dep" 2>/dev/null | grep -q '^ii' ||
        fail "dependency $dep was not installed"
done
ok "dependencies installed from the archive: $(grep -c '^Unpacking' "$W/apt-install.log") packages unpacked"
getent group berth >/dev/null || fail "no group berth"
ok "group berth exists"
dpkg-query -W -f='${Conffiles}\n' berth-agent | grep -q '^ /etc/berth/agent.conf ' ||
    fail "/etc/berth/agent.conf is not a conffile"
ok "/etc/berth/agent.conf is a conffile"
if grep -En '^[a-z_]+ *=' /etc/berth/agent.conf; then
    fail "the packaged agent.conf sets a key (all must be commented out)"
fi
ok "every key of agent.conf is commented out"
expect_eq "$(berth-agent --version)" "berth-agent $(dpkg-deb -f "$W/$(basename "$DEB")" Version | sed 's/-[^-]*$//')" \
    "berth-agent --version"
[ -d /etc/berth/agent.conf.d ] && [ -d /var/lib/berth ] || fail "missing directories"
[ -L /etc/systemd/system/multi-user.target.wants/berth-agent.service ] ||
    fail "berth-agent.service was not enabled"
ok "berth-agent.service enabled (deb-systemd-helper); not started: systemd is not running here"

step "edit the reservation in /etc/berth/agent.conf, as an operator"
sed -i '/^\[reserved\]/,/^\[/{s/^#cpus = 0$/cpus = 0.5/;s/^#mem = 0$/mem = 1GiB/}' /etc/berth/agent.conf
grep -q '^cpus = 0.5$' /etc/berth/agent.conf && grep -q '^mem = 1GiB$' /etc/berth/agent.conf ||
    fail "sed did not edit [reserved]"
ok "[reserved] cpus = 0.5, mem = 1GiB"
# host safety: tasks below our own cgroups, in a cgroup named berth-*
printf '[agent]\ncgroup_parent = %s\n' "$CGNAME" >/etc/berth/agent.conf.d/50-pkgtest.conf
ok "drop-in agent.conf.d/50-pkgtest.conf: cgroup_parent = $CGNAME"

step "start the installed agent from the installed config"
start_agent
expect_eq "$(stat -c '%a %U:%G' /run/berth/agent.sock)" "660 root:berth" "socket mode and owner"
expect_eq "$(node_get reserved mem)" 1073741824 "node: reserved mem"
expect_eq "$(node_get reserved cpus)" 0.5 "node: reserved cpus"
total_mem=$(node_get total mem)
parent_mem=$(cgroup_file self memory memory.limit_in_bytes)
parent_mem=${parent_mem%/memory.limit_in_bytes}/$CGNAME/memory.limit_in_bytes
if [ -f "$parent_mem" ]; then
    expect_eq "$(cat "$parent_mem")" "$((total_mem - 1073741824))" \
        "kernel: $CGNAME memory.limit_in_bytes = total - reserved"
fi

step "launch a task with the installed berthctl"
ID=$(berthctl run --name pkgtest --cpus 0.5 --mem 64MiB -- /bin/sleep 100000)
wait_state RUNNING
TASK_PID=$(berthctl inspect pkgtest | jget pid)
ok "container $ID RUNNING, executor pid $TASK_PID"
check_task_limits "$TASK_PID" 500 512 67108864 # --cpus 0.5 --mem 64MiB

step "bash completion, installed, from a scripted bash session"
expect_eq "$(complete_line 'berthctl ki')" kill "completion of 'berthctl ki'"
expect_eq "$(complete_line "berthctl kill ${ID:0:4}")" "${ID:0:12}" \
    "completion of 'berthctl kill ${ID:0:4}'"
expect_eq "$(complete_line 'berthctl inspect pkgt')" pkgtest "completion of 'berthctl inspect pkgt'"

step "upgrade to $(basename "$UP_DEB") with the task running"
cp /etc/berth/agent.conf "$W/agent.conf.edited"
apt-get install "${APT_OPTS[@]}" "$W/$(basename "$UP_DEB")" </dev/null >"$W/apt-upgrade.log" 2>&1 ||
    { tail -30 "$W/apt-upgrade.log"; fail "apt-get install (upgrade)"; }
UP_VERSION=$(dpkg-deb -f "$W/$(basename "$UP_DEB")" Version)
expect_eq "$(dpkg-query -W -f='${Version}' berth-agent)" "$UP_VERSION" "installed version"
grep -q "Unpacking berth-agent ($UP_VERSION) over" "$W/apt-upgrade.log" || fail "not an upgrade"
cmp -s /etc/berth/agent.conf "$W/agent.conf.edited" || fail "the edited conffile was changed"
ok "the edited /etc/berth/agent.conf is kept"
ls /etc/berth/agent.conf.dpkg-* 2>/dev/null && fail "dpkg left a new conffile beside it"
[ -f /etc/berth/agent.conf.d/50-pkgtest.conf ] || fail "the drop-in is gone"
kill -0 "$TASK_PID" || fail "the task's executor died in the upgrade"
expect_eq "$(berthctl inspect pkgtest | jget state)" RUNNING "task state after the upgrade"

step "restart the agent (what postinst's restart does under systemd): the task is re-adopted"
stop_agent
kill -0 "$TASK_PID" || fail "the task died with the agent"
ok "the task outlived the agent"
start_agent
expect_eq "$(berth-agent --version)" "berth-agent ${UP_VERSION%-*}" "berth-agent --version"
expect_eq "$(berthctl inspect pkgtest | jget state)" RUNNING "task state after the restart"
expect_eq "$(berthctl inspect pkgtest | jget pid)" "$TASK_PID" "task pid after the restart"
check_task_limits "$TASK_PID" 500 512 67108864

step "end the task, stop the agent"
berthctl kill --grace 1 pkgtest
rc=0
berthctl wait pkgtest 2>/dev/null || rc=$?
expect_eq "$rc" 143 "berthctl wait (SIGTERM)"
berthctl rm pkgtest
stop_agent

# ---- berth-master, under systemd ------------------------------------------------------------

# ctlm ARGS: the installed berthctl talking to the master (in its network namespace)
ctlm() {
    in_net berthctl --master "$MASTER_URL" --token-file /etc/berth/master.token \
        --cacert /etc/berth/tls/ca.crt "$@"
}

# wait_task ID STATE...: until the master holds task ID in one of the states
wait_task() {
    local id=$1 state=
    shift
    for _ in $(seq 150); do
        state=$(ctlm inspect "$id" 2>/dev/null | jget state)
        for want in "$@"; do [ "$state" = "$want" ] && return; done
        sleep 0.2
    done
    fail "task $id: state '$state' at the master, want $*"
}

# configure_master: what an operator does after the install: the address, a restart, and
# the join token for the agent (as it would be copied to an agent host).
configure_master() {
    install -m 0600 /etc/berth/join.token /etc/berth/agent.token
    sed -i -e "s|^#listen = .*|listen = $MASTER_LISTEN|" /etc/berth/master.conf
    grep -q "^listen = $MASTER_LISTEN$" /etc/berth/master.conf || fail "sed did not edit master.conf"
    in_sd systemctl restart berth-master
}

# field NAME TEXT: the value of "NAME:<tab>VALUE" in a /proc/PID/status text
field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' <<<"$2"; }

step "boot the root's systemd (boot-systemd.sh: pid, mount, cgroup, network namespaces of its own)"
start_systemd

step "install $(basename "$MASTER_DEB") with apt under systemd: postinst adds the user, starts the unit"
in_sd apt-get install "${APT_OPTS[@]}" "$W/$(basename "$MASTER_DEB")" </dev/null \
    >"$W/apt-master.log" 2>&1 || { tail -30 "$W/apt-master.log"; fail "apt-get install"; }
expect_eq "$(dpkg-query -W -f='${db:Status-Abbrev}' berth-master)" "ii " "dpkg status"
IFS=: read -r _ _ MUID MGID _ MHOME MSHELL < <(getent passwd berth-master) ||
    fail "no user berth-master"
[ "$MUID" -lt 1000 ] || fail "berth-master is not a system user (uid $MUID)"
expect_eq "$(getent group berth-master | cut -d: -f3)" "$MGID" "group berth-master: the user's"
expect_eq "$MHOME $MSHELL" "/var/lib/berth-master /usr/sbin/nologin" "home and shell"
dpkg-query -W -f='${Conffiles}\n' berth-master | grep -q '^ /etc/berth/master.conf ' ||
    fail "/etc/berth/master.conf is not a conffile"
expect_eq "$(grep -E '^[a-z_]+ *=' /etc/berth/master.conf | xargs)" \
    "token_file = /etc/berth/master.token join_token_file = /etc/berth/join.token tls_cert = /etc/berth/tls/master.crt tls_key = /etc/berth/tls/master.key" \
    "the keys the packaged master.conf sets"
ok "/etc/berth/master.conf is a conffile; every other key commented out"
# berth-master-init made the TLS certificate and the tokens, readable by the master's group
expect_eq "$(stat -c '%U:%G %a' /etc/berth/tls/master.key /etc/berth/tls/ca.key \
    /etc/berth/master.token /etc/berth/join.token /etc/berth/tls/ca.crt | xargs)" \
    "root:berth-master 640 root:root 600 root:berth-master 640 root:berth-master 640 root:root 644" \
    "TLS key, CA key, tokens, CA certificate"
openssl verify -CAfile /etc/berth/tls/ca.crt /etc/berth/tls/master.crt >/dev/null ||
    fail "master.crt does not chain to ca.crt"
ok "berth-master-init: a CA, the master's certificate and two tokens"
[ -L /etc/systemd/system/multi-user.target.wants/berth-master.service ] ||
    fail "berth-master.service was not enabled"
# Type=notify: the postinst's start returned once the master said READY=1
expect_eq "$(in_sd systemctl is-active berth-master)" active "berth-master.service, started by postinst"

step "configure the master (token, listen = $MASTER_LISTEN) and restart it"
configure_master
expect_eq "$(in_sd systemctl is-active berth-master)" active "berth-master.service after the restart"
in_sd journalctl --no-pager -u berth-master | grep -q "serving on '$MASTER_LISTEN'" ||
    fail "the journal does not say the master serves on '$MASTER_LISTEN'"
ok "the journal says: serving on '$MASTER_LISTEN'"

step "the running unit's sandbox, from the kernel's files of its main process"
MPID=$(in_sd systemctl show -P MainPID berth-master)
ST=$(in_sd cat "/proc/$MPID/status")
expect_eq "$(field Uid "$ST" | awk '{ print $1, $2, $3, $4 }')" "$MUID $MUID $MUID $MUID" "Uid (berth-master)"
expect_eq "$(field Gid "$ST" | awk '{ print $1, $2, $3, $4 }')" "$MGID $MGID $MGID $MGID" "Gid"
expect_eq "$(field NoNewPrivs "$ST")" 1 "NoNewPrivs"
expect_eq "$(field Seccomp "$ST")" 2 "Seccomp (filter mode: SystemCallFilter=)"
expect_eq "$(field CapEff "$ST") $(field CapPrm "$ST") $(field CapBnd "$ST")" \
    "0000000000000000 0000000000000000 0000000000000000" "CapEff, CapPrm, CapBnd"
MI=$(in_sd cat "/proc/$MPID/mountinfo")
# mount options of the mount at a path: field 6 of its (last) mountinfo line
mopts() { awk -v p="$1" '$5 == p { o = $6 } END { print o }' <<<"$MI"; }
case ,$(mopts /), in *,ro,*) ok "/ is read-only for it (ProtectSystem=strict)" ;;
    *) fail "/ is mounted '$(mopts /)' for the master" ;; esac
case ,$(mopts /var/lib/berth-master), in *,rw,*) ok "/var/lib/berth-master is writable" ;;
    *) fail "/var/lib/berth-master is '$(mopts /var/lib/berth-master)'" ;; esac
[ -n "$(mopts /tmp)" ] || fail "no /tmp of its own (PrivateTmp)"
# mount id of /dev: the master's is not systemd's own (PrivateDevices)
devid() { awk '$5 == "/dev" { id = $1 } END { print id }' <<<"$1"; }
[ -n "$(devid "$MI")" ] && [ "$(devid "$MI")" != "$(devid "$(in_sd cat /proc/1/mountinfo)")" ] ||
    fail "the master shares systemd's /dev (PrivateDevices)"
case ,$(mopts /home), in *,ro,*) ok "/tmp and /dev of its own, /home hidden" ;;
    *) fail "/home is '$(mopts /home)' for the master (ProtectHome)" ;; esac
# PrivateUsers: its own user namespace, mapping root and itself only
expect_eq "$(in_sd cat "/proc/$MPID/uid_map" | awk '{ print $1, $2, $3 }' | sort | xargs)" \
    "0 0 1 $MUID $MUID 1" "uid_map (PrivateUsers)"
expect_eq "$(stat -c '%U:%G %a' /var/lib/berth-master /var/lib/berth-master/master.db | xargs)" \
    "berth-master:berth-master 700 berth-master:berth-master 600" "state dir and master.db"

step "point the installed agent at the master; the seed's two tasks through the master"
# the seed needs 3 CPUs; this test host may have fewer (as tests/system/conftest.py)
printf '[agent]\nmaster = %s\nmaster_ca = /etc/berth/tls/ca.crt\ntoken_file = /etc/berth/agent.token\n[resources]\ncpus = 4\n' \
    "$MASTER_URL" >/etc/berth/agent.conf.d/60-master.conf
start_agent
for _ in $(seq 100); do
    [ "$(ctlm agents -o json 2>/dev/null | jget state)" = REACHABLE ] && break
    sleep 0.1
done
expect_eq "$(ctlm agents -o json | jget state)" REACHABLE "the agent at the master"
TA=$(ctlm run --name seed-a --cpus 2 --mem 1GiB -- /bin/sleep 100000)
TB=$(ctlm run --name seed-b --cpus 1 --mem 2GiB -- /bin/sleep 100000)
wait_task "$TA" RUNNING
wait_task "$TB" RUNNING
ok "tasks $TA (2 CPUs, 1 GiB) and $TB (1 CPU, 2 GiB) RUNNING"
PA=$(berthctl inspect "$(ctlm inspect "$TA" | jget container_id)" | jget pid)
PB=$(berthctl inspect "$(ctlm inspect "$TB" | jget container_id)" | jget pid)
check_task_limits "$PA" 2000 2048 1073741824
check_task_limits "$PB" 1000 1024 2147483648
ctlm tasks | grep -q "seed-a .*RUNNING" && ctlm tasks | grep -q "seed-b .*RUNNING" ||
    fail "berthctl --master tasks does not list both: $(ctlm tasks)"
ok "berthctl --master tasks lists both RUNNING"

# berth-apps, on this master and agent
# shellcheck source=tests/packages/scenario-apps.sh
. "$W/scenario-apps.sh"

step "upgrade to $(basename "$MASTER_UP_DEB") with the tasks running"
cp /etc/berth/master.conf "$W/master.conf.edited"
in_sd apt-get install "${APT_OPTS[@]}" "$W/$(basename "$MASTER_UP_DEB")" </dev/null \
    >"$W/apt-master-upgrade.log" 2>&1 ||
    { tail -30 "$W/apt-master-upgrade.log"; fail "apt-get install (upgrade)"; }
M_UP_VERSION=$(dpkg-deb -f "$W/$(basename "$MASTER_UP_DEB")" Version)
grep -q "Unpacking berth-master ($M_UP_VERSION) over" "$W/apt-master-upgrade.log" ||
    fail "not an upgrade"
cmp -s /etc/berth/master.conf "$W/master.conf.edited" || fail "the edited master.conf was changed"
ls /etc/berth/master.conf.dpkg-* 2>/dev/null && fail "dpkg left a new conffile beside it"
ok "the edited /etc/berth/master.conf is kept"
expect_eq "$(in_sd systemctl is-active berth-master)" active "berth-master.service after the upgrade"
[ "$(in_sd systemctl show -P MainPID berth-master)" != "$MPID" ] || fail "postinst did not restart it"
expect_eq "$(berth-master --version)" "berth-master ${M_UP_VERSION%-*}" "berth-master --version"
wait_task "$TA" RUNNING
wait_task "$TB" RUNNING
kill -0 "$PA" && kill -0 "$PB" || fail "a task died in the master's upgrade"
ok "both tasks still RUNNING at the restarted master (master.db kept them)"

step "kill the tasks through the master"
ctlm kill "$TA" >/dev/null
ctlm kill "$TB" >/dev/null
wait_task "$TA" KILLED
wait_task "$TB" KILLED
for p in "$PA" "$PB"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && fail "executor $p is still running"
done
ok "both KILLED at the master, their executors gone"
stop_agent

step "remove berth-master (not purge): config, registry and user stay"
in_sd apt-get remove "${APT_OPTS[@]}" berth-master </dev/null >"$W/apt-master-remove.log" 2>&1 ||
    { tail -30 "$W/apt-master-remove.log"; fail "apt-get remove berth-master"; }
expect_eq "$(dpkg-query -W -f='${db:Status-Abbrev}' berth-master)" "rc " "dpkg status"
expect_eq "$(in_sd systemctl is-active berth-master)" inactive "berth-master.service (prerm stopped it)"
cmp -s /etc/berth/master.conf "$W/master.conf.edited" || fail "remove changed the conffile"
[ -f /var/lib/berth-master/master.db ] || fail "remove deleted master.db"
getent passwd berth-master >/dev/null || fail "remove deleted the user"
ok "stopped; master.conf, /var/lib/berth-master/master.db and user berth-master kept"

step "purge berth-master"
# the agent's copy of the join token is the operator's file; the package's go with purge
rm -f /etc/berth/agent.token
in_sd apt-get purge "${APT_OPTS[@]}" berth-master </dev/null >"$W/apt-master-purge.log" 2>&1 ||
    { tail -30 "$W/apt-master-purge.log"; fail "apt-get purge berth-master"; }
for p in /var/lib/berth-master /etc/berth/master.conf /etc/berth/tls /etc/berth/master.token \
    /etc/berth/join.token /etc/systemd/system/multi-user.target.wants/berth-master.service; do
    [ -e "$p" ] && fail "$p is left"
done
getent passwd berth-master >/dev/null && fail "user berth-master is left"
getent group berth-master >/dev/null && fail "group berth-master is left"
ok "no registry, conffile, enablement, user or group left"
stop_systemd

step "remove (not purge): config, state and group stay"
dpkg-query -L berth-agent >"$W/files.txt"
apt-get remove "${APT_OPTS[@]}" berth-agent </dev/null >"$W/apt-remove.log" 2>&1 ||
    { tail -30 "$W/apt-remove.log"; fail "apt-get remove"; }
expect_eq "$(dpkg-query -W -f='${db:Status-Abbrev}' berth-agent)" "rc " "dpkg status"
[ ! -e /usr/sbin/berth-agent ] || fail "the agent binary is left after remove"
cmp -s /etc/berth/agent.conf "$W/agent.conf.edited" || fail "remove changed the conffile"
[ -f /etc/berth/agent.conf.d/50-pkgtest.conf ] || fail "remove deleted the drop-in"
[ -f /var/lib/berth/state.db ] || fail "remove deleted the state"
getent group berth >/dev/null || fail "remove deleted the group"
ok "binaries gone; agent.conf, drop-in, /var/lib/berth/state.db and group berth kept"

step "purge"
apt-get purge "${APT_OPTS[@]}" berth-agent </dev/null >"$W/apt-purge.log" 2>&1 ||
    { tail -30 "$W/apt-purge.log"; fail "apt-get purge"; }
apt-get autoremove --purge "${APT_OPTS[@]}" </dev/null >>"$W/apt-purge.log" 2>&1 ||
    { tail -30 "$W/apt-purge.log"; fail "apt-get autoremove --purge"; }
dpkg-query -W -f='${db:Status-Abbrev}' berth-agent 2>/dev/null | grep -q '^ii' &&
    fail "berth-agent still installed"
ok "purged $(grep -c "^Purging configuration files for" "$W/apt-purge.log") packages: berth-agent and what autoremove took"
for p in /etc/berth /var/lib/berth /run/berth; do
    [ -e "$p" ] && fail "$p is left"
done
ok "no /etc/berth, /var/lib/berth, /run/berth"
getent group berth >/dev/null && fail "group berth is left"
ok "no group berth"
# a path that is left must have been there before (/lib is a symlink to /usr/lib: resolve it)
left=$(while read -r f; do
    [ "$f" = /. ] || [ ! -e "$f" ] || grep -qxF "$(readlink -f "$f")" "$W/before.txt" || echo "$f"
done <"$W/files.txt")
[ -z "$left" ] || fail "files of the package left: $left"
ok "none of the package's $(wc -l <"$W/files.txt") paths is left"
# what apt brought with it, minus what autoremove took (Recommends of packages it keeps)
dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 ~ /^[ic]/ { print $NF }' | sort |
    comm -13 "$W/packages-before.txt" - >"$W/packages-extra.txt"
if [ -s "$W/packages-extra.txt" ]; then
    xargs -a "$W/packages-extra.txt" apt-get purge "${APT_OPTS[@]}" </dev/null \
        >>"$W/apt-purge.log" 2>&1 || { tail -30 "$W/apt-purge.log"; fail "apt-get purge"; }
    ok "purged what the install brought and autoremove kept: $(xargs <"$W/packages-extra.txt")"
fi
# shadow's tools keep a backup of /etc/gshadow when addgroup/delgroup rewrite it
snapshot | grep -Ev '^/etc/(passwd|group|shadow|gshadow)-$' >"$W/after.txt"
grep -Ev '^/etc/(passwd|group|shadow|gshadow)-$' "$W/before.txt" >"$W/before.cmp"
if ! diff -u "$W/before.cmp" "$W/after.txt"; then
    fail "the file tree differs from the one before the install (above)"
fi
ok "the file tree is the same as before the install ($(wc -l <"$W/after.txt") paths)"
echo "scenario passed"
