#!/usr/bin/env bash
# warren against RabbitMQ, side by side: same generator (`warren perf`), same machine, one
# sitting. Every row runs interleaved (warren, RabbitMQ, warren, RabbitMQ, ...) for PASSES
# passes; the table shows medians and the ratio warren / RabbitMQ, each broker's CPU and RSS
# on that row, then idle RSS, RSS under load and with N connections, and start-up time.
# A benchmark, not a test: run it by hand, on an otherwise idle machine. Loopback only.
#
#   bench/compare.sh                      # DURATION=5s PASSES=3 CONNECTIONS=10000
#   BUILD=0 BIN=path/to/warren bench/compare.sh   # skip the cargo build
#   STARTUP=0 bench/compare.sh            # no start-up timing (spawn and wait for the port)
#
# RabbitMQ: a private node of Debian's rabbitmq-server (installed if missing) named
# warren-bench@localhost on 127.0.0.1:$RABBIT_PORT with its own state dir, started and
# stopped by this script (conformance/rabbitmq.sh does the work). Must run as root for that.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${DURATION:-5s}"
WARMUP="${WARMUP:-1s}"
PASSES="${PASSES:-3}"
CONNECTIONS="${CONNECTIONS:-10000}"
WARREN_PORT="${WARREN_PORT:-5674}"
RABBIT_PORT="${RABBIT_PORT:-5675}"
OUT="${OUT:-target/bench}"
BUILD="${BUILD:-1}"
STARTUP="${STARTUP:-1}" # 0: start the brokers without timing their start-up
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# Both brokers and the generator inherit this: as many open files as the hard limit allows.
ulimit -n "$(ulimit -Hn)"

if [ "$BUILD" = 1 ]; then
    echo "building warren (release)..." >&2
    cargo build --release --locked -q -p warren
fi
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/warren}"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
[ -x "$BIN" ] || { echo "no warren binary at $BIN" >&2; exit 1; }

export WARREN_RABBIT_NODE="warren-bench@localhost"
export WARREN_RABBIT_DIR="${WARREN_RABBIT_DIR:-/tmp/warren-bench-rabbitmq}"
export RABBIT_PORT
RABBIT_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2f"
WARREN_URL="amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2> /dev/null || echo 0; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

WARREN_PID=""
cleanup() {
    if [ -n "$WARREN_PID" ]; then kill "$WARREN_PID" 2> /dev/null || true; fi
    conformance/rabbitmq.sh stop > /dev/null 2>&1 || true
}
trap cleanup EXIT

RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
record() { # broker row json
    echo "{\"broker\": \"$1\", \"row\": \"$2\", \"report\": $3}" >> "$RESULTS"
}

# ---- start-up time and idle RSS -------------------------------------------------------------
# warren: spawned PASSES times (the last one stays up for the matrix).
for pass in $(seq "$PASSES"); do
    [ -n "$WARREN_PID" ] && { kill "$WARREN_PID"; wait "$WARREN_PID" 2> /dev/null || true; sleep 0.2; }
    if [ "$STARTUP" = 1 ]; then
        json=$("$BIN" perf startup --uri "$WARREN_URL" --broker-log "$OUT/warren.log" --settle 1s --json -- \
            env WARREN_AMQP_BIND="127.0.0.1:$WARREN_PORT" WARREN_LOG=warn "$BIN")
        WARREN_PID=$(echo "$json" | json_field pid)
        record warren startup "$json"
        echo "warren: accepted AMQP after $(echo "$json" | json_field startup_ms) ms, idle RSS $(($(rss_kb "$WARREN_PID") / 1024)) MB" >&2
    else
        WARREN_AMQP_BIND="127.0.0.1:$WARREN_PORT" WARREN_LOG=warn "$BIN" > "$OUT/warren.log" 2>&1 &
        WARREN_PID=$!
        for _ in $(seq 500); do ss -ltnH "sport = :$WARREN_PORT" | grep -q . && break; sleep 0.01; done
        sleep 1
    fi
done

# RabbitMQ: once (it takes seconds); the time includes conformance/rabbitmq.sh's own checks.
conformance/rabbitmq.sh stop > /dev/null 2>&1 || true
if [ "$STARTUP" = 1 ]; then
    json=$("$BIN" perf startup --uri "$RABBIT_URL" --broker-log "$OUT/rabbitmq-start.log" --settle 0s --json -- \
        conformance/rabbitmq.sh start)
    record rabbitmq startup "$json"
    echo "rabbitmq: accepted AMQP after $(echo "$json" | json_field startup_ms) ms" >&2
else
    conformance/rabbitmq.sh start > /dev/null
fi
RABBIT_PID=$(ss -ltnpH "sport = :$RABBIT_PORT" | sed -nE 's/.*pid=([0-9]+).*/\1/p' | head -n1)
[ -n "$RABBIT_PID" ] || { echo "cannot find RabbitMQ's pid on port $RABBIT_PORT" >&2; exit 1; }
sleep 3 # let it finish booting (await_startup) before the idle sample
for b in warren rabbitmq; do
    if [ $b = warren ]; then pid=$WARREN_PID; else pid=$RABBIT_PID; fi
    record $b idle "{\"idle_rss_bytes\": $(($(rss_kb "$pid") * 1024))}"
done

# ---- the matrix -----------------------------------------------------------------------------
# name | scenario | metric | flags
ROWS=(
    "16 B transient, autoack, 1 pub 1 con (msg/s)|throughput|consumed_per_sec|--size 16"
    "1 KiB, manual ack, prefetch 100, ack every 10 (msg/s)|throughput|consumed_per_sec|--size 1024 --manual-ack --prefetch 100 --ack-every 10"
    "16 B fanout to 10 queues (deliveries/s)|fanout|consumed_per_sec|--queues 10 --size 16"
    "1 KiB persistent, durable queue, confirms window 1000 (confirmed/s)|throughput|confirmed_per_sec|--size 1024 --persistent --confirm 1000"
    "1 KiB transient, confirms window 1000 (confirmed/s)|throughput|confirmed_per_sec|--size 1024 --confirm 1000"
    "latency at 1000 msg/s, p99 (µs, lower is better)|latency|p99_us|--rate 1000"
    "queue declare/bind/delete (cycles/s)|churn|cycles_per_sec|"
    "$CONNECTIONS idle connections, RSS per connection (KB, lower is better)|connections|broker_rss_per_connection|--connections $CONNECTIONS --hold 3s"
)

for pass in $(seq "$PASSES"); do
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name scenario metric flags <<< "$row"
        for broker in warren rabbitmq; do
            if [ "$broker" = warren ]; then url=$WARREN_URL pid=$WARREN_PID; else url=$RABBIT_URL pid=$RABBIT_PID; fi
            case $scenario in
                connections) timing=() ;;
                *) timing=(--duration "$DURATION" --warmup "$WARMUP") ;;
            esac
            # shellcheck disable=SC2086 # $flags is a list of flags, split on purpose
            if json=$(timeout 300 "$BIN" perf "$scenario" --uri "$url" "${timing[@]}" --broker-pid "$pid" --json $flags); then
                record "$broker" "$name" "$json"
                echo "pass $pass  $broker  $name: $(echo "$json" | json_field "$metric")" >&2
            else
                echo "pass $pass  $broker  $name: FAILED" >&2
            fi
            # Let the broker release what the row left behind (queues, connections).
            if [ "$scenario" = connections ]; then sleep 5; else sleep 1; fi
        done
    done
done

# ---- the table ------------------------------------------------------------------------------
{
    echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n1)), \
$(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo), Linux $(uname -r), \
RabbitMQ $(cat "$WARREN_RABBIT_DIR/version" 2> /dev/null || echo '?'), warren $(git rev-parse --short HEAD 2> /dev/null || echo '?'); \
medians of $PASSES interleaved passes of $DURATION each."
    echo
    python3 - "$RESULTS" "$(printf '%s\n' "${ROWS[@]}")" << 'PY'
import json, statistics, sys
reports = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    reports.setdefault((r["row"], r["broker"]), []).append(r["report"])
rows = [l.split("|") for l in sys.argv[2].splitlines() if l]

def med(row, broker, key):
    vals = [x[key] for x in reports.get((row, broker), []) if x.get(key) is not None]
    return statistics.median(vals) if vals else None

def num(v, scale=1.0, fmt="{:,.0f}"):
    return "n/a" if v is None else fmt.format(v / scale)

print("| scenario | warren | RabbitMQ | warren / RabbitMQ | broker CPU (w / R) | broker RSS (w / R) | generator CPU (w / R) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, scenario, metric, _ in rows:
    w, q = med(name, "warren", metric), med(name, "rabbitmq", metric)
    scale = 1000.0 if metric == "broker_rss_per_connection" else 1.0
    ratio = "n/a" if not w or not q else f"{w / q:.2f}x"
    cpu = f"{num(med(name, 'warren', 'broker_cpu_percent'))}% / {num(med(name, 'rabbitmq', 'broker_cpu_percent'))}%"
    rss = f"{num(med(name, 'warren', 'broker_rss_bytes'), 1e6)} / {num(med(name, 'rabbitmq', 'broker_rss_bytes'), 1e6)} MB"
    gen = f"{num(med(name, 'warren', 'client_cpu_percent'))}% / {num(med(name, 'rabbitmq', 'client_cpu_percent'))}%"
    print(f"| {name} | {num(w, scale, '{:,.1f}' if scale > 1 else '{:,.0f}')} | {num(q, scale, '{:,.1f}' if scale > 1 else '{:,.0f}')} | {ratio} | {cpu} | {rss} | {gen} |")

def load_rss(broker):
    load_rows = {name for name, scenario, _, _ in rows if scenario != "connections"}
    vals = [x.get("broker_rss_bytes") for (row, b), xs in reports.items() if b == broker and row in load_rows for x in xs]
    vals = [v for v in vals if v]
    return max(vals) if vals else None

print()
print("| resources | warren | RabbitMQ |")
print("|---|---:|---:|")
print(f"| start-up: spawn to accepting AMQP (ms) | {num(med('startup', 'warren', 'startup_ms'), 1, '{:,.1f}')} | {num(med('startup', 'rabbitmq', 'startup_ms'), 1, '{:,.0f}')} |")
print(f"| idle RSS (MB) | {num(med('idle', 'warren', 'idle_rss_bytes'), 1e6, '{:,.1f}')} | {num(med('idle', 'rabbitmq', 'idle_rss_bytes'), 1e6, '{:,.1f}')} |")
print(f"| peak RSS under load, all rows but connections (MB) | {num(load_rss('warren'), 1e6)} | {num(load_rss('rabbitmq'), 1e6)} |")
conn = [r for r in rows if r[1] == "connections"]
if conn:
    name = conn[0][0]
    print(f"| RSS holding the idle connections (MB) | {num(med(name, 'warren', 'broker_rss_holding'), 1e6)} | {num(med(name, 'rabbitmq', 'broker_rss_holding'), 1e6)} |")
    print(f"| CPU holding the idle connections | {num(med(name, 'warren', 'broker_cpu_percent'), 1, '{:,.1f}')}% | {num(med(name, 'rabbitmq', 'broker_cpu_percent'), 1, '{:,.1f}')}% |")
    print(f"| connections opened per second | {num(med(name, 'warren', 'opened_per_sec'))} | {num(med(name, 'rabbitmq', 'opened_per_sec'))} |")
PY
} | tee "$OUT/table.md"
echo "raw reports: $RESULTS, table: $OUT/table.md" >&2
