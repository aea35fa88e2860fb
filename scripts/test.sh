#!/usr/bin/env bash
# Run every test of warren: lint, unit and integration tests (lapin in-process, the binary,
# pika in a venv), then the conformance suite against a private RabbitMQ from Debian's packages.
# Installs what it needs (python3-venv, rabbitmq-server) when missing. Run as root on a fresh
# Debian machine, or as a user who can run apt-get through sudo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "system tools (strace for the group-commit syscall trace, promtool for /metrics)"
MISSING_TOOLS=()
command -v strace > /dev/null || MISSING_TOOLS+=(strace)
# Debian's prometheus package brings promtool (tests/prometheus.rs: promtool check metrics);
# without its recommends (node exporter). On a machine run by systemd it also enables the
# Prometheus server itself (:9090).
command -v promtool > /dev/null || MISSING_TOOLS+=(prometheus)
if [ ${#MISSING_TOOLS[@]} -gt 0 ]; then
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${MISSING_TOOLS[@]}"
fi

step "python venv (pika, pytest)"
scripts/python-venv.sh > /dev/null

step "rabbitmqadmin v2 (RabbitMQ's CLI for the HTTP API; tests/rabbitmqadmin.rs drives warren with it)"
if [ ! -x target/tools/bin/rabbitmqadmin ]; then
    cargo install rabbitmqadmin --locked --version 2.35.0 --root target/tools
fi

step "unit and integration tests"
cargo test --workspace --locked
# (the chat's API/WebSocket tests ran above against the embedded broker: without
# WARREN_CHAT_AMQP_URL they start warren's broker in-process)

step "chat API/WebSocket tests against RabbitMQ (Debian's package)"
CHAT_RABBIT_ENV="RABBIT_PORT=${CHAT_RABBIT_PORT:-5683} WARREN_RABBIT_NODE=warren-chat-ci@localhost WARREN_RABBIT_DIR=/tmp/warren-rabbitmq-chat-ci"
chat_rabbit() {
    # shellcheck disable=SC2086 # CHAT_RABBIT_ENV is a list of NAME=value words
    env $CHAT_RABBIT_ENV conformance/rabbitmq.sh "$@"
}
CHAT_RABBIT_URL="$(chat_rabbit start | tail -n 1)"
trap 'chat_rabbit stop || true' EXIT
# A second login for the tests' bot (the chat must tell its own messages from a bot's); the
# guest user the URL above names stays the chat's service user.
chat_rabbit ctl add_user chatbot chatbot-secret > /dev/null 2>&1 || chat_rabbit ctl change_password chatbot chatbot-secret > /dev/null
# (bot-*: the request queues of the tests' bots, chat-web/tests/bots.rs; chatbot.*: warren exec's
# queue, chat-web/tests/exec.rs)
chat_rabbit ctl set_permissions -p / chatbot '^(amq\.gen.*|bot-.*|chatbot\..*)$' '^(chat|amq\.default|amq\.gen.*|bot-.*|chatbot\..*)$' '^(chat|amq\.gen.*|bot-.*|chatbot\..*)$' > /dev/null
WARREN_CHAT_AMQP_URL="$CHAT_RABBIT_URL" WARREN_CHAT_BOT_AMQP_URL="${CHAT_RABBIT_URL/guest:guest@/chatbot:chatbot-secret@}" \
    cargo test -p warren-chat --locked --test api --test ws --test identity --test bots --test exec --test sse --test history --test files
# the README's pika bot (tests/python_bots) with the chat on RabbitMQ, as its own login
chat_rabbit ctl add_user pybot pybot-secret > /dev/null 2>&1 || chat_rabbit ctl change_password pybot pybot-secret > /dev/null
PYBOT='^(pybot-.*|amq\.gen.*|amq\.default)$'
chat_rabbit ctl set_permissions -p / pybot "$PYBOT" "$PYBOT" "$PYBOT" > /dev/null
WARREN_PIKA_CHAT_AMQP_URL="$CHAT_RABBIT_URL" WARREN_PIKA_BOT_AMQP_URL="${CHAT_RABBIT_URL/guest:guest@/pybot:pybot-secret@}" \
    cargo test --locked --test clients_python pika_bot_streams_replies_into_a_chat_on_rabbitmq -- --ignored

step "chat front ends on a three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh, tests/chat_cluster.rs)"
as_root_cluster() { if [ "$(id -u)" = 0 ]; then scripts/rabbitmq-cluster.sh "$@"; else sudo scripts/rabbitmq-cluster.sh "$@"; fi; }
trap 'chat_rabbit stop || true; as_root_cluster down || true' EXIT
CLUSTER_URLS="$(as_root_cluster up | tail -n 1)"
# one cluster for every test; they take turns (one stops a node and starts it again)
WARREN_CLUSTER_URLS="$CLUSTER_URLS" cargo test --locked --test chat_cluster -- --ignored --test-threads=1
# a browser behind a load balancer over two front ends, one killed with SIGKILL
CLUSTER_URLS="$CLUSTER_URLS" scripts/chat-cluster-browser-test.sh
as_root_cluster down
trap 'chat_rabbit stop || true' EXIT

step "chat browser tests (Debian chromium + playwright-core), embedded broker and RabbitMQ"
scripts/chat-browser-test.sh
# the browser test makes the broker drop its connections, with rabbitmqctl here
CHAT_BROKER_CTL="env $CHAT_RABBIT_ENV conformance/rabbitmq.sh ctl" WARREN_AMQP_URL="$CHAT_RABBIT_URL" \
    scripts/chat-browser-test.sh

step "management dashboard browser test (Debian chromium + playwright-core)"
scripts/dashboard-browser-test.sh

step "conformance: every scenario against RabbitMQ 3.10 and warren (conformance/run.sh)"
# cargo test has built the binary already (the end-to-end tests run it); this is a no-op then,
# and makes sure the suite never tests a stale one.
cargo build --locked --bin warren
export WARREN_BIN="${WARREN_BIN:-${CARGO_TARGET_DIR:-target}/debug/warren}"
# conformance/rabbitmq.sh installs rabbitmq-server with apt-get when missing and runs a private
# node (127.0.0.1:5673), so it needs root. RABBIT_STOP=1: the node is stopped at the end, pass
# or fail. A differing scenario (not declared in conformance/accepted.py) fails the run.
if [ "$(id -u)" = 0 ]; then
    RABBIT_STOP=1 conformance/run.sh
else
    sudo env "PATH=$PATH" "WARREN_BIN=$WARREN_BIN" RABBIT_STOP=1 conformance/run.sh
fi

step "management API: warren against RabbitMQ 3.10's management plugin (conformance/management_diff.sh)"
if [ "$(id -u)" = 0 ]; then
    conformance/management_diff.sh
else
    sudo env "PATH=$PATH" "WARREN_BIN=$WARREN_BIN" conformance/management_diff.sh
fi
