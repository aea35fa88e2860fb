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
#   CLIENTS=10000 ROOMS=100 RATE=1000 bench/chat.sh
#                                      # 100 rooms of 100 sessions, 1000 msg/s in all
#   SHARDS=4 ...                       # the clients spread over 4 bench processes (each takes
#                                      # a quarter of the rooms; their latencies are pooled)
#   WS_BENCH_TRACE=1 ...               # and the worst latency of each 100 ms of sending
#   BUILD=0 BIN=/tmp/warren-old bench/chat.sh
#                                      # a binary built before (A/B of two commits)
#
# Every run's figures are kept in bench/results/<time>-<commit>-chat.json (KEEP=0: not);
# `python3 bench/trend.py "chat 10000"` prints them across commits.
#
# Data dirs are temporary and removed at exit. The bench client runs on this machine too (one
# thread reads all its sessions, looking every 1 ms: chat-web/examples/ws_bench.rs); at
# 100,000 deliveries a second it takes ~0.6 of a core.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-1000}"
RATE="${RATE:-100}"
SECS="${SECS:-10}"
RUNS="${RUNS:-3}"
RABBIT="${RABBIT:-0}"
ROOMS="${ROOMS:-1}"
SHARDS="${SHARDS:-1}"
HTTP_PORT="${HTTP_PORT:-8093}"
AMQP_PORT="${AMQP_PORT:-5698}"
RABBIT_PORT="${RABBIT_PORT:-5699}"

if [ "${BUILD:-1}" = 1 ]; then
    echo "building warren and ws_bench (release)..." >&2
    cargo build --release --locked -q -p warren --bin warren
    cargo build --release --locked -q -p warren-chat --example ws_bench
fi
TARGET="${CARGO_TARGET_DIR:-target}/release"
BIN="${BIN:-$TARGET/warren}"
BENCH="$TARGET/examples/ws_bench"

DATA="$(mktemp -d)"
RESULTS="$(mktemp)"
# ten thousand sessions: as many open files as the hard limit allows, for warren and the bench
ulimit -n "$(ulimit -Hn)"
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
    rm -rf "$DATA" "$RESULTS"
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

# One bench run over SHARDS processes (each with its share of clients, rooms and rate, started
# together); prints the first process's lines (RSS per idle session, its CPU) and then the
# pooled figures of all of them.
bench_run() {
    if [ "$SHARDS" = 1 ]; then
        WS_BENCH_ROOMS="$ROOMS" "$BENCH" "http://127.0.0.1:$HTTP_PORT" "$CLIENTS" "$RATE" "$SECS" "$PID"
        return
    fi
    local dir pids=() k
    dir="$(mktemp -d)"
    for k in $(seq 1 "$SHARDS"); do
        WS_BENCH_ROOMS=$((ROOMS / SHARDS)) WS_BENCH_DUMP="$dir/$k.lat" "$BENCH" "http://127.0.0.1:$HTTP_PORT" \
            $((CLIENTS / SHARDS)) $((RATE / SHARDS)) "$SECS" "$PID" > "$dir/$k.out" 2>&1 &
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || { cat "$dir"/*.out >&2; rm -rf "$dir"; return 1; }; done
    python3 - "$dir" "$SHARDS" << 'PY'
import array, glob, re, sys
d, shards = sys.argv[1], int(sys.argv[2])
lat = array.array("I")
got = want = 0
client_cpu = server_cpu = 0
sessions = 0
befores, afters = [], []
for k in range(1, shards + 1):
    out = open(f"{d}/{k}.out").read()
    with open(f"{d}/{k}.lat", "rb") as f:
        lat.frombytes(f.read())
    m = re.search(r"warm-up: (\d+) of (\d+) deliveries", out)
    got += int(m.group(1)); want += int(m.group(2))
    m = re.search(r"bench client (\d+)%, chat server (\d+)%", out)
    client_cpu += int(m.group(1)); server_cpu = max(server_cpu, int(m.group(2)))
    m = re.search(r"RSS per idle session: .* \((\d+) sessions, (\d+) KiB -> (\d+) KiB\)", out)
    if m:
        sessions += int(m.group(1)); befores.append(int(m.group(2))); afters.append(int(m.group(3)))
    if k == 1:
        print("\n".join(l for l in out.splitlines() if l.startswith(("server RSS", "worst latency"))))
# The shards connect at the same time, so each one's own before/after spans the others'
# sessions too: the pooled figure is the whole rise over all sessions.
if befores:
    print(f"RSS per idle session: {(max(afters) - min(befores)) / sessions:.1f} KiB "
          f"({sessions} sessions, {min(befores)} KiB -> {max(afters)} KiB, pooled over {shards} bench processes)")
s = sorted(lat)
pct = lambda p: s[min(int(len(s) * p), len(s) - 1)] / 1000 if s else 0
print(f"CPU over the run (100% = one core): bench client {client_cpu}%, chat server {server_cpu}%")
print(f"pooled over {shards} bench processes, after warm-up: {got} of {want} deliveries, "
      f"p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms (elapsed ?)")
PY
    rm -rf "$dir"
}

# One line per run: the bench's figures for the front end named $1.
measure() {
    local name="$1"
    shift
    for run in $(seq 1 "$RUNS"); do
        start_warren "$@"
        out="$(bench_run)"
        peak="$(awk '/^VmHWM:/ {printf "%d MiB", $2 / 1024}' "/proc/$PID/status")"
        stop_warren
        rss="$(sed -n 's/^RSS per idle session: \([0-9.]* KiB\).*/\1/p' <<< "$out")"
        cpu="$(sed -n 's/^CPU over the run .*: bench client \([0-9]*%\), chat server \([0-9]*%\)/client \1, server \2/p' <<< "$out")"
        lat="$(sed -n 's/.*deliveries, \(p50 .*\) (elapsed.*/\1/p' <<< "$out")"
        got="$(sed -n 's/.*warm-up: \([0-9]* of [0-9]*\) deliveries.*/\1/p' <<< "$out")"
        grep "^worst latency" <<< "$out" || true
        printf '%-20s run %d: %s, %s deliveries, RSS/idle session %s, server peak RSS %s, CPU %s\n' "$name" "$run" "$lat" "$got" "$rss" "$peak" "$cpu"
        keep_run "$name" "$run" "$lat" "$got" "$rss" "$peak" "$cpu"
    done
}

# One JSON line a figure of a run, for bench/keep.py (the history in bench/results/).
keep_run() {
    local broker=warren row="chat $CLIENTS sessions, $ROOMS room(s), $RATE msg/s"
    [[ "$1" == *RabbitMQ* ]] && broker=rabbitmq
    python3 - "$broker" "$row" "$2" "$3" "$4" "$5" "$6" "$7" >> "$RESULTS" << 'PY'
import json, re, sys
broker, row, run, lat, got, rss, peak, cpu = sys.argv[1:]
def first(pattern, text):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None
figures = {
    "p50 (ms)": first(r"p50 ([0-9.]+)", lat), "p99 (ms)": first(r"p99 ([0-9.]+)", lat),
    "max (ms)": first(r"max ([0-9.]+)", lat), "deliveries made": first(r"^([0-9]+) of", got),
    "RSS per idle session (KiB)": first(r"([0-9.]+)", rss), "server peak RSS (MiB)": first(r"([0-9]+)", peak),
    "server CPU (%)": first(r"server ([0-9]+)%", cpu), "bench CPU (%)": first(r"client ([0-9]+)%", cpu),
}
for name, value in figures.items():
    if value is not None:
        print(json.dumps({"broker": broker, "row": f"{row}: {name}", "run": int(run), "value": value}))
PY
}

echo "$CLIENTS clients in $ROOMS room(s), $RATE msg/s in all for $SECS s after 2 s of warm-up, $RUNS runs each, bench over $SHARDS process(es)"
measure "warren (embedded)"
if [ "$RABBIT" = 1 ]; then
    RABBIT_URL="$(conformance/rabbitmq.sh start | tail -n 1)"
    echo "RabbitMQ $(conformance/rabbitmq.sh version) at $RABBIT_URL" >&2
    measure "chat on RabbitMQ" --amqp-url "$RABBIT_URL"
fi
[ "${KEEP:-1}" = 0 ] || python3 bench/keep.py chat "$RESULTS" --setting "BIN=$BIN" --setting "BUILD=${BUILD:-1}" \
    --setting "CLIENTS=$CLIENTS" --setting "ROOMS=$ROOMS" --setting "RATE=$RATE" --setting "SECS=$SECS" \
    --setting "RUNS=$RUNS" --setting "SHARDS=$SHARDS" --setting "WS_BENCH_NAP_US=${WS_BENCH_NAP_US:-1000}"
