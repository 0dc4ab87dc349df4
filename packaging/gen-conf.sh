#!/bin/sh
# packaging/gen-conf.sh DAEMON > FILE - writes a packaged config file, /etc/berth/agent.conf
# (DAEMON = .../berth-agent) or /etc/berth/master.conf (.../berth-master): the daemon's own
# annotated defaults (--print-default-config: the C strings cfg_default_text and
# master_default_config) with every key commented out with '#', so the file documents each
# key at its default and an upgrade that changes a default changes it for untouched keys too.
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
; --print-default-config prints the defaults of the installed version." ;;
*)
    echo "gen-conf.sh: '$1' is neither berth-agent nor berth-master" >&2
    exit 2 ;;
esac
"$1" --print-default-config | awk -v note="$note" '
    !noted && /^$/ {
        print ";"
        print note
        noted = 1
    }
    /^[a-z_]+ =/ { print "#" $0; next }
    { print }
'
