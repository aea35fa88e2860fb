#!/usr/bin/env python3
"""The disk alone, as warren's journal uses it: append BATCH bytes to a file, fdatasync, again,
for SECONDS per batch size; print batches/s, MB/s and what that bounds 1 KiB persistent
messages to (each costs RECORD bytes on disk). A benchmark, printed, never asserted.

    bench/disk.py [--dir DIR] [--seconds 3] [--sizes 16K,64K,256K,1M,4M] [--record 1100]

The file grows by appending (as a journal segment does; fdatasync then also writes the size
change) and is removed at the end. DIR defaults to a temporary directory under the data
directory's filesystem (the current directory), not /tmp (which may be tmpfs).
"""

import argparse
import os
import tempfile
import time


def parse_size(text):
    text = text.strip().upper()
    for suffix, factor in (("K", 1024), ("M", 1024 * 1024)):
        if text.endswith(suffix):
            return int(text[:-1]) * factor
    return int(text)


def measure(directory, batch, seconds, segment_bytes):
    """Append `batch` bytes + fdatasync in a loop for `seconds`: (batches, bytes, elapsed)."""
    block = os.urandom(batch)
    path = os.path.join(directory, "disk-bench.seg")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    batches = 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            if written and written % segment_bytes < batch:
                # a new segment, as the journal rolls: truncate and start again
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, block)
            os.fdatasync(fd)
            written += batch
            batches += 1
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        os.unlink(path)
    return batches, written, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir in the current directory)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--sizes", default="4K,16K,64K,256K,1M,4M")
    ap.add_argument("--record", type=int, default=1100, help="bytes on disk per 1 KiB message (body + header)")
    ap.add_argument("--segment", default="64M", help="roll the file after this many bytes")
    args = ap.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="warren-disk-", dir=os.getcwd())
    made = args.dir is None
    try:
        print(f"disk: {directory} (append + fdatasync per batch, {args.seconds:g} s per size)")
        print(f"{'batch':>8} {'batches/s':>10} {'MB/s':>8} {'ms/batch':>9} {'1 KiB msgs/s bound':>19}")
        for size in (parse_size(s) for s in args.sizes.split(",")):
            batches, written, elapsed = measure(directory, size, args.seconds, parse_size(args.segment))
            rate = batches / elapsed
            mbps = written / elapsed / 1e6
            bound = written / elapsed / args.record
            print(f"{size // 1024:>7}K {rate:>10.0f} {mbps:>8.1f} {1000 / rate:>9.2f} {bound:>19,.0f}")
    finally:
        if made:
            os.rmdir(directory)


if __name__ == "__main__":
    main()
