#!/usr/bin/env bash
# warren against RabbitMQ on robustness ("hardening") rows, side by side, in one sitting:
#
#   topic  a topic exchange, one queue bound with n '#' words then `z` (n = TOPIC_NS), one
#          publish with confirms of a 40-word and of a 127-word key (`a.a...a`, no match):
#          routing time = publish->confirm minus the median round trip to an unbound key.
#          A broker is given up on (larger n not run) once a publish takes > TOPIC_LIMIT s.
#   slow   SLOW_COUNT transient 200 B messages written one at a time at most SLOW_RATE msg/s
#          into a queue without consumer: broker RSS growth per queued message.
#   flow   a publisher as fast as it can into one queue, a consumer far slower (pika, paced
#          at 10% of the publisher's unthrottled rate, which is more than pika can take from
#          warren: the row prints the rate it reached), for DURATION, 16 B and 1 KiB bodies (FLOW_SIZES),
#          transient and persistent (FLOW_MODES): broker peak RSS, order of the consumed
#          messages, connection.blocked, publish->confirm latency of a third connection (the
#          prober, at real-time priority when run as root: PROBE_REALTIME=0 turns that off),
#          and that prober's floor on this machine: the same prober against the idle broker
#          while two busy loops take both cores.
#
# A benchmark, not a test: run it by hand, on an otherwise idle machine. Loopback only.
# Every row shows each run (RUNS) and the median, for both brokers; a JSON copy goes to
# $OUT/hardening.json.
#
#   bench/hardening.sh                           # RUNS=3 DURATION=60s, all rows
#   BUILD=0 BIN=path/to/warren bench/hardening.sh
#   ONLY=topic,slow RUNS=1 bench/hardening.sh
#   RUNS=1 DURATION=10s SLOW_COUNT=20000 FLOW_SIZES=16 FLOW_MODES=transient bench/hardening.sh
#   BROKERS=warren ONLY=flow RUNS=1 bench/hardening.sh   # a quick look at warren alone
#
# warren is started afresh (empty data dir) for every run of every row. RabbitMQ: a private
# node of Debian's rabbitmq-server (conformance/rabbitmq.sh, installed if missing), one node
# for the slow and flow rows; its topic row runs last and the node is restarted after every
# topic run (a stuck channel may keep routing, and burning CPU, long after we gave up).
# Must run as root for that.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-60s}"
ONLY="${ONLY:-topic,slow,flow}"
TOPIC_NS="${TOPIC_NS:-2,4,6,8,12,16}"
TOPIC_LIMIT="${TOPIC_LIMIT:-10}"
SLOW_COUNT="${SLOW_COUNT:-100000}"
SLOW_RATE="${SLOW_RATE:-10000}"
FLOW_SIZES="${FLOW_SIZES:-16 1024}"
FLOW_MODES="${FLOW_MODES:-transient persistent}"
WARREN_PORT="${WARREN_PORT:-5684}"
RABBIT_PORT="${RABBIT_PORT:-5685}"
OUT="${OUT:-target/bench}"
BUILD="${BUILD:-1}"
BROKERS="${BROKERS:-warren rabbitmq}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
DURATION_S="${DURATION%s}"
case "$DURATION_S" in '' | *[!0-9.]*) echo "DURATION must be seconds, e.g. 60s" >&2; exit 2 ;; esac

want() { case ",$ONLY," in *",$1,"*) true ;; *) false ;; esac; }
with_rabbit() { case " $BROKERS " in *" rabbitmq "*) true ;; *) false ;; esac; }

ulimit -n "$(ulimit -Hn)"

# shellcheck source=bench/lib.sh
. bench/lib.sh
warren_release_bin

PY="$(scripts/python-venv.sh)/bin/python"

export WARREN_RABBIT_NODE="${WARREN_RABBIT_NODE:-warren-hardening@localhost}"
export WARREN_RABBIT_DIR="${WARREN_RABBIT_DIR:-/tmp/warren-hardening-rabbitmq}"
export RABBIT_PORT
RABBIT_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2f"
WARREN_URL="amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"

# warren as a broker only, on a data dir of its own (emptied before every start).
WARREN_DATA="$(mktemp -d "${TMPDIR:-/tmp}/warren-hardening.XXXXXX")"
export WARREN_NO_CHAT=true WARREN_DATA_DIR="$WARREN_DATA"

WARREN_PID=""
RABBIT_UP=0
cleanup() {
    stop_warren
    if [ "$RABBIT_UP" = 1 ]; then conformance/rabbitmq.sh stop > /dev/null 2>&1 || true; fi
    rm -rf "$WARREN_DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RESULTS="$OUT/hardening.jsonl"
: > "$RESULTS"

stop_warren() {
    if [ -n "$WARREN_PID" ]; then
        kill "$WARREN_PID" 2> /dev/null || true
        for _ in $(seq 200); do kill -0 "$WARREN_PID" 2> /dev/null || break; sleep 0.05; done
        kill -9 "$WARREN_PID" 2> /dev/null || true
        wait "$WARREN_PID" 2> /dev/null || true
        WARREN_PID=""
    fi
}

start_warren() { # a fresh warren on an empty data dir
    stop_warren
    find "$WARREN_DATA" -mindepth 1 -delete
    WARREN_AMQP_BIND="127.0.0.1:$WARREN_PORT" WARREN_LOG=warn "$BIN" >> "$OUT/hardening-warren.log" 2>&1 &
    WARREN_PID=$!
    for _ in $(seq 500); do ss -ltnH "sport = :$WARREN_PORT" | grep -q . && break; sleep 0.01; done
    ss -ltnH "sport = :$WARREN_PORT" | grep -q . || { echo "warren did not listen on $WARREN_PORT" >&2; exit 1; }
    sleep 1
}

# The beam.smp of our node: by node name on its command line, else (RabbitMQ >= 3.9 names
# the node at run time) in the environment it inherited from conformance/rabbitmq.sh.
rabbit_pid() {
    local d pid
    for how in cmdline environ; do
        for d in /proc/[0-9]*; do
            pid="${d#/proc/}"
            case "$(cat "$d/comm" 2> /dev/null)" in beam*) ;; *) continue ;; esac
            if tr '\0' '\n' < "$d/$how" 2> /dev/null | grep -qF -- "$WARREN_RABBIT_NODE"; then
                echo "$pid"
                return 0
            fi
        done
    done
    return 1
}

RABBIT_PID=""
start_rabbit() {
    conformance/rabbitmq.sh start > /dev/null
    RABBIT_UP=1
    RABBIT_PID="$(rabbit_pid)" || { echo "cannot find the beam.smp of $WARREN_RABBIT_NODE" >&2; exit 1; }
    sleep 3 # let it finish booting
}
stop_rabbit() {
    [ "$RABBIT_UP" = 1 ] || [ "${1:-}" = force ] || return 0
    conformance/rabbitmq.sh stop > /dev/null 2>&1 || true
    RABBIT_UP=0
    RABBIT_PID=""
}

measure() { # broker run row: one run of one row on one broker, appended to $RESULTS
    local broker=$1 run=$2 row=$3 url pid limit
    if [ "$broker" = warren ]; then url=$WARREN_URL pid=$WARREN_PID; else url=$RABBIT_URL pid=$RABBIT_PID; fi
    local common=(--uri "$url" --broker "$broker" --run "$run" --results "$RESULTS")
    case $row in
        topic)
            limit=$(((TOPIC_LIMIT + 5) * 2 * $(echo "$TOPIC_NS" | tr ',' '\n' | grep -c .) + 60))
            timeout --kill-after=10 "$limit" "$PY" bench/hardening.py topic "${common[@]}" --ns "$TOPIC_NS" --limit "$TOPIC_LIMIT" ;;
        slow) timeout --kill-after=10 $((SLOW_COUNT / 1000 + SLOW_COUNT / ${SLOW_RATE%.*} + 300)) \
            "$PY" bench/hardening.py slow "${common[@]}" --pid "$pid" --count "$SLOW_COUNT" --rate "$SLOW_RATE" ;;
        flow:*)
            local size mode
            IFS=: read -r _ size mode <<< "$row"
            local flags=(--pid "$pid" --size "$size" --duration "$DURATION_S")
            [ "$mode" = persistent ] && flags+=(--persistent)
            timeout --kill-after=10 "$(awk -v d="$DURATION_S" 'BEGIN {printf "%d", d * 2 + 300}')" \
                "$PY" bench/hardening.py flow "${common[@]}" "${flags[@]}" ;;
    esac || echo "$broker run $run $row: FAILED (exit $?)" >&2
}

# ---- rows -----------------------------------------------------------------------------------
# topic on warren first (fresh warren per run: a stuck routing must not slow the next run)
if want topic; then
    for run in $(seq "$RUNS"); do
        start_warren
        measure warren "$run" topic
    done
    stop_warren
fi

SIDE_ROWS=()
want slow && SIDE_ROWS+=(slow)
if want flow; then
    for size in $FLOW_SIZES; do for mode in $FLOW_MODES; do SIDE_ROWS+=("flow:$size:$mode"); done; done
fi
if [ "${#SIDE_ROWS[@]}" -gt 0 ]; then
    if with_rabbit; then start_rabbit; fi
    for row in "${SIDE_ROWS[@]}"; do
        for run in $(seq "$RUNS"); do
            start_warren
            measure warren "$run" "$row"
            stop_warren
            if with_rabbit; then
                measure rabbitmq "$run" "$row"
                sleep 2
            fi
        done
    done
fi

# topic on RabbitMQ last, a restarted node for every run (and stopped after the last)
if want topic && with_rabbit; then
    for run in $(seq "$RUNS"); do
        [ "$RABBIT_UP" = 1 ] || start_rabbit
        measure rabbitmq "$run" topic
        stop_rabbit
    done
fi
RABBIT_VERSION="$(cat "$WARREN_RABBIT_DIR/version" 2> /dev/null || echo '?')"
stop_rabbit

# ---- the table ------------------------------------------------------------------------------
HEADER="$(date -u +%Y-%m-%d), $(nproc) cores ($(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n1)), \
$(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo), Linux $(uname -r), \
RabbitMQ ${RABBIT_VERSION:-?}, warren $(git rev-parse --short HEAD 2> /dev/null || echo '?') ($BIN); \
$RUNS run(s) a row, DURATION=$DURATION, SLOW_COUNT=$SLOW_COUNT at <= $SLOW_RATE msg/s, topic limit ${TOPIC_LIMIT}s."
META="$("$PY" -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
    header "$HEADER" warren_bin "$BIN" rabbitmq_version "${RABBIT_VERSION:-?}" runs "$RUNS" duration "$DURATION" \
    only "$ONLY" topic_ns "$TOPIC_NS" topic_limit_s "$TOPIC_LIMIT" slow_count "$SLOW_COUNT" slow_rate "$SLOW_RATE")"
{
    echo "$HEADER"
    echo
    "$PY" bench/hardening.py table --results "$RESULTS" --json "$OUT/hardening.json" --meta "$META"
} | tee "$OUT/hardening.txt"
echo "JSON: $OUT/hardening.json, raw records: $RESULTS" >&2
# the run joins the repository's history (bench/trend.py ROW prints a row across commits)
[ "${KEEP:-1}" = 0 ] || python3 bench/keep.py hardening "$RESULTS" --setting "ONLY=$ONLY" --setting "RUNS=$RUNS" \
    --setting "DURATION=$DURATION" --setting "PROBE_REALTIME=${PROBE_REALTIME:-1}"
