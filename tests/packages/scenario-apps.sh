# SPDX-License-Identifier: Apache-2.0
# tests/packages/scenario-apps.sh - berth-apps' part of the install test, sourced by
# scenario.sh (its helpers: step, ok, fail, expect_eq, field, in_sd, in_net, ctlm, wait_task)
# once the
# master runs under the root's systemd and the installed agent is registered with it. As an
# operator: apt install APPS_DEB (postinst makes the user and the API token, enables the
# unit, whose start is skipped until the master token exists), make the master token with
# `berthctl --master URL token create --rights submit` (docs/install.md), start the unit and
# check the running daemon's sandbox in the kernel's files, deploy an app with
# `berthctl --apps`, upgrade to APPS_UP_DEB with the instance running (conffile kept, the
# unit restarted, the same instance adopted, none added), rm the app, remove and purge.
# shellcheck shell=bash

APPS_LISTEN=127.0.0.1:5070 # the packaged apps.conf's listen (plain HTTP on loopback)
# ctla ARGS: the installed berthctl talking to berth-apps (in systemd's network namespace)
ctla() {
    in_net berthctl --apps "http://$APPS_LISTEN" --token-file /etc/berth/apps.token "$@"
}
# apps_tasks: "ID STATE" of each instance of app pkgtest-app
apps_tasks() { ctla app tasks pkgtest-app | awk 'NR > 1 { print $1, $4 }'; }
# wait_apps_running N: until app pkgtest-app has N instances, all RUNNING (berth-apps may
# hold offers back for up to 30 s while it has nothing to launch)
wait_apps_running() {
    local rows=
    for _ in $(seq 600); do
        rows=$(apps_tasks 2>/dev/null || true)
        if [ -n "$rows" ] && [ "$(grep -c . <<<"$rows")" = "$1" ] &&
            ! grep -qv ' RUNNING$' <<<"$rows"; then
            return
        fi
        sleep 0.1
    done
    fail "app pkgtest-app: '$rows', want $1 RUNNING"
}

step "berth-apps: apt install $(basename "$APPS_DEB") under systemd"
in_sd apt-get install "${APT_OPTS[@]}" "$W/$(basename "$APPS_DEB")" </dev/null \
    >"$W/apt-apps.log" 2>&1 || { tail -30 "$W/apt-apps.log"; fail "apt-get install berth-apps"; }
expect_eq "$(dpkg-query -W -f='${db:Status-Abbrev}' berth-apps)" "ii " "dpkg status"
IFS=: read -r _ _ AUID AGID _ AHOME ASHELL < <(getent passwd berth-apps) ||
    fail "no user berth-apps"
[ "$AUID" -lt 1000 ] || fail "berth-apps is not a system user (uid $AUID)"
expect_eq "$(getent group berth-apps | cut -d: -f3)" "$AGID" "group berth-apps: the user's"
expect_eq "$AHOME $ASHELL" "/var/lib/berth-apps /usr/sbin/nologin" "home and shell"
dpkg-query -W -f='${Conffiles}\n' berth-apps | grep -q '^ /etc/berth/apps.conf ' ||
    fail "/etc/berth/apps.conf is not a conffile"
expect_eq "$(grep -E '^[a-z_]+ *=' /etc/berth/apps.conf | xargs)" \
    "token_file = /etc/berth/apps.token plain_http = true master_ca = /etc/berth/tls/ca.crt master_token_file = /etc/berth/apps-master.token" \
    "the keys the packaged apps.conf sets"
expect_eq "$(stat -c '%U:%G %a' /etc/berth/apps.token)" "root:berth-apps 640" \
    "berth-apps-init: the API token"
[ -L /etc/systemd/system/multi-user.target.wants/berth-apps.service ] ||
    fail "berth-apps.service was not enabled"
# its start was skipped, not failed: no master token yet (ConditionPathExists)
expect_eq "$(in_sd systemctl is-active berth-apps || true)" inactive "berth-apps.service before the master token"
expect_eq "$(in_sd systemctl show -P ConditionResult berth-apps)" no "its start condition"

step "the operator makes berth-apps' master token (submit rights) and starts it"
(umask 077 && ctlm token create --rights submit --role '*' --name berth-apps \
    >/etc/berth/apps-master.token 2>/dev/null) || fail "berthctl --master token create"
chown root:berth-apps /etc/berth/apps-master.token
chmod 0640 /etc/berth/apps-master.token
in_sd systemctl start berth-apps
# Type=notify: active once berth-apps said READY=1
expect_eq "$(in_sd systemctl is-active berth-apps)" active "berth-apps.service"
APID=$(in_sd systemctl show -P MainPID berth-apps)
AST=$(in_sd cat "/proc/$APID/status")
expect_eq "$(field Uid "$AST" | awk '{ print $1, $2, $3, $4 }')" "$AUID $AUID $AUID $AUID" "Uid (berth-apps)"
expect_eq "$(field CapEff "$AST")" 0000000000000000 "CapEff"
expect_eq "$(field NoNewPrivs "$AST")" 1 "NoNewPrivs"
expect_eq "$(field Seccomp "$AST")" 2 "Seccomp (filter)"
AMI=$(in_sd cat "/proc/$APID/mountinfo")
amopts() { awk -v p="$1" '$5 == p { o = $6 } END { print o }' <<<"$AMI"; }
case ,$(amopts /), in *,ro,*) ok "/ is read-only for berth-apps" ;;
    *) fail "/ is mounted '$(amopts /)' for berth-apps" ;; esac
case ,$(amopts /var/lib/berth-apps), in *,rw,*) ok "/var/lib/berth-apps is writable" ;;
    *) fail "/var/lib/berth-apps is '$(amopts /var/lib/berth-apps)'" ;; esac
expect_eq "$(stat -c '%U:%G %a' /var/lib/berth-apps /var/lib/berth-apps/apps.db | xargs)" \
    "berth-apps:berth-apps 700 berth-apps:berth-apps 600" "state dir and apps.db"

step "berthctl --apps: deploy an app of one instance on the agent"
printf '{"id": "pkgtest-app", "command": "exec sleep 100000", "instances": 1, "cpus": 0.1, "mem": "32MiB"}\n' \
    >"$W/app.json"
ctla app deploy "$W/app.json" >/dev/null || fail "berthctl --apps app deploy"
wait_apps_running 1
ATASK=$(apps_tasks | awk '{ print $1 }')
ctla app ls | grep -q '^pkgtest-app ' || fail "app ls does not list pkgtest-app: $(ctla app ls)"
ok "instance $ATASK RUNNING"

step "upgrade berth-apps to $(basename "$APPS_UP_DEB") with the instance running"
sed -i 's/^#log_level = .*/log_level = warning/' /etc/berth/apps.conf
cp /etc/berth/apps.conf "$W/apps.conf.edited"
in_sd apt-get install "${APT_OPTS[@]}" "$W/$(basename "$APPS_UP_DEB")" </dev/null \
    >"$W/apt-apps-upgrade.log" 2>&1 ||
    { tail -30 "$W/apt-apps-upgrade.log"; fail "apt-get install (berth-apps upgrade)"; }
A_UP_VERSION=$(dpkg-deb -f "$W/$(basename "$APPS_UP_DEB")" Version)
grep -q "Unpacking berth-apps ($A_UP_VERSION) over" "$W/apt-apps-upgrade.log" ||
    fail "not an upgrade"
cmp -s /etc/berth/apps.conf "$W/apps.conf.edited" || fail "the edited apps.conf was changed"
ls /etc/berth/apps.conf.dpkg-* 2>/dev/null && fail "dpkg left a new conffile beside it"
expect_eq "$(in_sd systemctl is-active berth-apps)" active "berth-apps.service after the upgrade"
[ "$(in_sd systemctl show -P MainPID berth-apps)" != "$APID" ] || fail "postinst did not restart it"
expect_eq "$(berth-apps --version)" "berth-apps ${A_UP_VERSION%-*}" "berth-apps --version"
wait_apps_running 1
expect_eq "$(apps_tasks | awk '{ print $1 }')" "$ATASK" "the instance, adopted again (none added)"

step "rm the app; remove and purge berth-apps"
ctla app rm pkgtest-app >/dev/null || fail "berthctl --apps app rm"
wait_task "$ATASK" KILLED
ok "the instance KILLED at the master"
in_sd apt-get remove "${APT_OPTS[@]}" berth-apps </dev/null >"$W/apt-apps-remove.log" 2>&1 ||
    { tail -30 "$W/apt-apps-remove.log"; fail "apt-get remove berth-apps"; }
expect_eq "$(in_sd systemctl is-active berth-apps || true)" inactive "berth-apps.service (prerm stopped it)"
[ -f /var/lib/berth-apps/apps.db ] || fail "remove deleted apps.db"
getent passwd berth-apps >/dev/null || fail "remove deleted the user"
in_sd apt-get purge "${APT_OPTS[@]}" berth-apps </dev/null >"$W/apt-apps-purge.log" 2>&1 ||
    { tail -30 "$W/apt-apps-purge.log"; fail "apt-get purge berth-apps"; }
for p in /var/lib/berth-apps /etc/berth/apps.conf /etc/berth/apps.token \
    /etc/systemd/system/multi-user.target.wants/berth-apps.service; do
    [ -e "$p" ] && fail "$p is left"
done
getent passwd berth-apps >/dev/null && fail "user berth-apps is left"
getent group berth-apps >/dev/null && fail "group berth-apps is left"
# the master token is the operator's file: purge leaves it, the operator removes it
[ -f /etc/berth/apps-master.token ] || fail "purge deleted the operator's master token"
rm -f /etc/berth/apps-master.token
ok "removed (state and user kept), then purged: no state, conffile, token, user or group left"
