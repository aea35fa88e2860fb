#!/usr/bin/env bash
# A long stream on warren: fill a stream queue with GIB GiB (default 10) of SIZE-byte bodies
# (default 64 KiB), then stop warren (SIGTERM) and start it again on the same data directory:
# RSS when full, restart time (until the AMQP port listens, and until a consumer from "first"
# gets its first delivery), RSS after the restart, and the time to read entries from the
# start, the middle and the end (all of them from disk but the newest).
#
#   bench/bigstream.sh                 # 10 GiB
#   GIB=1 bench/bigstream.sh           # a quick look
#   BUILD=0 BIN=path/to/warren bench/bigstream.sh
#
# A benchmark, not a test: run it by hand on an otherwise idle machine with 2.5x GIB free
# on the data directory's disk (DATA, default a temporary directory under TMPDIR).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GIB="${GIB:-10}"
SIZE="${SIZE:-65536}"
PORT="${PORT:-5686}"
BUILD="${BUILD:-1}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
warren_release_bin
PY="$(scripts/python-venv.sh)/bin/python"
DATA="${DATA:-$(mktemp -d "${TMPDIR:-/tmp}/warren-bigstream.XXXXXX")}"
URL="amqp://guest:guest@127.0.0.1:$PORT/%2f"
PID=""
stop_warren() {
    [ -n "$PID" ] || return 0
    kill "$PID" 2> /dev/null || true
    wait "$PID" 2> /dev/null || true
    PID=""
}
trap 'stop_warren; rm -rf "$DATA"' EXIT
STARTED_IN=""
start_warren() { # sets PID, and STARTED_IN to the seconds until the port listens
    local t0 t1
    t0=$(date +%s.%N)
    WARREN_NO_CHAT=true WARREN_LOG=warn "$BIN" --amqp-bind "127.0.0.1:$PORT" --data-dir "$DATA" >> "$DATA.log" 2>&1 &
    PID=$!
    for _ in $(seq 6000); do ss -ltnH "sport = :$PORT" | grep -q . && break; sleep 0.01; done
    t1=$(date +%s.%N)
    STARTED_IN=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$PID/status"; }

echo "warren $(git rev-parse --short HEAD) ($BIN), $GIB GiB of $SIZE-byte entries into one stream, data in $DATA"
start_warren
echo "RSS empty: $(rss_mb) MB"
"$PY" bench/bigstream.py fill --uri "$URL" --pid "$PID" --gib "$GIB" --size "$SIZE"
echo "RSS full: $(rss_mb) MB; data dir $(du -sm "$DATA" | cut -f1) MB"
sleep 12 # a retention sweep (every 10 s) lets go of what the journal synced after the last append
echo "RSS 12 s later: $(rss_mb) MB"
ENTRIES=$(awk -v g="$GIB" -v s="$SIZE" 'BEGIN {printf "%d", g * 1073741824 / s}')
T_STOP0=$(date +%s.%N)
stop_warren
T_STOP1=$(date +%s.%N)
echo "stop (SIGTERM to exit): $(awk -v a="$T_STOP0" -v b="$T_STOP1" 'BEGIN {printf "%.2f", b - a}') s"
start_warren
echo "restart until listening: $STARTED_IN s"
"$PY" bench/bigstream.py read --uri "$URL" --offset first --count 1
echo "RSS after restart and a first read: $(rss_mb) MB"
"$PY" bench/bigstream.py read --uri "$URL" --offset $((ENTRIES / 2)) --count 1000
"$PY" bench/bigstream.py read --uri "$URL" --offset last --count 1
"$PY" bench/bigstream.py read --uri "$URL" --offset first --count "$((ENTRIES < 20000 ? ENTRIES : 20000))"
echo "RSS at the end: $(rss_mb) MB"
