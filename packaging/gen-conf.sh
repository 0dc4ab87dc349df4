#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# packaging/gen-conf.sh DAEMON > FILE - writes a packaged config file, /etc/berth/agent.conf
# (DAEMON = .../berth-agent) or /etc/berth/master.conf (.../berth-master): the daemon's own
# annotated defaults (--print-default-config: the C strings cfg_default_text and
# master_default_config) with every key commented out with '#', so the file documents each
# key at its default and an upgrade that changes a default changes it for untouched keys too;
# master.conf sets the paths of the TLS certificate and tokens berth-master-init makes.
# tests/packages/test_packages.py checks both against docs/config.md.
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
*)
    echo "gen-conf.sh: '$1' is neither berth-agent nor berth-master" >&2
    exit 2 ;;
esac
master=0
[ "$(basename "$1")" = berth-master ] && master=1
"$1" --print-default-config | awk -v note="$note" -v master="$master" '
    !noted && /^$/ {
        print ";"
        print note
        noted = 1
    }
    /^token_file =/ && master { print "token_file = /etc/berth/master.token"; next }
    /^join_token_file =/ && master { print "join_token_file = /etc/berth/join.token"; next }
    /^tls_cert =/ && master { print "tls_cert = /etc/berth/tls/master.crt"; next }
    /^tls_key =/ && master { print "tls_key = /etc/berth/tls/master.key"; next }
    /^[a-z_]+ =/ { print "#" $0; next }
    { print }
'
