#!/usr/bin/env bash
# Run one fuzz target for a number of executions and print the count and the outcome.
#   fuzz/run.sh TARGET RUNS [extra libFuzzer flags, e.g. -max_total_time=600]
# New inputs go to fuzz/corpus-work/TARGET (ignored by git); fuzz/corpus/TARGET is read as
# seeds only. Crashes land in fuzz/artifacts/TARGET/. Set CARGO_TARGET_DIR to build elsewhere.
# SANITIZER=none runs without ASan (about ten times the executions a second; libFuzzer's
# -malloc_limit_mb then has no malloc hooks to work with, -rss_limit_mb still holds).
set -uo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET RUNS [libFuzzer flags...]" >&2
    exit 2
fi
target=$1 runs=$2
shift 2
cd "$(dirname "$0")"
mkdir -p "corpus-work/$target" "artifacts/$target"
log=$(mktemp)
nice -n 19 cargo +nightly fuzz run --sanitizer "${SANITIZER:-address}" "$target" "corpus-work/$target" "corpus/$target" -- \
    -runs="$runs" -max_len=8192 -timeout=2 -rss_limit_mb=512 -malloc_limit_mb=256 \
    -print_final_stats=1 "$@" 2>&1 | tee "$log" | grep -E "^(#[0-9]+ +(INITED|DONE)|Done |==[0-9]+== ERROR|SUMMARY|stat::)"
status=${PIPESTATUS[0]}
execs=$(grep -oE "^Done [0-9]+ runs" "$log" | tail -1 | grep -oE "[0-9]+")
execs=${execs:-$(grep -oE "^stat::number_of_executed_units: *[0-9]+" "$log" | tail -1 | grep -oE "[0-9]+$")}
if [ "$status" -eq 0 ]; then
    echo "$target: OK, ${execs:-?} executions"
else
    echo "$target: FAILED (exit $status) after ${execs:-?} executions; full log: $log"
    grep -E "^(artifact_prefix|Test unit written|thread '.*' panicked)" "$log" || true
    exit "$status"
fi
rm -f "$log"
