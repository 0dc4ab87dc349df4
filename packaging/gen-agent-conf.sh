#!/bin/sh
# packaging/gen-agent-conf.sh BERTH_AGENT > agent.conf - writes the packaged
# /etc/berth/agent.conf: the agent's own annotated defaults (--print-default-config, the C
# string cfg_default_text) with every key commented out with '#', so the file documents each
# key at its default and an upgrade that changes a default changes it for untouched keys too.
# tests/packages/check-static.sh checks it against docs/config.md.
set -eu
"$1" --print-default-config | awk '
    !noted && /^$/ {
        print ";"
        print "; Every key is shown at its built-in default, commented out with #: remove the #"
        print "; to set it. Prefer a drop-in (/etc/berth/agent.conf.d/50-site.conf) for local"
        print "; settings; berth-agent --print-default-config prints the defaults of the"
        print "; installed version."
        noted = 1
    }
    /^[a-z_]+ =/ { print "#" $0; next }
    { print }
'
