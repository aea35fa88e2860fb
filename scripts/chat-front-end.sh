# Sourced by the scripts that run chat front ends of their own on a broker they name (the
# cluster's browser test, bench/chat-cluster.sh). Expects BIN (the warren binary), LOGS (a
# directory for the front ends' logs) and PIDS (an array the caller's cleanup kills).
#
# start_front_end PORT URLS [FLAGS...]: a chat front end alone (no embedded broker) on
# 127.0.0.1:PORT, talking to the broker(s) at URLS; returns once it answers HTTP.
start_front_end() {
    local port="$1" urls="$2"
    shift 2
    "$BIN" --amqp-url "$urls" --http-bind "127.0.0.1:$port" "$@" > "$LOGS/$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2> /dev/null && return 0
        sleep 0.2
    done
    cat "$LOGS/$port.log"
    echo "the front end on port $port did not start" >&2
    exit 1
}
