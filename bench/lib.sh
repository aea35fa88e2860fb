# Sourced by the bench scripts (from the repository root).

# Build warren in release mode unless BUILD=0, then set BIN to the absolute path of the warren
# binary to measure (BIN=path chooses another one); stop if there is none.
warren_release_bin() {
    if [ "${BUILD:-1}" = 1 ]; then
        echo "building warren (release)..." >&2
        cargo build --release --locked -q -p warren
    fi
    BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/warren}"
    BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
    [ -x "$BIN" ] || { echo "no warren binary at $BIN" >&2; exit 1; }
}
