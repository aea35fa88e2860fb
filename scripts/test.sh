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

step "python venv (pika, pytest)"
scripts/python-venv.sh > /dev/null

step "unit and integration tests"
cargo test --workspace --locked
