#!/usr/bin/env bash
# A chat room of a million messages: the memory of a chat front end that follows it, and of one
# that starts after it is full (folding the room's stream from the start), and the time to
# fetch an old page of its history (read from the stream: a front end keeps only the newest
# WINDOW messages of a room in memory).
#
#   bench/chat-history.sh                  # 1,000,000 messages
#   COUNT=100000 bench/chat-history.sh     # a quick look
#   BUILD=0 BIN=path/to/warren bench/chat-history.sh
#
# One warren is the broker (its own chat unused); the measured front end is a second warren
# with --amqp-url (no embedded broker), so its RSS is the chat's alone. A bot fills the room
# with bench/chat-fill.py (pika, raw frames). A benchmark, not a test: run it by hand.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
COUNT="${COUNT:-1000000}"
WINDOW="${WINDOW:-5000}" # none: no --chat-history-window (a warren from before it, for comparison)
AMQP_PORT="${AMQP_PORT:-5694}"
BROKER_HTTP="${BROKER_HTTP:-18094}"
HTTP="${HTTP:-18095}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
warren_release_bin
PY="$(scripts/python-venv.sh)/bin/python"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/warren-chat-history.XXXXXX")"
LOGS="$DATA/logs"
mkdir -p "$LOGS"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT
# shellcheck source=scripts/chat-front-end.sh
. scripts/chat-front-end.sh

rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
json() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
api() { # METHOD PATH [BODY]
    curl -fsS -X "$1" "http://127.0.0.1:$HTTP$2" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' ${3:+-d "$3"}
}
newest() { api GET "/api/rooms/$ROOM/messages?limit=1" | json 'd["messages"][0]["text"] if d["messages"] else ""'; }
wait_for_fill() {
    local t0="$1" give_up=$((SECONDS + ${WAIT:-1800}))
    until [ "$(newest 2> /dev/null)" = "fill done" ]; do
        [ "$SECONDS" -lt "$give_up" ] || { echo "the front end did not fold the room within ${WAIT:-1800} s" >&2; exit 1; }
        sleep 0.5
    done
    echo "$(($(date +%s%N) / 1000000 - t0))"
}

# the broker: the chat service user is known, so the measured front end can log in as it
"$BIN" --amqp-bind "127.0.0.1:$AMQP_PORT" --http-bind "127.0.0.1:$BROKER_HTTP" --data-dir "$DATA/broker" \
    --management-bind 127.0.0.1:0 --prometheus-bind 127.0.0.1:0 \
    --chat-user benchchat --chat-pass benchchat-secret > "$LOGS/broker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$BROKER_HTTP/" 2> /dev/null && break; sleep 0.2; done
CTL="$BIN ctl --data-dir $DATA/broker"
$CTL add_user fillbot fillbot-secret > /dev/null
$CTL set_permissions -p chat fillbot '^fillbot\..*' '^chat$' '^fillbot\..*' > /dev/null
URL="amqp://benchchat:benchchat-secret@127.0.0.1:$AMQP_PORT/chat"
WINDOW_FLAG=(--chat-history-window "$WINDOW")
[ "$WINDOW" != none ] || WINDOW_FLAG=()

start_front_end "$HTTP" "$URL" "${WINDOW_FLAG[@]}" --chat-rate-limit-factor 1000
FE="${PIDS[-1]}"
TOKEN="$(curl -fsS -X POST "http://127.0.0.1:$HTTP/api/register" -H 'content-type: application/json' \
    -d '{"username":"bench","password":"hunter2hunter2"}' | json 'd["token"]')"
ROOM="$(api POST /api/rooms '{"name":"million","public":true}' | json 'd["id"]')"
api GET "/api/rooms/$ROOM/messages?limit=1" > /dev/null # the front end follows the room from now
RSS_EMPTY="$(rss_mib "$FE")"

echo "filling room $ROOM with $COUNT messages..." >&2
T0=$(($(date +%s%N) / 1000000))
FILL="$("$PY" bench/chat-fill.py --uri "amqp://fillbot:fillbot-secret@127.0.0.1:$AMQP_PORT/chat" --room "$ROOM" --count "$COUNT")"
LIVE_MS="$(wait_for_fill "$T0")"
RSS_LIVE="$(rss_mib "$FE")"

# a front end started now folds the whole stream when the room is first asked for
kill "$FE"
wait "$FE" 2> /dev/null || true
start_front_end "$HTTP" "$URL" "${WINDOW_FLAG[@]}" --chat-rate-limit-factor 1000
FE="${PIDS[-1]}"
TOKEN="$(curl -fsS -X POST "http://127.0.0.1:$HTTP/api/login" -H 'content-type: application/json' \
    -d '{"username":"bench","password":"hunter2hunter2"}' | json 'd["token"]')"
T1=$(($(date +%s%N) / 1000000))
LOAD_MS="$(wait_for_fill "$T1")"
RSS_LOADED="$(rss_mib "$FE")"

page_ms() { # BEFORE -> ms to fetch 50 messages before that offset
    curl -fsS -o /dev/null -w '%{time_total}' "http://127.0.0.1:$HTTP/api/rooms/$ROOM/messages?limit=50&before=$1" \
        -H "authorization: Bearer $TOKEN" | awk '{ printf "%.0f", $1 * 1000 }'
}
NEWEST_MS="$(page_ms "$((COUNT + 10))")"
MIDDLE_MS="$(page_ms "$((COUNT / 2))")"
OLDEST_MS="$(page_ms 100)"
SEARCH_MS="$(curl -fsS -o /dev/null -w '%{time_total}' "http://127.0.0.1:$HTTP/api/search?q=nothing-like-this" \
    -H "authorization: Bearer $TOKEN" | awk '{ printf "%.0f", $1 * 1000 }')"

cat << REPORT
chat history, $COUNT messages in one room, window $WINDOW ($BIN)
fill (bot, raw frames):                 $(echo "$FILL" | json 'd["seconds"]') s to publish
front end following the room live:     in its history $((LIVE_MS / 1000)) s after the fill began; RSS $RSS_EMPTY MiB before, $RSS_LIVE MiB after
front end started on the full stream:   room folded in $((LOAD_MS / 1000)) s; RSS $RSS_LOADED MiB
a page of 50 (newest, in memory):       $NEWEST_MS ms
a page of 50 from the middle (stream):  $MIDDLE_MS ms
a page of 50 from the start (stream):   $OLDEST_MS ms
a search with no hit (window + 20000):  $SEARCH_MS ms
REPORT
