#!/usr/bin/env bash
# Chat figures (release build), printed, never asserted: CLIENTS (default 1000) WebSocket
# clients in one room, one publisher at RATE (100) msg/s for SECS (10) after a 2 s warm-up;
# the p50/p99 delivery latency and the RSS per idle session (chat/ws_bench.rs), RUNS (3) times.
#
# Front ends compared side by side in one run: warren (embedded broker + chat, one process),
# and with RABBIT=1 the same chat front end on a private RabbitMQ node (`--amqp-url`).
#
#   bench/chat.sh                      # warren, 3 runs
#   RABBIT=1 RUNS=5 bench/chat.sh      # and the chat on RabbitMQ
#
# Data dirs are temporary and removed at exit. The bench client runs on this machine too: on
# 2 cores it takes most of one.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-1000}"
RATE="${RATE:-100}"
SECS="${SECS:-10}"
RUNS="${RUNS:-3}"
RABBIT="${RABBIT:-0}"
HTTP_PORT="${HTTP_PORT:-8093}"
AMQP_PORT="${AMQP_PORT:-5698}"
RABBIT_PORT="${RABBIT_PORT:-5699}"

echo "building warren and ws_bench (release)..." >&2
cargo build --release --locked -q -p warren --bin warren
cargo build --release --locked -q -p warren-chat --example ws_bench
TARGET="${CARGO_TARGET_DIR:-target}/release"
BIN="$TARGET/warren"
BENCH="$TARGET/examples/ws_bench"

DATA="$(mktemp -d)"
PID=""
stop_warren() {
    if [ -n "$PID" ]; then
        kill "$PID" 2> /dev/null || true
        wait "$PID" 2> /dev/null || true
        PID=""
    fi
}
cleanup() {
    stop_warren
    rm -rf "$DATA"
    if [ "$RABBIT" = 1 ]; then conformance/rabbitmq.sh stop > /dev/null 2>&1 || true; fi
}
trap cleanup EXIT
export WARREN_RABBIT_NODE="warren-chatbench@localhost"
export WARREN_RABBIT_DIR="${WARREN_RABBIT_DIR:-/tmp/warren-chatbench-rabbitmq}"
export RABBIT_PORT

# Start warren with the given arguments on a fresh data dir; wait for the chat.
start_warren() {
    rm -rf "$DATA" && mkdir -p "$DATA"
    # (the bench's thousand clients sign up and post from one address: above the chat's rate
    # limits, which are for people)
    "$BIN" --http-bind "127.0.0.1:$HTTP_PORT" --amqp-bind "127.0.0.1:$AMQP_PORT" --data-dir "$DATA" \
        --chat-rate-limit-factor 1000 "$@" \
        > "$DATA.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/" 2> /dev/null && return 0
        kill -0 "$PID" 2> /dev/null || { cat "$DATA.log"; echo "warren exited" >&2; exit 1; }
        sleep 0.2
    done
    cat "$DATA.log"
    echo "the chat did not start" >&2
    exit 1
}

# One line per run: the bench's figures for the front end named $1.
measure() {
    local name="$1"
    shift
    for run in $(seq 1 "$RUNS"); do
        start_warren "$@"
        out="$("$BENCH" "http://127.0.0.1:$HTTP_PORT" "$CLIENTS" "$RATE" "$SECS" "$PID")"
        stop_warren
        rss="$(sed -n 's/^RSS per idle session: \([0-9.]* KiB\).*/\1/p' <<< "$out")"
        cpu="$(sed -n 's/^CPU over the run .*: bench client \([0-9]*%\), chat server \([0-9]*%\)/client \1, server \2/p' <<< "$out")"
        lat="$(sed -n 's/.*deliveries, \(p50 .*\) (elapsed.*/\1/p' <<< "$out")"
        got="$(sed -n 's/.*warm-up: \([0-9]* of [0-9]*\) deliveries.*/\1/p' <<< "$out")"
        printf '%-20s run %d: %s, %s deliveries, RSS/idle session %s, CPU %s\n' "$name" "$run" "$lat" "$got" "$rss" "$cpu"
    done
}

echo "$CLIENTS clients in one room, $RATE msg/s for $SECS s after 2 s of warm-up, $RUNS runs each"
measure "warren (embedded)"
if [ "$RABBIT" = 1 ]; then
    RABBIT_URL="$(conformance/rabbitmq.sh start | tail -n 1)"
    echo "RabbitMQ $(conformance/rabbitmq.sh version) at $RABBIT_URL" >&2
    measure "chat on RabbitMQ" --amqp-url "$RABBIT_URL"
fi
