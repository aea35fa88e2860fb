#!/usr/bin/env bash
# The kernel's floor under the chat's 10,000-session row, printed, never asserted: 100,000
# writes of 300 bytes a second over loopback to 10,000 sockets (100 every millisecond), read by
# one thread from one epoll set (chat-web/examples/loopback_floor.rs), RUNS (3) times. What the
# two sides' CPU comes to is what any chat server and bench pair pays on this machine for the
# same traffic before doing anything of its own (bench/PROFILE.md section 4).
#
#   bench/loopback-floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
CONNECTIONS="${CONNECTIONS:-10000}"
export FLOOR_PORT="${FLOOR_PORT:-9911}"

if [ "${BUILD:-1}" = 1 ]; then
    echo "building loopback_floor (release)..." >&2
    cargo build --release --locked -q -p warren-chat --example loopback_floor
fi
FLOOR="${CARGO_TARGET_DIR:-target}/release/examples/loopback_floor"
ulimit -n "$(ulimit -Hn)"

for run in $(seq 1 "$RUNS"); do
    out="$(mktemp)"
    "$FLOOR" serve "$CONNECTIONS" > "$out" 2>&1 &
    serve=$!
    sleep 0.5
    read_line="$("$FLOOR" read "$CONNECTIONS")"
    wait "$serve"
    echo "run $run: $(cat "$out"); $read_line"
    rm -f "$out"
done
