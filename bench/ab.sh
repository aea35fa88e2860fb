#!/usr/bin/env bash
# Two warren binaries, A and B, on compare.sh's throughput and latency rows, interleaved
# (A, B, A, B, ... a fresh broker for every run, the same generator: B's `warren perf`), for
# PASSES passes: every run and the median of each, and B/A. For "did this change cost
# anything": build the old commit somewhere, then
#
#   git worktree add /tmp/old OLD_COMMIT && (cd /tmp/old && cargo build --release)
#   A=/tmp/old/target/release/warren bench/ab.sh          # B: this checkout's release build
#
# ONLY=fanout PASSES=7: only the rows whose name contains "fanout", seven passes.
#
# A benchmark, not a test: run it by hand, on an otherwise idle machine. Loopback only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PASSES="${PASSES:-3}"
DURATION="${DURATION:-5s}"
WARMUP="${WARMUP:-1s}"
PORT="${PORT:-5688}"
BUILD="${BUILD:-1}"
: "${A:?set A to the other warren binary}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
warren_release_bin
B="${B:-$BIN}"
OUT="${OUT:-target/bench}"
mkdir -p "$OUT"
RESULTS="$OUT/ab.jsonl"
: > "$RESULTS"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/warren-ab.XXXXXX")"
URL="amqp://guest:guest@127.0.0.1:$PORT/%2f"
PID=""
stop() { [ -z "$PID" ] || { kill "$PID" 2> /dev/null || true; wait "$PID" 2> /dev/null || true; PID=""; }; }
trap 'stop; rm -rf "$DATA"' EXIT
start() { # binary
    find "$DATA" -mindepth 1 -delete
    WARREN_NO_CHAT=true WARREN_LOG=warn "$1" --amqp-bind "127.0.0.1:$PORT" --data-dir "$DATA" >> "$OUT/ab-warren.log" 2>&1 &
    PID=$!
    for _ in $(seq 500); do ss -ltnH "sport = :$PORT" | grep -q . && break; sleep 0.01; done
    sleep 1
}
ROWS=()
for row in "${BENCH_ROWS[@]}"; do # ONLY=fanout: the rows whose name contains it
    [[ -z "${ONLY:-}" || "$row" == *"${ONLY}"*"|"*"|"*"|"* ]] && ROWS+=("$row")
done
for pass in $(seq "$PASSES"); do
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name scenario metric flags <<< "$row"
        for side in A B; do
            if [ $side = A ]; then bin=$A; else bin=$B; fi
            start "$bin"
            # shellcheck disable=SC2086 # $flags is a list of flags, split on purpose
            if json=$(timeout 300 "$B" perf "$scenario" --uri "$URL" --duration "$DURATION" --warmup "$WARMUP" --broker-pid "$PID" --json $flags); then
                value=$(echo "$json" | python3 -c "import json,sys; print(json.load(sys.stdin)['$metric'])")
                echo "{\"side\": \"$side\", \"row\": \"$name\", \"pass\": $pass, \"value\": $value}" >> "$RESULTS"
                echo "pass $pass  $side  $name: $value" >&2
            else
                echo "pass $pass  $side  $name: FAILED" >&2
            fi
            stop
        done
    done
done
echo "A: $A"
echo "B: $B ($(git rev-parse --short HEAD))"
python3 - "$RESULTS" "$(printf '%s\n' "${ROWS[@]}")" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
print(f"| row | A runs (median) | B runs (median) | B/A |\n|---|---|---|---|")
for line in sys.argv[2].splitlines():
    name = line.split("|")[0]
    runs = {s: [r["value"] for r in recs if r["row"] == name and r["side"] == s] for s in "AB"}
    if not runs["A"] or not runs["B"]:
        continue
    med = {s: statistics.median(v) for s, v in runs.items()}
    fmt = lambda v: f"{v:,.0f}"
    cells = {s: ", ".join(fmt(v) for v in runs[s]) + f" ({fmt(med[s])})" for s in "AB"}
    print(f"| {name} | {cells['A']} | {cells['B']} | {med['B'] / med['A']:.2f} |")
PY
# the run joins the repository's history (bench/trend.py ROW prints a row across commits)
[ "${KEEP:-1}" = 0 ] || python3 bench/keep.py ab "$RESULTS" --setting "A=$A" --setting "B=$B" --setting "PASSES=$PASSES" --setting "DURATION=$DURATION"
