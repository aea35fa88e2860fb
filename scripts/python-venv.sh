#!/usr/bin/env bash
# Create (idempotently) the Python virtualenv used by tests/python and print its path.
#
#   scripts/python-venv.sh            -> prints e.g. /path/to/repo/target/venv
#
# Environment:
#   WARREN_VENV   venv location, relative to the repo root unless absolute (default target/venv)
#   PYTHON        interpreter to build the venv from (default python3)
#
# Installs tests/python/requirements.txt; pip runs again only when that file changes.
# Only the venv path goes to stdout; progress goes to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WARREN_VENV:-target/venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
REQ="$ROOT/tests/python/requirements.txt"
PY="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha256"

log() { printf 'python-venv.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$REQ" ] || die "missing $REQ"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive

venv_ok() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys, pip' > /dev/null 2>&1
}

make_venv() { # interpreter
    if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ] && [ -n "$(ls -A "$VENV" 2> /dev/null)" ]; then
        die "$VENV exists and is not a venv: refusing to replace it"
    fi
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$1" -m venv "$VENV" >&2 2>&1 && venv_ok
}

if ! venv_ok; then
    command -v "$PY" > /dev/null 2>&1 || PY=/usr/bin/python3
    log "creating venv $VENV with $PY"
    if ! make_venv "$PY"; then
        # Debian's python3 ships venv/ensurepip in a separate package.
        log "'$PY -m venv' failed: installing python3-venv"
        [ "$(id -u)" = 0 ] || die "python3-venv is needed and only root can apt-get install it"
        apt-get -o DPkg::Lock::Timeout=300 update -q >&2
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
            python3 python3-venv >&2
        make_venv "$PY" || make_venv /usr/bin/python3 || die "cannot create a venv at $VENV"
    fi
    rm -f "$STAMP"
fi

sum="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2> /dev/null || true)" != "$sum" ]; then
    log "installing $(tr '\n' ' ' < "$REQ")"
    "$VENV/bin/python" -m pip install -q -r "$REQ" >&2
    echo "$sum" > "$STAMP"
fi

echo "$VENV"
