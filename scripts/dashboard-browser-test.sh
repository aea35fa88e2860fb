#!/usr/bin/env bash
# Browser test of the management dashboard: build warren, then management/browser/
# dashboard.test.mjs starts it on loopback ports (port 0, a temporary data directory) and
# drives headless Chromium with playwright-core (the chat tests' copy, chat-web/browser).
# Installs Debian's chromium, nodejs and npm when missing, and the npm package.
# Screenshots: target/dashboard-screenshots/ (or $1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/browser-deps.sh
. scripts/browser-deps.sh
ensure_browser_deps

cargo build --locked -p warren
BIN="${WARREN_BIN:-${CARGO_TARGET_DIR:-target}/debug/warren}"
node management/browser/dashboard.test.mjs "$BIN" "${1:-target/dashboard-screenshots}"
