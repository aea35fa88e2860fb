#!/usr/bin/env bash
# Provision a private RabbitMQ node (Debian's rabbitmq-server package, no Docker) for
# conformance tests: the same scenarios run against warren and against real RabbitMQ.
#
#   conformance/rabbitmq.sh start    install if needed, start (idempotent), print the AMQP URL
#   conformance/rabbitmq.sh stop     stop our node (and only our node)
#   conformance/rabbitmq.sh status   exit 0 and print the URL if our node answers AMQP
#   conformance/rabbitmq.sh version  print the version of the running node
#   conformance/rabbitmq.sh ctl ARGS rabbitmqctl ARGS against our node (e.g. set_vm_memory_high_watermark 0.4)
#
# Environment:
#   WARREN_RABBIT_DIR        state dir (mnesia, logs, config)   default /tmp/warren-rabbitmq
#   RABBIT_PORT              AMQP port, bound on 127.0.0.1 only default 5673
#   RABBIT_DIST_PORT         Erlang distribution port           default RABBIT_PORT + 20000
#   WARREN_RABBIT_NODE       Erlang node name                   default warren-conf@localhost
#   RABBIT_START_TIMEOUT     seconds to wait for AMQP           default 90
#   RABBIT_MANAGEMENT_PORT   enable the management plugin on 127.0.0.1:PORT   default off
#
# Only the AMQP URL goes to stdout (last line); everything else goes to stderr.
# Must run as root (it may apt-get install and it uses root's Erlang cookie).
set -euo pipefail

STATE_DIR="${WARREN_RABBIT_DIR:-/tmp/warren-rabbitmq}"
PORT="${RABBIT_PORT:-5673}"
DIST_PORT="${RABBIT_DIST_PORT:-$((PORT + 20000))}"
NODE="${WARREN_RABBIT_NODE:-warren-conf@localhost}"
START_TIMEOUT="${RABBIT_START_TIMEOUT:-90}"
URL="amqp://guest:guest@127.0.0.1:${PORT}/%2f"

RMQ_BIN=/usr/lib/rabbitmq/bin   # the real scripts; /usr/sbin/rabbitmqctl would `su rabbitmq`
PID_FILE="$STATE_DIR/$NODE.pid"          # written by RabbitMQ itself: the beam.smp pid
WRAPPER_PID_FILE="$STATE_DIR/wrapper.pid" # the rabbitmq-server shell wrapper
LOG_DIR="$STATE_DIR/log"
STARTUP_LOG="$LOG_DIR/startup.log"

log() { printf 'rabbitmq.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

# rabbitmqctl and the node must read the same Erlang cookie: the one in root's home,
# whatever HOME the caller happens to have.
HOME="$(getent passwd 0 | cut -d: -f6)"
HOME="${HOME:-/root}"
export HOME
export LC_ALL=C.UTF-8 LANG=C.UTF-8

export RABBITMQ_NODENAME="$NODE"
export RABBITMQ_USE_LONGNAME=false
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$PORT"
export RABBITMQ_DIST_PORT="$DIST_PORT"
export RABBITMQ_CTL_DIST_PORT_MIN="$((DIST_PORT + 10000))"
export RABBITMQ_CTL_DIST_PORT_MAX="$((DIST_PORT + 10010))"
export RABBITMQ_MNESIA_BASE="$STATE_DIR/mnesia"
export RABBITMQ_LOG_BASE="$LOG_DIR"
export RABBITMQ_CONFIG_FILE="$STATE_DIR/rabbitmq.conf"
export RABBITMQ_ADVANCED_CONFIG_FILE="$STATE_DIR/advanced.config"
export RABBITMQ_CONF_ENV_FILE="$STATE_DIR/rabbitmq-env.conf" # keep /etc/rabbitmq out of it
export RABBITMQ_ENABLED_PLUGINS_FILE="$STATE_DIR/enabled_plugins"
export RABBITMQ_PID_FILE="$PID_FILE"
# Erlang distribution only on loopback too.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
# epmd (shared by every Erlang node on the machine) on loopback too, if we are the one
# that starts it.
export ERL_EPMD_ADDRESS="${ERL_EPMD_ADDRESS:-127.0.0.1}"

# (arrays, not functions, so that `timeout` can run them)
CTL=("$RMQ_BIN/rabbitmqctl" -n "$NODE")
DIAG=("$RMQ_BIN/rabbitmq-diagnostics" -n "$NODE")

# ---------------------------------------------------------------------------------------
# Installation

POLICY_RC_CREATED=0
remove_policy_rc() {
    if [ "$POLICY_RC_CREATED" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=0
    fi
}

ensure_installed() {
    if [ -x "$RMQ_BIN/rabbitmq-server" ] && [ -x "$RMQ_BIN/rabbitmqctl" ]; then
        return 0
    fi
    log "rabbitmq-server is not installed: installing it from Debian's packages"
    # Keep the package's own service from being started by its postinst: invoke-rc.d and
    # deb-systemd-invoke both obey policy-rc.d (exit 101 = action forbidden).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# temporary, written by warren conformance/rabbitmq.sh\nexit 101\n' \
            > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
        trap remove_policy_rc EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -q >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        rabbitmq-server >&2
    remove_policy_rc
    [ -x "$RMQ_BIN/rabbitmq-server" ] || die "rabbitmq-server still missing after apt-get install"
}

# Stop and disable the Debian package's default node (rabbit@<host>, port 5672), should
# anything have started it: it would take 5672 away from warren.
stop_debian_default_node() {
    if [ -d /run/systemd/system ] && command -v systemctl > /dev/null 2>&1; then
        if systemctl is-active --quiet rabbitmq-server 2> /dev/null; then
            log "stopping the Debian rabbitmq-server service"
            timeout 60 systemctl stop rabbitmq-server >&2 2>&1 || true
        fi
        if systemctl is-enabled --quiet rabbitmq-server 2> /dev/null; then
            systemctl disable rabbitmq-server >&2 2>&1 || true
        fi
    fi
    # Whatever started it (systemd, the init script, a postinst without policy-rc.d), the
    # package's node runs as the `rabbitmq` user and writes one of these pid files.
    local f pid pids="" rmq_uid
    for f in /run/rabbitmq/pid /var/run/rabbitmq/pid /var/lib/rabbitmq/mnesia/*.pid; do
        [ -f "$f" ] && pids="$pids $(tr -dc 0-9 < "$f" || true)"
    done
    if rmq_uid="$(id -u rabbitmq 2> /dev/null)"; then
        for f in /proc/[0-9]*; do
            pid="${f#/proc/}"
            if is_beam "$pid" && [ "$(stat -c %u "$f" 2> /dev/null)" = "$rmq_uid" ]; then
                pids="$pids $pid"
            fi
        done
    fi
    # shellcheck disable=SC2086 # $pids is a list of numbers, split on purpose
    for pid in $(printf '%s\n' $pids | sort -un); do
        if is_beam "$pid" && ! is_our_process "$pid"; then
            log "stopping the Debian package's default RabbitMQ node (pid $pid)"
            kill_and_wait "$pid" 30
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Processes

is_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2> /dev/null; }

is_beam() { # pid -> true if it is an Erlang VM
    is_alive "$1" && case "$(cat "/proc/$1/comm" 2> /dev/null)" in beam*) true ;; *) false ;; esac
}

cmdline_has() { # pid string
    is_alive "$1" && tr '\0' ' ' < "/proc/$1/cmdline" 2> /dev/null | grep -qF -- "$2"
}

# RabbitMQ >= 3.9 names the node at run time (no -sname on the command line), so a VM is
# recognised as ours by the environment it inherited from this script.
is_our_process() { # pid
    is_alive "$1" && tr '\0' '\n' < "/proc/$1/environ" 2> /dev/null \
        | grep -qxF -- "RABBITMQ_NODENAME=$NODE"
}

# pid of our beam.smp, or nothing
our_node_pid() {
    local pid="" d
    [ -f "$PID_FILE" ] && pid="$(tr -dc 0-9 < "$PID_FILE" || true)"
    if [ -n "$pid" ] && is_beam "$pid" && is_our_process "$pid"; then
        echo "$pid"
        return 0
    fi
    # The pid file appears only once RabbitMQ's prelaunch ran: look for the VM itself.
    for d in /proc/[0-9]*; do
        pid="${d#/proc/}"
        if is_beam "$pid" && is_our_process "$pid"; then
            echo "$pid"
            return 0
        fi
    done
    return 0
}

wrapper_pid() {
    local pid=""
    [ -f "$WRAPPER_PID_FILE" ] && pid="$(tr -dc 0-9 < "$WRAPPER_PID_FILE" || true)"
    if [ -n "$pid" ] && cmdline_has "$pid" "rabbitmq-server" && is_our_process "$pid"; then
        echo "$pid"
    fi
    return 0
}

kill_and_wait() { # pid seconds: TERM, wait, then KILL
    local pid="$1" secs="$2" i
    is_alive "$pid" || return 0
    kill -TERM "$pid" 2> /dev/null || true
    for ((i = 0; i < secs * 5; i++)); do
        is_alive "$pid" || return 0
        sleep 0.2
    done
    log "pid $pid ignored SIGTERM for ${secs}s: SIGKILL"
    kill -KILL "$pid" 2> /dev/null || true
    for ((i = 0; i < 25; i++)); do
        is_alive "$pid" || return 0
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------------------
# Probes

# True if something on 127.0.0.1:$PORT answers an AMQP 0-9-1 protocol header with a
# method frame (connection.start), i.e. a frame whose first octet is 1.
amqp_probe() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 5 bash -c '
        exec 3<> "/dev/tcp/127.0.0.1/$1" || exit 1
        printf "AMQP\000\000\011\001" >&3
        b="$(head -c 1 <&3 | od -An -tx1 | tr -d " \n")"
        exec 3<&- 3>&-
        [ "$b" = "01" ]' probe "$PORT" 2> /dev/null
}

port_in_use() {
    # shellcheck disable=SC2016
    timeout 3 bash -c 'exec 3<> "/dev/tcp/127.0.0.1/$1"' probe "$1" 2> /dev/null
}

report_version() {
    local v
    v="$(timeout 60 "${DIAG[@]}" -q server_version 2> /dev/null | tail -n 1 || true)"
    if [ -z "$v" ]; then
        v="$(timeout 60 "${CTL[@]}" -q status 2> /dev/null | sed -n 's/^RabbitMQ version: //p' | head -n 1 || true)"
    fi
    if [ -n "$v" ]; then
        echo "$v" > "$STATE_DIR/version"
        log "RabbitMQ version: $v (node $NODE, AMQP $URL, state $STATE_DIR)"
    else
        log "RabbitMQ version: unknown (could not ask node $NODE)"
    fi
}

show_logs() {
    local f
    for f in "$STARTUP_LOG" "$LOG_DIR/$NODE.log"; do
        if [ -f "$f" ]; then
            log "---- last lines of $f ----"
            tail -n 40 "$f" >&2 || true
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Commands

write_config() {
    mkdir -p "$STATE_DIR" "$RABBITMQ_MNESIA_BASE" "$LOG_DIR"
    cat > "$RABBITMQ_CONFIG_FILE" << EOF
# generated by conformance/rabbitmq.sh: a private node for warren's conformance tests
listeners.tcp.1 = 127.0.0.1:${PORT}
listeners.ssl = none
loopback_users.guest = true
# a nearly full /tmp must not block publishers in the tests
disk_free_limit.absolute = 1MB
log.file.level = info
log.console = false
EOF
    echo '[].' > "$RABBITMQ_ADVANCED_CONFIG_FILE"
    if [ -n "${RABBIT_MANAGEMENT_PORT:-}" ]; then
        # the management plugin on loopback, for conformance/management_diff.py
        printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$RABBIT_MANAGEMENT_PORT" \
            >> "$RABBITMQ_CONFIG_FILE"
        echo '[rabbitmq_management].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
    else
        echo '[].' > "$RABBITMQ_ENABLED_PLUGINS_FILE" # no plugins (no management on 15672)
    fi
    : > "$RABBITMQ_CONF_ENV_FILE"
}

ensure_cookie() {
    local c="$HOME/.erlang.cookie"
    if [ ! -s "$c" ]; then
        mkdir -p "$HOME"
        (umask 077 && head -c 64 /dev/urandom | od -An -tx1 | tr -dc 'a-f0-9' | head -c 32 \
            | tr 'a-f' 'A-F' > "$c")
    fi
    chown 0:0 "$c" 2> /dev/null || true
    chmod 400 "$c"
}

cmd_start() {
    mkdir -p "$STATE_DIR"
    exec 9> "$STATE_DIR/.lock"
    flock -w 300 9 || die "could not lock $STATE_DIR/.lock"

    local pid
    pid="$(our_node_pid)"
    if [ -n "$pid" ] && amqp_probe; then
        log "node $NODE already running (pid $pid) and answering on 127.0.0.1:$PORT"
        if [ -s "$STATE_DIR/version" ]; then
            log "RabbitMQ version: $(cat "$STATE_DIR/version") (node $NODE, state $STATE_DIR)"
        else
            report_version
        fi
        echo "$URL"
        return 0
    fi

    ensure_installed
    stop_debian_default_node

    if [ -z "$pid" ]; then
        if port_in_use "$PORT"; then
            die "127.0.0.1:$PORT is taken by another process (not node $NODE); set RABBIT_PORT"
        fi
        write_config
        ensure_cookie
        rm -f "$PID_FILE" "$STATE_DIR/version"
        log "starting node $NODE (AMQP 127.0.0.1:$PORT, distribution port $DIST_PORT)"
        # Detached: own session, no stdin, output to a log file, and no other file descriptor
        # of ours (our lock's, and whatever our caller left open: a caller's `flock` lock held
        # by a node that outlives the caller would never be released). The rabbitmq-server
        # wrapper shell stays the VM's parent and stops it on SIGTERM.
        (
            cd "$STATE_DIR"
            for fd in /proc/$BASHPID/fd/*; do
                fd="${fd##*/}"
                if [ "$fd" -gt 2 ] 2> /dev/null; then eval "exec $fd>&-" 2> /dev/null || true; fi
            done
            setsid "$RMQ_BIN/rabbitmq-server" > "$STARTUP_LOG" 2>&1 < /dev/null &
            echo $! > "$WRAPPER_PID_FILE"
        )
    else
        log "node $NODE is running (pid $pid) but not answering yet: waiting"
    fi

    local start=$SECONDS ok=0
    while ((SECONDS - start < START_TIMEOUT)); do
        if amqp_probe; then
            ok=1
            break
        fi
        if [ -z "$(our_node_pid)" ] && [ -z "$(wrapper_pid)" ] && ((SECONDS - start > 5)); then
            show_logs
            die "node $NODE exited during start-up"
        fi
        sleep 0.5
    done
    if [ "$ok" != 1 ]; then
        show_logs
        die "node $NODE did not accept AMQP on 127.0.0.1:$PORT within ${START_TIMEOUT}s"
    fi
    if ! timeout 60 "${CTL[@]}" -q await_startup --timeout 30 >&2 2>&1; then
        log "warning: rabbitmqctl await_startup failed (AMQP answers anyway)"
    fi
    log "node $NODE answering AMQP after $((SECONDS - start))s"
    report_version
    echo "$URL"
}

cmd_stop() {
    mkdir -p "$STATE_DIR"
    exec 9> "$STATE_DIR/.lock"
    flock -w 300 9 || die "could not lock $STATE_DIR/.lock"

    local pid wpid
    pid="$(our_node_pid)"
    wpid="$(wrapper_pid)"
    if [ -z "$pid" ] && [ -z "$wpid" ]; then
        log "node $NODE is not running"
        rm -f "$PID_FILE" "$WRAPPER_PID_FILE"
        return 0
    fi
    if [ -n "$pid" ]; then
        log "stopping node $NODE (pid $pid)"
        # `stop <pid_file>` returns once the VM has exited.
        if ! timeout 60 "${CTL[@]}" -q stop "$PID_FILE" >&2 2>&1; then
            log "rabbitmqctl stop failed: signalling pid $pid"
        fi
        kill_and_wait "$pid" 20
    fi
    [ -n "$wpid" ] && kill_and_wait "$wpid" 10
    # Leftovers: any VM of our node still around (e.g. a start that never wrote a pid file).
    pid="$(our_node_pid)"
    while [ -n "$pid" ]; do
        kill_and_wait "$pid" 10
        pid="$(our_node_pid)"
    done
    rm -f "$PID_FILE" "$WRAPPER_PID_FILE"
    log "node $NODE stopped"
}

cmd_status() {
    if [ -n "$(our_node_pid)" ] && amqp_probe; then
        echo "$URL"
        return 0
    fi
    log "node $NODE is not running"
    return 1
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    version)
        cmd_status > /dev/null && report_version
        cat "$STATE_DIR/version"
        ;;
    ctl)
        shift
        timeout 60 "${CTL[@]}" -q "$@"
        ;;
    *)
        echo "usage: $0 start|stop|status|version|ctl ARGS" >&2
        exit 2
        ;;
esac
