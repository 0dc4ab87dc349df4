#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/fuzz/run.sh [--ci] BUILD SECONDS [TARGET...] - run the libFuzzer targets of a FUZZ=1
# build (BUILD/fuzz/fuzz_*), each for SECONDS, one after the other. Seeds come from
# tests/fuzz/corpus/TARGET (committed); what a run finds goes to BUILD/corpus/TARGET (kept
# between runs, not committed), crashes to BUILD/crashes/TARGET. Prints each target's final
# coverage line ("cov: N ft: M corp: K/S") and its total fuzzing time so far
# (BUILD/corpus/TARGET.seconds). --ci: the short bounded run of .ci/run; the seeds only
# (no corpus kept), and the same check: no crash, no leak, no sanitizer report.
set -euo pipefail
CI=0
if [ "${1:-}" = --ci ]; then CI=1; shift; fi
B=${1:?usage: run.sh [--ci] BUILD SECONDS [TARGET...]}
SECS=${2:?usage: run.sh [--ci] BUILD SECONDS [TARGET...]}
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$B"/fuzz/fuzz_*; do targets+=("$(basename "$f")"); done
fi
rc=0
for t in "${targets[@]}"; do
    seeds=$HERE/corpus/$t
    mkdir -p "$B/crashes/$t"
    if [ "$CI" = 1 ]; then
        work=$(mktemp -d /tmp/berth-fuzz-ci.XXXXXX)
    else
        work=$B/corpus/$t
        mkdir -p "$work"
    fi
    log=$B/crashes/$t.log
    t0=$(date +%s)
    # -rss_limit_mb: the daemons hold at most a few MiB per message; a leak or a blow-up shows
    # here. -max_len: the protocol's 1 MiB would slow mutation for nothing; 64 KiB covers
    # every structure. -timeout: a unit that runs 10 s is a hang.
    set +e
    "$B/fuzz/$t" -max_total_time="$SECS" -rss_limit_mb=1024 -max_len=65536 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$B/crashes/$t/" "$work" "$seeds" >"$log" 2>&1
    r=$?
    set -e
    took=$(($(date +%s) - t0))
    cov=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -1 | sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+/runs \1 /')
    if [ "$CI" = 0 ]; then
        total=$(( $(cat "$work.seconds" 2>/dev/null || echo 0) + took ))
        echo "$total" >"$work.seconds"
        printf '%-16s %5ss (%ss in all)  %s\n' "$t" "$took" "$total" "$cov"
    else
        rm -rf "$work"
        printf '%-16s %5ss  %s\n' "$t" "$took" "$cov"
    fi
    if [ $r -ne 0 ]; then
        echo "fuzz: $t FAILED (exit $r); log $log, artifacts in $B/crashes/$t:" >&2
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -20 >&2
        rc=1
    fi
done
exit $rc
