#!/bin/sh
# tests/fuzz/run.sh - runs every built libFuzzer driver for a while.
#
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
# Each fuzz_<name> found in BUILD_DIR (tests/fuzz/ or the top) runs for SECONDS, all in parallel,
# on a temporary copy of tests/fuzz/corpus/<name>/ so the committed corpus is never polluted.
# Logs and crash artifacts go to BUILD_DIR/fuzz-out/<fuzzer>/ and are kept. Exits non-zero if
# any fuzzer crashed, leaked, timed out (-timeout=5) or ran out of memory, or none was found.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
src=$(cd "$(dirname "$0")" && pwd)
out=$build/fuzz-out
work=$(mktemp -d "${TMPDIR:-/tmp}/posthorn-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# UBSan only reports by default; make it abort so libFuzzer records the input.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

pids=""
names=""
for driver in "$src"/fuzz_*.c; do
    [ -e "$driver" ] || continue
    name=$(basename "$driver" .c)
    bin=""
    for cand in "$build/tests/fuzz/$name" "$build/$name"; do
        if [ -x "$cand" ]; then bin=$cand; break; fi
    done
    if [ -z "$bin" ]; then
        echo "fuzz: $name not built in $build, skipped" >&2
        continue
    fi
    corpus=$work/${name#fuzz_}
    mkdir -p "$corpus" "$out/$name"
    if [ -d "$src/corpus/${name#fuzz_}" ]; then
        cp -R "$src/corpus/${name#fuzz_}/." "$corpus/"
    fi
    "$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/$name/" "$corpus" >"$out/$name/log" 2>&1 &
    pids="$pids $!"
    names="$names $name"
done

if [ -z "$pids" ]; then
    echo "fuzz: no fuzzers found in $build (configure with -DPOSTHORN_FUZZ=ON)" >&2
    exit 1
fi

status=0
passed=0
failed=0
# shellcheck disable=SC2086 # names are fuzz_* identifiers: split on purpose
set -- $names
for pid in $pids; do
    name=$1
    shift
    if wait "$pid"; then
        execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$name/log")
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name/log")
        echo "fuzz: $name ok (${runs:-?} runs, ${execs:-?} exec/s)"
        passed=$((passed + 1))
    else
        status=1
        failed=$((failed + 1))
        echo "fuzz: $name FAILED; log and artifacts in $out/$name/" >&2
        grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$out/$name/log" >&2 || true
    fi
done
echo "fuzz: $passed passed, $failed failed"
exit $status
