#!/usr/bin/env bash
# Run the conformance suite: every scenario against RabbitMQ (the reference, provisioned by
# conformance/rabbitmq.sh) and against warren (started here from its binary on an ephemeral
# loopback port), compare the transcripts, write conformance/REPORT.md and DIFFERENCES.md.
#
#   conformance/run.sh                          everything; exit 1 if any scenario differs
#   conformance/run.sh --only queue.purge       only scenarios whose name contains the pattern
#   conformance/run.sh --only NAME --broker rabbit|warren   print one broker's transcripts
#   conformance/run.sh --list                   list the scenarios
#
# Environment:
#   WARREN_BIN     warren binary to test            default target/debug/warren (not built here)
#   RABBIT_PORT    AMQP port of the RabbitMQ node   default 5673 (see conformance/rabbitmq.sh)
#   RABBIT_STOP    1: stop RabbitMQ at the end; 0: leave it running;
#                  default: stop it only if this script started it
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf 'run.sh: %s\n' "$*" >&2; }

broker=""
list=0
prev=""
for a in "$@"; do
    [ "$prev" = "--broker" ] && broker="$a"
    case "$a" in --broker=*) broker="${a#--broker=}" ;; --list) list=1 ;; esac
    prev="$a"
done

# Python: the project's venv, plus the suite's own pinned requirements.
VENV="$(bash scripts/python-venv.sh)"
REQ="$ROOT/conformance/requirements.txt"
STAMP="$VENV/.conformance-requirements.sha256"
sum="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2> /dev/null || true)" != "$sum" ]; then
    log "installing $(grep -v '^#' "$REQ" | tr '\n' ' ')"
    PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -r "$REQ" >&2
    echo "$sum" > "$STAMP"
fi
PY="$VENV/bin/python"

if [ "$list" = 1 ]; then
    exec "$PY" conformance/run.py --list "$@"
fi

# RabbitMQ: the reference (not needed to print warren's transcripts alone).
started_rabbit=0
rabbit_args=()
if [ "$broker" != "warren" ]; then
    if ! bash conformance/rabbitmq.sh status > /dev/null 2>&1; then
        started_rabbit=1
    fi
    url="$(bash conformance/rabbitmq.sh start | tail -n 1)"
    hostport="${url#*@}"
    hostport="${hostport%%/*}"
    rabbit_args=(--rabbit "$hostport")
fi
stop_rabbit() {
    local stop="${RABBIT_STOP:-$started_rabbit}"
    if [ "$stop" = 1 ]; then
        bash conformance/rabbitmq.sh stop || true
    fi
}
trap stop_rabbit EXIT

# warren: run.py starts it from the binary (waiting if it is being rebuilt) and stops it.
WARREN_BIN="${WARREN_BIN:-target/debug/warren}"
status=0
"$PY" conformance/run.py "${rabbit_args[@]}" --warren-bin "$WARREN_BIN" "$@" || status=$?
exit "$status"
