#!/usr/bin/env bash
# What fraction of the disk's fdatasync-bound write rate warren's confirmed persistent row
# reaches (issue 22), printed, never asserted. RUNS (3) times, one after the other:
#   1. warren (release) runs the compare.sh row "1 KiB persistent, durable queue, confirms
#      window 1000" for DURATION (10s) on a data dir on this disk, while `perf stat` counts its
#      fdatasync calls and /proc/PID/io its bytes written: the journal's batch size (bytes per
#      fdatasync) and bytes on disk per confirmed message;
#   2. bench/disk.py appends that very batch size + fdatasync in a loop on the same
#      filesystem (the disk alone, no broker): the messages per second the disk allows at that
#      batch size;
#   3. the fraction: warren's confirmed/s over that bound.
#
#   bench/disk.sh                        # RUNS=3 DURATION=10s
#   BUILD=0 BIN=path/to/warren bench/disk.sh
#
# Needs root for perf's syscall tracepoints (installs Debian's linux-perf when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10s}"
WARREN_PORT="${WARREN_PORT:-5691}"

# shellcheck source=bench/lib.sh
. bench/lib.sh
warren_release_bin
if ! command -v perf > /dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-perf > /dev/null
fi

# data on the disk under test (the repository's filesystem), not /tmp
DATA_ROOT="$(mktemp -d "$PWD/target/disk-bench.XXXXXX")"
WARREN_PID=""
cleanup() {
    [ -z "$WARREN_PID" ] || kill "$WARREN_PID" 2> /dev/null || true
    wait 2> /dev/null || true
    rm -rf "$DATA_ROOT"
}
trap cleanup EXIT
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
written_bytes() { awk '/^write_bytes:/ {print $2}' "/proc/$1/io"; }

echo "$(date -u +%Y-%m-%dT%H:%MZ) warren $(git rev-parse --short HEAD) $(nproc) cores, disk: $(df -h --output=source . | tail -n 1)"
printf '%-4s %12s %10s %12s %10s %14s %9s\n' run confirmed/s B/msg fdatasync/s batch_KiB disk_bound/s fraction
for run in $(seq "$RUNS"); do
    rm -rf "$DATA_ROOT/data" && mkdir -p "$DATA_ROOT/data"
    WARREN_NO_CHAT=true WARREN_LOG=warn "$BIN" --amqp-bind "127.0.0.1:$WARREN_PORT" --data-dir "$DATA_ROOT/data" \
        > "$DATA_ROOT/warren.log" 2>&1 &
    WARREN_PID=$!
    for _ in $(seq 500); do ss -ltnH "sport = :$WARREN_PORT" | grep -q . && break; sleep 0.01; done
    before=$(written_bytes "$WARREN_PID")
    secs="${DURATION%s}"
    # perf counts fdatasync over the measured window only: the perf run's warm-up is 1 s
    perf stat -x, -e syscalls:sys_enter_fdatasync -p "$WARREN_PID" -o "$DATA_ROOT/perf.csv" -- sleep $((secs + 1)) &
    PERF_PID=$!
    json=$("$BIN" perf throughput --uri "amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f" --size 1024 --persistent \
        --confirm 1000 --duration "$DURATION" --warmup 1s --json)
    wait "$PERF_PID" || true
    after=$(written_bytes "$WARREN_PID")
    kill "$WARREN_PID" && wait "$WARREN_PID" 2> /dev/null || true
    WARREN_PID=""
    confirmed=$(echo "$json" | json_field confirmed_per_sec)
    syncs=$(awk -F, '/fdatasync/ {print $1}' "$DATA_ROOT/perf.csv")
    # bytes and syncs cover warm-up + measured window (secs + 1 s); confirmed/s the measured part
    read -r per_msg sync_rate batch < <(python3 -c "
b=$after-$before; s=max(int('$syncs'),1); t=$secs+1; c=$confirmed*t
print(round(b/max(c,1)), round(s/t), max(4096, b//s))")
    bound=$(python3 bench/disk.py --dir "$DATA_ROOT" --seconds 3 --sizes "$batch" --record "$per_msg" |
        awk 'NR>2 {gsub(",", "", $5); print $5}')
    printf '%-4s %12.0f %10s %12s %10s %14s %8.0f%%\n' "$run" "$confirmed" "$per_msg" "$sync_rate" \
        "$((batch / 1024))" "$bound" "$(python3 -c "print(100*$confirmed/max($bound,1))")"
done
