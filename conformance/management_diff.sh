#!/usr/bin/env bash
# The management API of warren against RabbitMQ 3.10's management plugin, request by request
# (conformance/management_diff.py): a private RabbitMQ node with the plugin on 127.0.0.1
# (conformance/rabbitmq.sh, stopped at the end) and a fresh warren (WARREN_BIN, default
# target/debug/warren). Must run as root, as conformance/rabbitmq.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WARREN_BIN="${WARREN_BIN:-${CARGO_TARGET_DIR:-target}/debug/warren}"
export RABBIT_PORT="${MGMT_RABBIT_PORT:-5686}" RABBIT_MANAGEMENT_PORT="${MGMT_RABBIT_API_PORT:-15686}"
export WARREN_RABBIT_NODE=warren-mgmt@localhost WARREN_RABBIT_DIR=/tmp/warren-rabbitmq-mgmt
DATA="$(mktemp -d "${TMPDIR:-/tmp}/warren-mgmt-diff.XXXXXX")"
LOG="$DATA.log"
WARREN_PID=""
cleanup() {
    [ -z "$WARREN_PID" ] || kill "$WARREN_PID" 2> /dev/null || true
    conformance/rabbitmq.sh stop > /dev/null 2>&1 || true
    rm -rf "$DATA" "$LOG"
}
trap cleanup EXIT
conformance/rabbitmq.sh start > /dev/null
RABBIT_API="http://127.0.0.1:$RABBIT_MANAGEMENT_PORT"
for _ in $(seq 120); do
    python3 -c 'import sys, urllib.request as u; r = u.Request(sys.argv[1], headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="}); u.urlopen(r, timeout=5)' \
        "$RABBIT_API/api/whoami" 2> /dev/null && break
    sleep 0.5
done
WARREN_LOG=info "$WARREN_BIN" --no-chat --amqp-bind 127.0.0.1:0 --management-bind 127.0.0.1:0 \
    --prometheus-bind 127.0.0.1:0 --data-dir "$DATA" > "$LOG" 2>&1 &
WARREN_PID=$!
WARREN_API=""
for _ in $(seq 100); do
    WARREN_API="$(sed -n 's/.*management API on \(http:\/\/[^ ]*\).*/\1/p' "$LOG" | head -n 1)"
    [ -n "$WARREN_API" ] && break
    sleep 0.1
done
[ -n "$WARREN_API" ] || { cat "$LOG" >&2; echo "warren's management API did not start" >&2; exit 1; }
python3 conformance/management_diff.py "$WARREN_API" "$RABBIT_API"
