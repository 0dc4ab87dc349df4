#!/bin/bash
# tests/packages/scenario.sh DEB UP_DEB CGNAME - runs as root inside the fresh Debian 12 root
# that install-test.sh prepared (its own pid and mount namespaces), doing what an operator
# does: apt install the .deb, edit a reservation in /etc/berth/agent.conf, start the
# installed agent from the installed config, launch a task with the installed berthctl and
# check its limits in the kernel's files, use the installed bash completion, upgrade to
# UP_DEB with the task running, restart the agent (as postinst's restart would under
# systemd) and find the task re-adopted, then purge and compare the file tree with the one
# before. CGNAME is the cgroup_parent (berth-pkgtest-*, below our own cgroups: host safety).
# Only bash, coreutils, grep, sed, awk and apt: no python in a minimal root.
set -euo pipefail
DEB=$1
UP_DEB=$2
CGNAME=$3
W=/root/pkgtest
LOG=$W/agent.log
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
    exit 1
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
    # as the unit's ExecStart: no flags, the installed config
    /usr/sbin/berth-agent </dev/null >>"$LOG" 2>&1 &
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

check_task_limits() {
    local pid=$1
    if grep -q '^[0-9]*:[^:]*cpu[,:]' "/proc/$pid/cgroup"; then
        local quota period
        quota=$(cat "$(cgroup_file "$pid" cpu cpu.cfs_quota_us)")
        period=$(cat "$(cgroup_file "$pid" cpu cpu.cfs_period_us)")
        expect_eq "$((quota * 1000 / period))" 500 "cpu.cfs_quota_us/cfs_period_us x 1000 (--cpus 0.5)"
        expect_eq "$(cat "$(cgroup_file "$pid" cpu cpu.shares)")" 512 "cpu.shares"
        expect_eq "$(cat "$(cgroup_file "$pid" memory memory.limit_in_bytes)")" 67108864 \
            "memory.limit_in_bytes (--mem 64MiB)"
        case $(cgroup_file "$pid" memory memory.limit_in_bytes) in
            */"$CGNAME"/*) ok "the task's cgroup is below cgroup_parent '$CGNAME'" ;;
            *) fail "the task's memory cgroup is not below '$CGNAME'" ;;
        esac
    else
        local max
        max=$(cat "$(cgroup_file "$pid" cpu cpu.max)")
        expect_eq "$((${max% *} * 1000 / ${max#* }))" 500 "cpu.max quota/period x 1000"
        expect_eq "$(cat "$(cgroup_file "$pid" memory memory.max)")" 67108864 "memory.max"
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

step "apt-get update (Debian's archive)"
apt-get update -q >/dev/null
snapshot >"$W/before.txt"
dpkg-query -W -f='${Package}\n' | sort >"$W/packages-before.txt"
ok "$(wc -l <"$W/before.txt") paths and $(wc -l <"$W/packages-before.txt") packages before the install"

step "install $(basename "$DEB") with apt (dependencies from the archive)"
apt-get install "${APT_OPTS[@]}" "$W/$(basename "$DEB")" </dev/null >"$W/apt-install.log" 2>&1 ||
    { tail -30 "$W/apt-install.log"; fail "apt-get install"; }
expect_eq "$(dpkg-query -W -f='${db:Status-Abbrev}' berth-agent)" "ii " "dpkg status"
for dep in libevent-2.1-7 libsqlite3-0 libcurl4 libcgroup2 libseccomp2 libyajl2 libinih1 adduser; do
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
check_task_limits "$TASK_PID"

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
check_task_limits "$TASK_PID"

step "end the task, stop the agent"
berthctl kill --grace 1 pkgtest
rc=0
berthctl wait pkgtest 2>/dev/null || rc=$?
expect_eq "$rc" 143 "berthctl wait (SIGTERM)"
berthctl rm pkgtest
stop_agent

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
