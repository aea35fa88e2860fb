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

# shellcheck source=bench/lib.sh
. bench/lib.sh
warren_release_bin

export WARREN_RABBIT_NODE="warren-bench@localhost"
export WARREN_RABBIT_DIR="${WARREN_RABBIT_DIR:-/tmp/warren-bench-rabbitmq}"
export RABBIT_PORT
RABBIT_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2f"
WARREN_URL="amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2> /dev/null || echo 0; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# warren as a broker only (RabbitMQ runs no web chat either), on a data dir of its own: not
# the repo's ./warren-data, whose chat history would be loaded and counted.
WARREN_DATA="$(mktemp -d "${TMPDIR:-/tmp}/warren-bench.XXXXXX")"
export WARREN_NO_CHAT=true WARREN_DATA_DIR="$WARREN_DATA"

WARREN_PID=""
cleanup() {
    stop_warren
    conformance/rabbitmq.sh stop > /dev/null 2>&1 || true
    rm -rf "$WARREN_DATA"
}
trap cleanup EXIT

RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
record() { # broker row json
    echo "{\"broker\": \"$1\", \"row\": \"$2\", \"report\": $3}" >> "$RESULTS"
}

stop_warren() {
    if [ -n "$WARREN_PID" ]; then
        kill "$WARREN_PID" 2> /dev/null || true
        for _ in $(seq 100); do kill -0 "$WARREN_PID" 2> /dev/null || break; sleep 0.05; done
        WARREN_PID=""
    fi
}

start_warren_untimed() {
    WARREN_AMQP_BIND="127.0.0.1:$WARREN_PORT" WARREN_LOG=warn "$BIN" >> "$OUT/warren.log" 2>&1 &
    WARREN_PID=$!
    for _ in $(seq 500); do ss -ltnH "sport = :$WARREN_PORT" | grep -q . && break; sleep 0.01; done
    sleep 1
}

# ---- start-up time and idle RSS -------------------------------------------------------------
# warren: spawned PASSES times (the last one stays up for the matrix).
for pass in $(seq "$PASSES"); do
    stop_warren
    if [ "$STARTUP" = 1 ]; then
        json=$("$BIN" perf startup --uri "$WARREN_URL" --broker-log "$OUT/warren.log" --settle 1s --json -- \
            env WARREN_AMQP_BIND="127.0.0.1:$WARREN_PORT" WARREN_LOG=warn "$BIN")
        WARREN_PID=$(echo "$json" | json_field pid)
        record warren startup "$json"
        echo "warren: accepted AMQP after $(echo "$json" | json_field startup_ms) ms, idle RSS $(($(rss_kb "$WARREN_PID") / 1024)) MB" >&2
    else
        start_warren_untimed
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
    "${BENCH_ROWS[@]}"
    "$CONNECTIONS idle connections, RSS per connection (KB, lower is better)|connections|broker_rss_per_connection|--connections $CONNECTIONS --hold 3s"
)

for pass in $(seq "$PASSES"); do
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name scenario metric flags <<< "$row"
        if [ "$scenario" = connections ]; then
            # RSS per connection needs a fresh warren: after the load rows its heap is large
            # and free, and new connections would reuse it without growing the RSS. (RabbitMQ
            # is not restarted: it takes seconds, and its per-connection cost dwarfs the noise.)
            stop_warren
            start_warren_untimed
        fi
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
    python3 bench/table.py "$RESULTS" "$(printf '%s\n' "${ROWS[@]}")"
} | tee "$OUT/table.md"
echo "raw reports: $RESULTS, table: $OUT/table.md" >&2
# the run joins the repository's history (bench/trend.py ROW prints a row across commits)
[ "${KEEP:-1}" = 0 ] || python3 bench/keep.py compare "$RESULTS" --rows "$(printf '%s\n' "${ROWS[@]}")" \
    --setting "PASSES=$PASSES" --setting "DURATION=$DURATION" --setting "CONNECTIONS=$CONNECTIONS"
