#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# packaging/gen-conf.sh DAEMON > FILE - writes a packaged config file, /etc/berth/agent.conf
# (DAEMON = .../berth-agent), /etc/berth/master.conf (.../berth-master) or
# /etc/berth/apps.conf (.../berth-apps) or /etc/berth/lb.conf (.../berth-lb): the daemon's own annotated defaults
# (--print-default-config: the C strings cfg_default_text, master_default_config and
# apps_default_config) with every key commented out with '#', so the file documents each
# key at its default and an upgrade that changes a default changes it for untouched keys too;
# master.conf sets the paths of the TLS certificate and tokens berth-master-init makes,
# apps.conf the tokens (berth-apps-init's, and the master's the operator makes), the
# master's CA and plain HTTP on its loopback address.
# tests/packages/test_packages_docs.py checks them against docs/config.md and docs/apps.md.
set -eu
case "$(basename "$1")" in
berth-agent)
    note="; Every key is shown at its built-in default, commented out with #: remove the #
; to set it. Prefer a drop-in (/etc/berth/agent.conf.d/50-site.conf) for local
; settings; berth-agent --print-default-config prints the defaults of the
; installed version." ;;
berth-master)
    note="; Every key is shown at its built-in default, commented out with #: remove the #
; to set it (systemctl restart berth-master applies it). berth-master
; --print-default-config prints the defaults of the installed version. The package
; sets the four keys of the files its postinst makes (berth-master-init): the admin
; and join tokens and the TLS certificate and key." ;;
berth-apps)
    note="; Every key is shown at its built-in default, commented out with #: remove the #
; to set it (systemctl restart berth-apps applies it). berth-apps
; --print-default-config prints the defaults of the installed version. The package
; sets four keys: the API token its postinst makes (berth-apps-init), the master
; token the operator makes (berthctl --master URL token create --rights submit
; --role '*' > /etc/berth/apps-master.token; docs/install.md), the CA of a master on
; this host (berth-master-init's), and plain HTTP, for the loopback listen address
; (set tls_cert and tls_key before listening on other addresses)." ;;
berth-lb)
    note="; Every key is shown at its built-in default, commented out with #: remove the #
; to set it (systemctl restart berth-lb applies it). berth-lb
; --print-default-config prints the defaults of the installed version. The package
; sets two keys: the token and URL of a berth-apps package on this host (its API
; token, /etc/berth/apps.token, and plain HTTP on its loopback address)." ;;
*)
    echo "gen-conf.sh: '$1' is neither berth-agent, berth-master, berth-apps nor berth-lb" >&2
    exit 2 ;;
esac
master=0 apps=0 lb=0
[ "$(basename "$1")" = berth-master ] && master=1
[ "$(basename "$1")" = berth-apps ] && apps=1
[ "$(basename "$1")" = berth-lb ] && lb=1
"$1" --print-default-config | awk -v note="$note" -v master="$master" -v apps="$apps" -v lb="$lb" '
    !noted && /^$/ {
        print ";"
        print note
        noted = 1
    }
    /^token_file =/ && apps { print "token_file = /etc/berth/apps.token"; next }
    /^master_token_file =/ && apps { print "master_token_file = /etc/berth/apps-master.token"; next }
    /^master_ca =/ && apps { print "master_ca = /etc/berth/tls/ca.crt"; next }
    /^plain_http =/ && apps { print "plain_http = true"; next }
    /^token_file =/ && lb { print "token_file = /etc/berth/apps.token"; next }
    /^apps =/ && lb { print "apps = http://127.0.0.1:5070"; next }
    /^token_file =/ && master { print "token_file = /etc/berth/master.token"; next }
    /^join_token_file =/ && master { print "join_token_file = /etc/berth/join.token"; next }
    /^tls_cert =/ && master { print "tls_cert = /etc/berth/tls/master.crt"; next }
    /^tls_key =/ && master { print "tls_key = /etc/berth/tls/master.key"; next }
    /^[a-z_]+ =/ { print "#" $0; next }
    { print }
'
