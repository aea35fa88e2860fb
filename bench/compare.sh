#!/usr/bin/env bash
# warren against RabbitMQ, side by side, same generator (`warren perf`), same machine, one
# sitting. Rows run interleaved (warren, RabbitMQ, warren, ...) for PASSES passes; the table
# shows medians and the ratio warren / RabbitMQ. A benchmark, not a test: run it by hand.
#
#   bench/compare.sh                 # DURATION=5s PASSES=3 by default
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${DURATION:-5s}"
PASSES="${PASSES:-3}"
RABBIT_PORT="${RABBIT_PORT:-5673}"
OUT="${OUT:-target/bench}"
mkdir -p "$OUT"

echo "building warren (release)..." >&2
cargo build --release --locked -q
BIN=target/release/warren

RABBIT_URL=$(RABBIT_PORT="$RABBIT_PORT" conformance/rabbitmq.sh start)
RABBIT_PID=$(ss -ltnpH "sport = :$RABBIT_PORT" | sed -nE 's/.*pid=([0-9]+).*/\1/p' | head -n1)
[ -n "$RABBIT_PID" ] || { echo "cannot find RabbitMQ's pid on port $RABBIT_PORT" >&2; exit 1; }

WARREN_LOG_FILE="$OUT/warren.log"
WARREN_AMQP_BIND=127.0.0.1:0 WARREN_LOG=info "$BIN" > "$WARREN_LOG_FILE" 2>&1 &
WARREN_PID=$!
trap 'kill $WARREN_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "AMQP listening on" "$WARREN_LOG_FILE" && break
    sleep 0.05
done
WARREN_ADDR=$(sed -nE 's/.*AMQP listening on ([0-9.:]+).*/\1/p' "$WARREN_LOG_FILE" | head -n1)
WARREN_URL="amqp://guest:guest@$WARREN_ADDR/%2f"

# name | metric | perf flags
ROWS=(
    "16 B transient, autoack, 1 pub 1 con|consumed_per_sec|--size 16"
    "1 KiB manual ack, prefetch 100|consumed_per_sec|--size 1024 --manual-ack --prefetch 100 --ack-every 10"
    "1 KiB transient, confirms window 1000|confirmed_per_sec|--size 1024 --confirm 1000"
)

RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
for pass in $(seq "$PASSES"); do
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name metric flags <<< "$row"
        for broker in warren rabbitmq; do
            if [ "$broker" = warren ]; then url=$WARREN_URL pid=$WARREN_PID; else url=$RABBIT_URL pid=$RABBIT_PID; fi
            # shellcheck disable=SC2086
            json=$("$BIN" perf throughput --uri "$url" --duration "$DURATION" --broker-pid "$pid" --json $flags)
            echo "{\"pass\": $pass, \"row\": \"$name\", \"metric\": \"$metric\", \"broker\": \"$broker\", \"report\": $json}" >> "$RESULTS"
            echo "pass $pass  $broker  $name: $(echo "$json" | python3 -c "import json,sys; print(round(json.load(sys.stdin)['$metric']))") msg/s" >&2
        done
    done
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["row"], {"metric": r["metric"], "warren": [], "rabbitmq": []})[r["broker"]].append(r["report"])
def med(reports, key):
    vals = [x[key] for x in reports if x.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")
print()
print("| scenario | warren msg/s | RabbitMQ msg/s | ratio | warren CPU | RabbitMQ CPU | warren RSS | RabbitMQ RSS |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name, r in rows.items():
    w, q = med(r["warren"], r["metric"]), med(r["rabbitmq"], r["metric"])
    print(f"| {name} | {w:,.0f} | {q:,.0f} | {w / q:.1f}x | {med(r['warren'], 'broker_cpu_percent'):.0f}% | "
          f"{med(r['rabbitmq'], 'broker_cpu_percent'):.0f}% | {med(r['warren'], 'broker_rss_bytes') / 1e6:.0f} MB | "
          f"{med(r['rabbitmq'], 'broker_rss_bytes') / 1e6:.0f} MB |")
PY
