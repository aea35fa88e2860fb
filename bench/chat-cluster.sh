#!/usr/bin/env bash
# The chat scaled out (figures, printed, never asserted): two chat front ends, each on another
# node of a three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh), CLIENTS (default 1000,
# 500 per front end) WebSocket clients in one room, publishers spread over both front ends at
# RATE (100) msg/s for SECS (20) after a 2 s warm-up; the p50/p99 delivery latency (send ->
# every client) and the deliveries lost (chat-web/examples/ws_bench.rs), RUNS (1) times.
#
#   bench/chat-cluster.sh                 # the cluster is started if needed and left running
#   DOWN=1 bench/chat-cluster.sh          # and stopped at the end
#
# WARREN_BIN and WS_BENCH name prebuilt binaries (no build then).
# Needs root (the cluster's nodes; see scripts/rabbitmq-cluster.sh). Release build. The bench
# client, both front ends and the three nodes share this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-1000}"
RATE="${RATE:-100}"
SECS="${SECS:-20}"
RUNS="${RUNS:-1}"
PORT_A="${PORT_A:-8095}"
PORT_B="${PORT_B:-8096}"

TARGET="${CARGO_TARGET_DIR:-target}/release"
BIN="${WARREN_BIN:-$TARGET/warren}"
BENCH="${WS_BENCH:-$TARGET/examples/ws_bench}"
if [ -z "${WARREN_BIN:-}" ]; then
    echo "building warren and ws_bench (release)..." >&2
    cargo build --release --locked -q -p warren --bin warren
    cargo build --release --locked -q -p warren-chat --example ws_bench
fi

scripts/rabbitmq-cluster.sh up > /dev/null
IFS=, read -r N1 N2 N3 <<< "$(scripts/rabbitmq-cluster.sh urls)"

PIDS=()
LOGS="$(mktemp -d)"
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
    rm -rf "$LOGS"
    if [ "${DOWN:-0}" = 1 ]; then scripts/rabbitmq-cluster.sh down > /dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# shellcheck source=scripts/chat-front-end.sh
. scripts/chat-front-end.sh
# (the bench's clients sign up and post from one address: above the limits meant for people)
FLAGS=(--management-bind 127.0.0.1:0 --prometheus-bind 127.0.0.1:0 --chat-rate-limit-factor 1000)
start_front_end "$PORT_A" "$N1,$N2,$N3" "${FLAGS[@]}"
start_front_end "$PORT_B" "$N2,$N3,$N1" "${FLAGS[@]}"
grep -h "chat connected to the broker" "$LOGS"/*.log | sed 's/.*node=/front end on /' >&2

echo "$CLIENTS clients ($((CLIENTS / 2)) per front end) in one room on a 3-node RabbitMQ cluster, $RATE msg/s for $SECS s after 2 s of warm-up"
for run in $(seq 1 "$RUNS"); do
    out="$("$BENCH" "http://127.0.0.1:$PORT_A,http://127.0.0.1:$PORT_B" "$CLIENTS" "$RATE" "$SECS")"
    lat="$(sed -n 's/.*deliveries, \(p50 .*\) (elapsed.*/\1/p' <<< "$out")"
    got="$(sed -n 's/.*warm-up: \([0-9]* of [0-9]*\) deliveries.*/\1/p' <<< "$out")"
    lost="$(sed -n 's/^lost: \([0-9]*\).*/\1/p' <<< "$out")"
    printf 'run %d: %s, %s deliveries, lost %s\n' "$run" "$lat" "$got" "$lost"
done
