#!/usr/bin/env bash
# Browser test of the management dashboard: build warren, then management/browser/
# dashboard.test.mjs starts it on loopback ports (port 0, a temporary data directory) and
# drives headless Chromium with playwright-core (the chat tests' copy, chat-web/browser).
# Installs Debian's chromium, nodejs and npm when missing, and the npm package.
# Screenshots: target/dashboard-screenshots/ (or $1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
# Never skip for want of a dependency: install what is missing, or fail.
MISSING=()
[ -x /usr/bin/chromium ] || MISSING+=(chromium)
command -v node > /dev/null || MISSING+=(nodejs)
command -v npm > /dev/null || MISSING+=(npm)
if [ "${#MISSING[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update -q
    $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${MISSING[@]}"
fi
if [ ! -d chat-web/browser/node_modules/playwright-core ]; then
    (cd chat-web/browser && npm ci --no-audit --no-fund)
fi

cargo build --locked -p warren
BIN="${WARREN_BIN:-${CARGO_TARGET_DIR:-target}/debug/warren}"
node management/browser/dashboard.test.mjs "$BIN" "${1:-target/dashboard-screenshots}"
