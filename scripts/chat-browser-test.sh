#!/usr/bin/env bash
# Browser tests of the web chat: build warren, start it on loopback ports (embedded broker, or
# the broker in WARREN_AMQP_URL), drive two headless Chromium contexts with playwright-core,
# over HTTP (chat.test.mjs, files.test.mjs, bots.test.mjs, history.test.mjs), then over
# HTTPS/WSS on a self-signed certificate made here with openssl (tls.test.mjs), then with
# WebSocket blocked (fallback.test.mjs), then a reply whose front end died
# (interrupted.test.mjs). Installs Debian's chromium, nodejs, npm and openssl when missing, and
# the npm package. Screenshots: target/chat-screenshots/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/browser-deps.sh
. scripts/browser-deps.sh
ensure_browser_deps openssl

# WARREN_BIN: a warren built beforehand (e.g. copied out of a target directory that other
# builds share, so that none replaces it while the tests run)
if [ -z "${WARREN_BIN:-}" ]; then cargo build --locked -p warren; fi
BIN="${WARREN_BIN:-${CARGO_TARGET_DIR:-target}/debug/warren}"
HTTP_PORT="${CHAT_HTTP_PORT:-18080}"
HTTPS_PORT="${CHAT_HTTPS_PORT:-18443}"
AMQP_PORT="${CHAT_AMQP_PORT:-15699}"
AMQPS_PORT="${CHAT_AMQPS_PORT:-15698}"
# an administrator by name (--admin), new on every run: the test signs it up and disables bob
export CHAT_ADMIN="root-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
LOG="$(mktemp)"
DATA="$(mktemp -d)"
TLS="$(mktemp -d)"
# a self-signed certificate for 127.0.0.1 (the page is opened with ignoreHTTPSErrors)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$TLS/key.pem" -out "$TLS/cert.pem" 2> /dev/null
"$BIN" --amqp-bind "127.0.0.1:$AMQP_PORT" --http-bind "127.0.0.1:$HTTP_PORT" --data-dir "$DATA" --admin "$CHAT_ADMIN" \
    --tls-cert "$TLS/cert.pem" --tls-key "$TLS/key.pem" \
    --amqps-bind "127.0.0.1:$AMQPS_PORT" --https-bind "127.0.0.1:$HTTPS_PORT" --bot-idle-timeout 3 > "$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2> /dev/null || true; wait "$PID" 2> /dev/null || true; rm -rf "$DATA" "$LOG" "$TLS"' EXIT
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$HTTP_PORT/" > /dev/null 2>&1; then break; fi
    if ! kill -0 "$PID" 2> /dev/null; then cat "$LOG"; echo "warren exited" >&2; exit 1; fi
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$HTTP_PORT/" > /dev/null || { cat "$LOG"; echo "chat did not start" >&2; exit 1; }
if [ -n "${WARREN_AMQP_URL:-}" ]; then
    BROKER=rabbitmq
    # the test makes the broker drop its connections: say how to control that broker
    [ -n "${CHAT_BROKER_CTL:-}" ] || { echo "WARREN_AMQP_URL needs CHAT_BROKER_CTL (e.g. rabbitmqctl)" >&2; exit 1; }
else
    BROKER=embedded
    export CHAT_BROKER_CTL="$BIN ctl --data-dir $DATA"
fi
SHOTS="target/chat-screenshots/$BROKER"
# long histories and live retention (history.test.mjs): a bot fills a room with 100,000
# messages (bench/chat-fill.py, pika) while a 1-minute retention runs out; it runs alongside
# the bots' and the TLS tests
PY="$(scripts/python-venv.sh)/bin/python"
# A broker login of its own for a test's bot: bot_login USER CONFIGURE WRITE READ (permission
# patterns, in the chat's vhost: `chat` on the embedded broker, the URL's on RabbitMQ) prints
# its AMQP URL.
bot_login() {
    local user="$1" vhost url
    if [ -n "${WARREN_AMQP_URL:-}" ]; then
        vhost="${WARREN_AMQP_URL##*/}"
        url="$(printf '%s' "$WARREN_AMQP_URL" | sed -E "s#//[^@/]*@#//$user:$user-secret@#")"
    else
        vhost=chat
        url="amqp://$user:$user-secret@127.0.0.1:$AMQP_PORT/chat"
    fi
    if [ "$vhost" = "%2f" ] || [ -z "$vhost" ]; then vhost=/; fi
    # (one chain: errexit does not reach into the $(...) this runs in)
    { $CHAT_BROKER_CTL add_user "$user" "$user-secret" > /dev/null 2>&1 \
        || $CHAT_BROKER_CTL change_password "$user" "$user-secret" > /dev/null; } \
        && $CHAT_BROKER_CTL set_permissions -p "$vhost" "$user" "$2" "$3" "$4" > /dev/null \
        && printf '%s\n' "$url"
}
FILL_AMQP_URL="$(bot_login fillbot '^fillbot\..*' '^chat$' '^fillbot\..*')"
node chat-web/browser/chat.test.mjs "http://127.0.0.1:$HTTP_PORT" "$SHOTS" || { tail -n 50 "$LOG"; exit 1; }
# file and image sharing (files.test.mjs): the files live in the broker, so this runs on both
node chat-web/browser/files.test.mjs "http://127.0.0.1:$HTTP_PORT" "$SHOTS" || { tail -n 50 "$LOG"; exit 1; }
# (after chat.test.mjs, which makes the broker drop every connection)
FILL_PYTHON="$PY" FILL_AMQP_URL="$FILL_AMQP_URL" node chat-web/browser/history.test.mjs "http://127.0.0.1:$HTTP_PORT" "$SHOTS-history" &
HISTORY_PID=$!
# bots (bots.test.mjs): `warren bot words` as a user of its own, allowed its words-* queues
BOT_AMQP_URL="$(bot_login wordsbot '^words-.*' '^(words-.*|amq\.default)$' '^words-.*')"
WARREN_BIN="$BIN" BOT_AMQP_URL="$BOT_AMQP_URL" node chat-web/browser/bots.test.mjs "http://127.0.0.1:$HTTP_PORT" "$SHOTS" \
    || { tail -n 50 "$LOG"; exit 1; }
curl -fsSk "https://127.0.0.1:$HTTPS_PORT/" > /dev/null || { tail -n 50 "$LOG"; echo "no chat on HTTPS" >&2; exit 1; }
node chat-web/browser/tls.test.mjs "https://127.0.0.1:$HTTPS_PORT" "$SHOTS-tls" || { tail -n 50 "$LOG"; exit 1; }
wait "$HISTORY_PID" || { tail -n 50 "$LOG"; echo "history.test.mjs failed" >&2; exit 1; }
# WebSocket blocked in the pages: Server-Sent Events + POST (fallback.test.mjs)
node chat-web/browser/fallback.test.mjs "http://127.0.0.1:$HTTP_PORT" "$SHOTS" || { tail -n 50 "$LOG"; exit 1; }
# a streaming reply whose front end died: the page marks it interrupted (interrupted.test.mjs)
node chat-web/browser/interrupted.test.mjs "http://127.0.0.1:$HTTP_PORT" "$SHOTS" || { tail -n 50 "$LOG"; exit 1; }
