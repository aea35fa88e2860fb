#!/usr/bin/env bash
# Durability figures for warren (release build), printed, never asserted:
#   (a) broker RSS with FILL (default 2 million) 1 KiB persistent messages sitting in one durable
#       queue (filled with `warren perf throughput --fill`, no consumer);
#   (b) restart time with RESTART_N (default 1 million) persisted messages: spawn to accepting
#       AMQP (`warren perf startup`), plus the RSS right after;
#   (c) confirmed persistent msg/s, 1 KiB, 1 publisher, confirm window 1000, warren vs RabbitMQ.
# RabbitMQ rows for (a) and (b) too with RABBIT_FULL=1 (slow: it pages 2 GiB to its own store).
#
#   bench/durability.sh                         # all rows, RabbitMQ for (c) only
#   FILL=200000 RESTART_N=100000 bench/durability.sh   # a quick run
#   RABBIT=0 bench/durability.sh                # warren only
#
# Data dirs are temporary and removed at exit. Needs ~2.5 GiB free under $TMPDIR for FILL=2M.
set -euo pipefail
cd "$(dirname "$0")/.."

FILL="${FILL:-2000000}"
RESTART_N="${RESTART_N:-1000000}"
DURATION="${DURATION:-20s}"
RABBIT="${RABBIT:-1}"
RABBIT_FULL="${RABBIT_FULL:-0}"
WARREN_PORT="${WARREN_PORT:-5696}"
RABBIT_PORT="${RABBIT_PORT:-5697}"
BUILD="${BUILD:-1}"

# shellcheck source=bench/lib.sh
. bench/lib.sh
warren_release_bin

WARREN_URL="amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"
RABBIT_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2f"
export WARREN_RABBIT_NODE="warren-durbench@localhost"
export WARREN_RABBIT_DIR="${WARREN_RABBIT_DIR:-/tmp/warren-durbench-rabbitmq}"
export RABBIT_PORT

DATA="$(mktemp -d "${TMPDIR:-/tmp}/warren-durbench.XXXXXX")"
LOG="$DATA.log"
WARREN_PID=""

rss_mb() { awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$1/status" 2> /dev/null || echo 0; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
port_pid() { ss -ltnpH "sport = :$1" | sed -nE 's/.*pid=([0-9]+).*/\1/p' | head -n1; }

stop_warren() { # also a warren started by `perf startup` (not our child; found by its port)
    if [ -n "$WARREN_PID" ]; then
        kill "$WARREN_PID" 2> /dev/null || true
        wait "$WARREN_PID" 2> /dev/null || true # our child: reaped here
        for _ in $(seq 600); do kill -0 "$WARREN_PID" 2> /dev/null || break; sleep 0.05; done
        for _ in $(seq 600); do ss -ltnH "sport = :$WARREN_PORT" | grep -q . || break; sleep 0.05; done
        WARREN_PID=""
    fi
}
cleanup() {
    stop_warren
    if [ "$RABBIT" = 1 ]; then conformance/rabbitmq.sh stop > /dev/null 2>&1 || true; fi
    rm -rf "$DATA" "$LOG"
}
trap cleanup EXIT

warren_cmd=("$BIN" --amqp-bind "127.0.0.1:$WARREN_PORT" --data-dir "$DATA" --no-chat)

start_warren() {
    if ss -ltnH "sport = :$WARREN_PORT" | grep -q .; then
        echo "port $WARREN_PORT is taken; set WARREN_PORT" >&2
        exit 1
    fi
    "${warren_cmd[@]}" >> "$LOG" 2>&1 &
    WARREN_PID=$!
    for _ in $(seq 1000); do ss -ltnH "sport = :$WARREN_PORT" | grep -q . && return; sleep 0.01; done
    echo "warren did not start, see $LOG" >&2
    exit 1
}

fill() { # url queue n
    "$BIN" perf throughput --uri "$1" --queue "$2" --fill "$3" --consumers 0 --producers 1 \
        --size 1024 --persistent --confirm 1000 --json
}

restart_timed() { # -> startup json in $STARTUP_JSON; warren is running afterwards (WARREN_PID set)
    stop_warren
    STARTUP_JSON=$("$BIN" perf startup --uri "$WARREN_URL" --broker-log "$LOG" --settle 1s --json -- "${warren_cmd[@]}")
    WARREN_PID=$(port_pid "$WARREN_PORT")
}

declare -A FIG

# ---- (c) confirmed persistent msg/s --------------------------------------------------------
start_warren
json=$("$BIN" perf throughput --uri "$WARREN_URL" --producers 1 --consumers 1 --size 1024 --persistent \
    --confirm 1000 --duration "$DURATION" --broker-pid "$WARREN_PID" --json)
FIG[warren_conf]=$(echo "$json" | json_field confirmed_per_sec)
echo "warren: confirmed persistent 1 KiB: ${FIG[warren_conf]} msg/s" >&2

# ---- (b) restart with RESTART_N persisted --------------------------------------------------
fill "$WARREN_URL" durbench-restart "$RESTART_N" > /dev/null
FIG[warren_rss_restart_before]=$(rss_mb "$WARREN_PID")
restart_timed
FIG[warren_restart_ms]=$(echo "$STARTUP_JSON" | json_field startup_ms)
FIG[warren_rss_restart]=$(rss_mb "$WARREN_PID")
echo "warren: restart with $RESTART_N queued: ${FIG[warren_restart_ms]} ms, RSS after ${FIG[warren_rss_restart]} MB" >&2

# ---- (a) RSS with FILL queued --------------------------------------------------------------
# Top the same queue up to FILL (RESTART_N are already there).
fill "$WARREN_URL" durbench-restart "$((FILL > RESTART_N ? FILL - RESTART_N : 0))" > /dev/null
sleep 2
FIG[warren_rss_fill]=$(rss_mb "$WARREN_PID")
echo "warren: RSS with $FILL queued: ${FIG[warren_rss_fill]} MB" >&2
FIG[disk]=$(du -sm "$DATA" | cut -f1)
stop_warren
rm -rf "$DATA" && mkdir -p "$DATA"

# ---- RabbitMQ --------------------------------------------------------------------------------
if [ "$RABBIT" = 1 ]; then
    conformance/rabbitmq.sh stop > /dev/null 2>&1 || true
    conformance/rabbitmq.sh start > /dev/null
    RABBIT_PID=$(port_pid "$RABBIT_PORT")
    json=$("$BIN" perf throughput --uri "$RABBIT_URL" --producers 1 --consumers 1 --size 1024 --persistent \
        --confirm 1000 --duration "$DURATION" --broker-pid "$RABBIT_PID" --json)
    FIG[rabbit_conf]=$(echo "$json" | json_field confirmed_per_sec)
    echo "rabbitmq: confirmed persistent 1 KiB: ${FIG[rabbit_conf]} msg/s" >&2
    if [ "$RABBIT_FULL" = 1 ]; then
        fill "$RABBIT_URL" durbench-restart "$RESTART_N" > /dev/null
        conformance/rabbitmq.sh stop > /dev/null
        json=$("$BIN" perf startup --uri "$RABBIT_URL" --broker-log /dev/null --settle 0s --json -- \
            conformance/rabbitmq.sh start)
        FIG[rabbit_restart_ms]=$(echo "$json" | json_field startup_ms)
        fill "$RABBIT_URL" durbench-restart "$((FILL > RESTART_N ? FILL - RESTART_N : 0))" > /dev/null
        sleep 2
        RABBIT_PID=$(port_pid "$RABBIT_PORT")
        FIG[rabbit_rss_fill]=$(rss_mb "$RABBIT_PID")
    fi
    conformance/rabbitmq.sh stop > /dev/null 2>&1 || true
fi

ratio() { python3 -c "print(f'{$1 / $2:.2f}' if $2 else '-')"; }
echo
echo "| figure | warren | RabbitMQ | warren / RabbitMQ |"
echo "|---|---|---|---|"
printf '| RSS, %s x 1 KiB persistent queued (MB) | %s | %s | %s |\n' "$FILL" "${FIG[warren_rss_fill]}" \
    "${FIG[rabbit_rss_fill]:--}" "$([ -n "${FIG[rabbit_rss_fill]:-}" ] && ratio "${FIG[warren_rss_fill]}" "${FIG[rabbit_rss_fill]}" || echo -)"
printf '| restart with %s persisted, spawn to AMQP (ms) | %s | %s | %s |\n' "$RESTART_N" "${FIG[warren_restart_ms]}" \
    "${FIG[rabbit_restart_ms]:--}" "$([ -n "${FIG[rabbit_restart_ms]:-}" ] && ratio "${FIG[warren_restart_ms]}" "${FIG[rabbit_restart_ms]}" || echo -)"
printf '| RSS right after that restart (MB) | %s | - | - |\n' "${FIG[warren_rss_restart]}"
printf '| confirmed persistent 1 KiB msg/s, 1 publisher, window 1000 | %.0f | %s | %s |\n' "${FIG[warren_conf]}" \
    "${FIG[rabbit_conf]:--}" "$([ -n "${FIG[rabbit_conf]:-}" ] && ratio "${FIG[warren_conf]}" "${FIG[rabbit_conf]}" || echo -)"
printf '| warren data dir with %s queued (MB) | %s | | |\n' "$FILL" "${FIG[disk]}"
