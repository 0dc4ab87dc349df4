#!/bin/bash
# tests/check-deps.sh - enforce STYLE.md's "may include" table by grepping includes.
set -u
rc=0
allow() { # folder allowed-project-folders...
    local dir=$1; shift
    local pat; pat=$(printf '%s|' "$@"); pat=${pat%|}
    while IFS= read -r line; do
        echo "check-deps: $line: $dir/ may include only: $*" >&2; rc=1
    done < <(grep -nE '#include "' "$dir"/*.[ch] 2>/dev/null | grep -vE "#include \"($pat)/")
}
allow common common
allow config common config
allow isolator common isolator
allow executor common isolator executor
allow masterlink common masterlink
allow agentd common config isolator masterlink agentd
allow cli common cli
allow master common config masterlink master
exit $rc
