#!/usr/bin/env bash
# Browser test of two chat front ends on the three-node RabbitMQ cluster behind a load balancer
# (chat-web/browser/cluster.test.mjs): front end A on node 1, B on node 2; A is killed with
# SIGKILL and its browser session carries on through B. Needs the cluster running
# (scripts/rabbitmq-cluster.sh up; CLUSTER_URLS, or asked from the script). Installs Debian's
# chromium, nodejs and npm and playwright-core when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/browser-deps.sh
. scripts/browser-deps.sh
ensure_browser_deps

# WARREN_BIN: a prebuilt binary (no build then)
BIN="${WARREN_BIN:-${CARGO_TARGET_DIR:-target}/debug/warren}"
[ -n "${WARREN_BIN:-}" ] || cargo build --locked -p warren
URLS="${CLUSTER_URLS:-$(scripts/rabbitmq-cluster.sh urls)}"
IFS=, read -r N1 N2 N3 <<< "$URLS"
PORT_A="${CHAT_CLUSTER_PORT_A:-18281}"
PORT_B="${CHAT_CLUSTER_PORT_B:-18282}"
LOGS="$(mktemp -d)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
    rm -rf "$LOGS"
}
trap cleanup EXIT

# shellcheck source=scripts/chat-front-end.sh
. scripts/chat-front-end.sh
start_front_end "$PORT_A" "$N1,$N2,$N3"
start_front_end "$PORT_B" "$N2,$N3,$N1"
node chat-web/browser/cluster.test.mjs "http://127.0.0.1:$PORT_A" "http://127.0.0.1:$PORT_B" "${PIDS[0]}" \
    target/chat-screenshots/cluster || { tail -n 30 "$LOGS"/*.log; exit 1; }
