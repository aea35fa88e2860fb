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

# The load rows of compare.sh and ab.sh (compare.sh adds the idle-connections row):
# name | warren perf scenario | metric from its --json summary | flags
# shellcheck disable=SC2034 # used by the scripts that source this file
BENCH_ROWS=(
    "16 B transient, autoack, 1 pub 1 con (msg/s)|throughput|consumed_per_sec|--size 16"
    "1 KiB, manual ack, prefetch 100, ack every 10 (msg/s)|throughput|consumed_per_sec|--size 1024 --manual-ack --prefetch 100 --ack-every 10"
    "16 B, 10 pub 10 con on 10 queues (msg/s)|throughput|consumed_per_sec|--size 16 --producers 10 --consumers 10 --queues 10"
    "16 B fanout to 10 queues (deliveries/s)|fanout|consumed_per_sec|--queues 10 --size 16"
    "1 KiB persistent, durable queue, confirms window 1000 (confirmed/s)|throughput|confirmed_per_sec|--size 1024 --persistent --confirm 1000"
    "1 KiB transient, confirms window 1000 (confirmed/s)|throughput|confirmed_per_sec|--size 1024 --confirm 1000"
    "latency at 1000 msg/s, p99 (µs, lower is better)|latency|p99_us|--rate 1000"
    "queue declare/bind/delete (cycles/s)|churn|cycles_per_sec|"
)
