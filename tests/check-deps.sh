#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/check-deps.sh - the layering rules `make check-deps` enforces, by grepping the
# sources (STYLE.md §3, issue #13). Each violation is printed as file:line.
#  1. includes: each folder includes only what STYLE.md's "may include" table allows;
#  2. storage never calls up: agentd/store.c and master/store.c call no function that
#     another .c file of their own folder defines (they get what they need as parameters
#     or callbacks; lifecycle, link, tasks and agents call them, never the other way);
#  3. one table of API codes: an API error code's name (the names in common/apicode.c's
#     table) appears as a string literal in no C file of the product but common/apicode.c;
#  4. files with one job: no tracked C, Python or shell source is over 600 lines (issue #13);
#  5. the license: every tracked C, header, Python and shell source, the Makefile and the
#     package scripts say `SPDX-License-Identifier: Apache-2.0` near their top (issue #19).
set -u
cd "$(dirname "$0")/.."
rc=0
SRC_DIRS=(common config isolator executor masterlink agentd cli master sched examples sse apps evcurl lb)

# ---- 1. includes ---------------------------------------------------------------------------
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
allow agentd common config isolator masterlink agentd evcurl
allow cli common cli
allow master common config masterlink master sse
# issue #17: the Server-Sent Events hub of the evhttp daemons (libevent; common/ stays without)
allow sse common sse
# issue #14: the scheduler library and the example framework built on it (docs/design.md)
allow sched common masterlink sched evcurl
allow examples common masterlink sched
# issue #16/#17: berth-apps, a framework on the library, with the events hub
allow apps common config masterlink sched sse apps
allow lb common config evcurl lb
# libcurl's multi interface in a libevent loop, for the agent's link, the library and berth-lb
allow evcurl evcurl

# strip FILE [strings]: the C text of FILE with its comments blanked (line numbers kept);
# with "strings", string and character literals become "" too.
strip() {
    STRIP_STRINGS=${2:-} perl -0777 -pe '
        my $blank_str = $ENV{STRIP_STRINGS} eq "strings";
        s{(/\*.*?\*/)|(//[^\n]*)|("(?:\\.|[^"\\\n])*")|(\x27(?:\\.|[^\x27\\\n])*\x27)}{
            defined $1 ? "\n" x ($1 =~ tr/\n//)
            : defined $2 ? ""
            : $blank_str ? (defined $3 ? "\"\"" : "\x27\x27")
            : $&
        }gse' "$1"
}

# ---- 2. storage never calls up -------------------------------------------------------------
# Functions a file defines: a line at column 0 that starts with a lower-case word (the return
# type: "int", "static", "struct", "void"), holds no '=' or ';' before the name, and names
# the function right before its first '('. Static ones of other files are left out: store.c
# cannot call them, and a same-named static there is its own.
defined_in() { # file [extern]
    strip "$1" strings | grep -E '^[a-z][^=;(]*\b[A-Za-z_][A-Za-z0-9_]*\(' |
        { if [ "${2:-}" = extern ]; then grep -vE '^static\b'; else cat; fi; } |
        sed -E 's/^([^(]*[^A-Za-z0-9_(])?([A-Za-z_][A-Za-z0-9_]*)\(.*/\2/' | sort -u
}
C_WORDS='^(if|for|while|switch|return|sizeof|_Alignof|alignof|_Static_assert|do|else|case|defined|__attribute__|typeof|__typeof__|offsetof|va_arg)$'
storage() { # store-file
    local file=$1 dir f fn
    dir=$(dirname "$1")
    local -A own=() where=()
    for fn in $(defined_in "$file"); do own[$fn]=1; done
    for f in "$dir"/*.c; do
        [ "$f" = "$file" ] && continue
        for fn in $(defined_in "$f" extern); do
            [[ -n ${own[$fn]:-} || $fn =~ $C_WORDS ]] || where[$fn]=$f
        done
    done
    [ ${#where[@]} -gt 0 ] || return 0
    local pat; pat=$(printf '%s|' "${!where[@]}"); pat=${pat%|}
    while IFS=: read -r n text; do
        for fn in $(grep -oE "\b($pat)[[:space:]]*\(" <<<"$text" | sed -E 's/[[:space:]]*\($//' |
                    sort -u); do
            echo "check-deps: $file:$n: calls $fn() of ${where[$fn]}: storage must not call up" \
                 "(take it as a parameter or a callback)" >&2
            rc=1
        done
    done < <(strip "$file" strings | grep -nE "\b($pat)[[:space:]]*\(")
}
storage agentd/store.c
storage master/store.c

# ---- 3. API code names only in common/apicode.c ---------------------------------------------
codes=$(grep -oE '^\s*\[BERR_[A-Z_]+\] = \{"[A-Z_]+"' common/apicode.c | sed -E 's/.*\{"//; s/"$//')
if [ -z "$codes" ]; then
    echo "check-deps: common/apicode.c: no table of API codes found" >&2
    exit 1
fi
pat=$(printf '%s|' $codes); pat=${pat%|}
# A reason is another contract (docs/api.md) that shares one word with a code: masterlink's
# table of reasons may spell it, on exactly that line.
REASON_LINE='^\s*\[ML_REASON_INSUFFICIENT_RESOURCES\] = "INSUFFICIENT_RESOURCES",?\s*$'
for f in $(for d in "${SRC_DIRS[@]}"; do ls "$d"/*.[ch] 2>/dev/null; done); do
    [ "$f" = common/apicode.c ] && continue
    while IFS=: read -r n text; do
        if [ "$f" = masterlink/codec.c ] && grep -qE "$REASON_LINE" <<<"$text"; then
            continue
        fi
        code=$(grep -oE "\\\\?\"($pat)\\\\?\"" <<<"$text" | head -1 | tr -d '\\"')
        echo "check-deps: $f:$n: API code \"$code\" spelled out: use enum berr_code" \
             "(common/apicode.c holds the names)" >&2
        rc=1
    done < <(strip "$f" | grep -nE "\\\\?\"($pat)\\\\?\"")
done
# ---- 4. no source file over 600 lines ------------------------------------------------------
while read -r n f; do
    [ "$f" = total ] && continue
    if [ "$n" -gt 600 ]; then
        echo "check-deps: $f: $n lines (at most 600: split it by job)" >&2
        rc=1
    fi
done < <(git ls-files '*.c' '*.h' '*.py' '*.sh' | xargs wc -l)

# ---- 5. an SPDX line in every source -------------------------------------------------------
while read -r f; do
    [ -f "$f" ] || continue
    head -c 400 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0' && continue
    echo "check-deps: $f: no 'SPDX-License-Identifier: Apache-2.0' line at its top" >&2
    rc=1
done < <(git ls-files '*.c' '*.h' '*.py' '*.sh' Makefile .ci/run 'packaging/berth-*' \
    'packaging/deb/*.post*' 'packaging/deb/*.pre*' | grep -v '\.service$')
exit $rc
