#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback, from Debian's rabbitmq-server package (no Docker),
# for the chat's cluster tests and to try a scaled-out chat by hand.
#
#   scripts/rabbitmq-cluster.sh up            start the three nodes and join them (idempotent);
#                                             prints the chat's AMQP address list (last line)
#   scripts/rabbitmq-cluster.sh down          stop the three nodes (ours only)
#   scripts/rabbitmq-cluster.sh stop N        stop node N (1-3) gracefully (rabbitmqctl stop)
#   scripts/rabbitmq-cluster.sh kill N        SIGKILL node N's Erlang VM
#   scripts/rabbitmq-cluster.sh start N       start node N again: it rejoins the cluster
#   scripts/rabbitmq-cluster.sh status        running nodes as the cluster sees them; exit 1
#                                             unless all three answer AMQP
#   scripts/rabbitmq-cluster.sh urls          the address list (comma separated)
#   scripts/rabbitmq-cluster.sh ctl N ARGS    rabbitmqctl ARGS against node N
#
# Each node is one conformance/rabbitmq.sh node (same install, same process handling):
#   node N: name warren-cluster-N@localhost, AMQP 127.0.0.1:$((CLUSTER_BASE_PORT + N)),
#           distribution port AMQP + 20000, state /tmp/warren-cluster/nodeN.
# The nodes share root's Erlang cookie (conformance/rabbitmq.sh keeps it in root's home).
#
# Users (created by `up`, on the cluster, so on every node):
#   warren-chat / $CLUSTER_CHAT_PASS   the chat's service identity: the only user that may
#                                      read and write chat.directory and the chat.room.* streams
#   chatbot / chatbot-secret           a bot: publishes to `chat`, reads its own queues
#
# Environment: CLUSTER_BASE_PORT (default 5700: nodes on 5701-5703), CLUSTER_DIR (default
# /tmp/warren-cluster), CLUSTER_START_TIMEOUT (seconds per node, default 90),
# CLUSTER_CHAT_PASS (default chat-service-secret).
# Must run as root (like conformance/rabbitmq.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BASE_PORT="${CLUSTER_BASE_PORT:-5700}"
DIR="${CLUSTER_DIR:-/tmp/warren-cluster}"
START_TIMEOUT="${CLUSTER_START_TIMEOUT:-90}"
CHAT_USER=warren-chat
CHAT_PASS="${CLUSTER_CHAT_PASS:-chat-service-secret}"
BOT_USER=chatbot
BOT_PASS=chatbot-secret
NODES=(1 2 3)

log() { printf 'rabbitmq-cluster.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

check_n() { case "${1:-}" in 1 | 2 | 3) ;; *) die "node must be 1, 2 or 3 (got '${1:-}')" ;; esac; }
node_name() { echo "warren-cluster-$1@localhost"; }
node_port() { echo $((BASE_PORT + $1)); }

# conformance/rabbitmq.sh for node N
node() {
    local n="$1"
    shift
    env WARREN_RABBIT_DIR="$DIR/node$n" RABBIT_PORT="$(node_port "$n")" \
        WARREN_RABBIT_NODE="$(node_name "$n")" RABBIT_START_TIMEOUT="$START_TIMEOUT" \
        conformance/rabbitmq.sh "$@"
}

ctl() { # N ARGS: rabbitmqctl against node N
    local n="$1"
    shift
    node "$n" ctl "$@"
}

urls() {
    local n out=""
    for n in "${NODES[@]}"; do
        out="${out:+$out,}amqp://$CHAT_USER:$CHAT_PASS@127.0.0.1:$(node_port "$n")/%2f"
    done
    echo "$out"
}

# Whether node N lists node M among its running cluster nodes.
sees_running() { # N M
    ctl "$1" cluster_status --formatter json 2> /dev/null \
        | grep -o '"running_nodes":\[[^]]*\]' | grep -qF "\"$(node_name "$2")\""
}

join() { # N: make node N a member of node 1's cluster (no-op if it is one)
    local n="$1" first
    first="$(node_name 1)"
    if sees_running 1 "$n"; then
        return 0
    fi
    log "joining $(node_name "$n") to $first"
    ctl "$n" stop_app > "$DIR/join.log" 2>&1 || { cat "$DIR/join.log" >&2; die "$(node_name "$n"): stop_app failed"; }
    ctl "$n" reset > "$DIR/join.log" 2>&1 || { cat "$DIR/join.log" >&2; die "$(node_name "$n"): reset failed"; }
    ctl "$n" join_cluster "$first" > "$DIR/join.log" 2>&1 || { cat "$DIR/join.log" >&2; die "$(node_name "$n"): join_cluster failed"; }
    ctl "$n" start_app > "$DIR/join.log" 2>&1 || { cat "$DIR/join.log" >&2; die "$(node_name "$n"): start_app failed"; }
    sees_running 1 "$n" || die "$(node_name "$n") did not join $first"
}

users() {
    ctl 1 add_user "$CHAT_USER" "$CHAT_PASS" > /dev/null 2>&1 \
        || ctl 1 change_password "$CHAT_USER" "$CHAT_PASS" > /dev/null
    ctl 1 set_permissions -p / "$CHAT_USER" '.*' '.*' '.*' > /dev/null
    ctl 1 add_user "$BOT_USER" "$BOT_PASS" > /dev/null 2>&1 \
        || ctl 1 change_password "$BOT_USER" "$BOT_PASS" > /dev/null
    # a bot declares its own server-named queues, publishes to `chat`, binds its queues to it
    ctl 1 set_permissions -p / "$BOT_USER" '^amq\.gen.*' '^(chat|amq\.default|amq\.gen.*)$' \
        '^(chat|amq\.gen.*)$' > /dev/null
}

cmd_up() {
    mkdir -p "$DIR"
    # (fd 8 must not leak into the nodes: they would hold the lock for their lifetime)
    exec 8> "$DIR/.up.lock"
    flock -w 600 8 || die "could not lock $DIR/.up.lock"
    local start=$SECONDS n pids=()
    # node 1 first (it may install the package), then the other two in parallel
    node 1 start > /dev/null 8>&-
    for n in 2 3; do
        node "$n" start > /dev/null 8>&- &
        pids+=($!)
    done
    for n in "${pids[@]}"; do
        wait "$n" || die "a node did not start (logs under $DIR)"
    done
    for n in 2 3; do join "$n"; done
    users
    log "cluster of $(node_name 1), $(node_name 2), $(node_name 3) up after $((SECONDS - start))s"
    urls
}

cmd_down() {
    local n
    for n in "${NODES[@]}"; do node "$n" stop || true; done
}

cmd_start() { # N: start one node (it remembers its cluster) and wait until the cluster sees it
    local n="$1" other start=$SECONDS i
    node "$n" start > /dev/null
    other=1
    [ "$n" = 1 ] && other=2
    for ((i = 0; i < START_TIMEOUT * 2; i++)); do
        if sees_running "$other" "$n"; then
            log "$(node_name "$n") is back in the cluster after $((SECONDS - start))s"
            return 0
        fi
        sleep 0.5
    done
    die "$(node_name "$n") did not rejoin the cluster within ${START_TIMEOUT}s"
}

cmd_kill() { # N: SIGKILL the node's VM (and its wrapper shell)
    local n="$1" pid f
    f="$DIR/node$n/$(node_name "$n").pid"
    pid="$( [ -f "$f" ] && tr -dc 0-9 < "$f" || true)"
    if [ -z "$pid" ] || ! kill -0 "$pid" 2> /dev/null; then
        log "$(node_name "$n") is not running"
        return 0
    fi
    kill -KILL "$pid"
    while kill -0 "$pid" 2> /dev/null; do sleep 0.1; done
    # the wrapper shell exits with its VM; conformance/rabbitmq.sh stop tidies pid files
    node "$n" stop > /dev/null 2>&1 || true
    log "$(node_name "$n") killed (pid $pid)"
}

cmd_status() {
    local n ok=0
    for n in "${NODES[@]}"; do
        if node "$n" status > /dev/null 2>&1; then
            ok=$((ok + 1))
            log "$(node_name "$n"): up on 127.0.0.1:$(node_port "$n")"
        else
            log "$(node_name "$n"): down"
        fi
    done
    for n in "${NODES[@]}"; do
        if node "$n" status > /dev/null 2>&1; then
            ctl "$n" cluster_status --formatter json 2> /dev/null \
                | grep -o '"running_nodes":\[[^]]*\]' >&2 || true
            break
        fi
    done
    [ "$ok" = 3 ]
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    start) check_n "${2:-}" && cmd_start "$2" ;;
    stop) check_n "${2:-}" && node "$2" stop ;;
    kill) check_n "${2:-}" && cmd_kill "$2" ;;
    status) cmd_status ;;
    urls) urls ;;
    ctl)
        check_n "${2:-}"
        n="$2"
        shift 2
        ctl "$n" "$@"
        ;;
    *)
        echo "usage: $0 up|down|status|urls|start N|stop N|kill N|ctl N ARGS" >&2
        exit 2
        ;;
esac
