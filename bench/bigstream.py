#!/usr/bin/env python3
"""A long stream (bench/bigstream.sh drives it): fill a stream queue with --gib GiB of
--size-byte bodies as fast as the broker takes them (raw frames on pika's socket, TCP and
the broker's flow control pushing back), sampling the broker's RSS; or time how long a
consumer waits for its first delivery from an offset ("first", "last", a number).

    fill  --uri U --pid P --queue Q --gib G --size S    -> JSON: published, seconds, peak RSS
    read  --uri U --queue Q --offset first --count N    -> JSON: first delivery after s, N after s
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hardening import body_frame, connect, publish_frames, raw_socket, rss_bytes, send_all  # noqa: E402


def declare(ch, queue: str) -> None:
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "stream"})


def cmd_fill(a) -> None:
    conn = connect(a.uri)
    ch = conn.channel()
    declare(ch, a.queue)
    total = int(a.gib * (1 << 30)) // a.size
    peak = {"rss": rss_bytes(a.pid)}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], rss_bytes(a.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sock = raw_socket(conn)
    frame = publish_frames(1, "", a.queue, a.size, False) + body_frame(1, b"x" * a.size)
    batch = frame * max(1, (256 << 10) // len(frame))
    per_batch = len(batch) // len(frame)
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        n = min(per_batch, total - sent)
        send_all(conn, sock, batch if n == per_batch else frame * n)
        sent += n
    # everything is in once a confirmed publish on another channel of this connection is
    # (a connection's frames are taken in order; a stream confirms once on disk, in order)
    marker = conn.channel()
    marker.confirm_delivery()
    marker.basic_publish("", a.queue, b"end")
    secs = time.perf_counter() - t0
    stop.set()
    sampler.join()
    print(json.dumps({"published": total, "bytes": total * a.size, "seconds": secs,
                      "peak_rss": peak["rss"], "rss_after": rss_bytes(a.pid)}))
    conn.close()


def cmd_read(a) -> None:
    t0 = time.perf_counter()
    conn = connect(a.uri)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=500)
    offset: object = a.offset if a.offset in ("first", "last", "next") else int(a.offset)
    got = {"n": 0, "first": None}

    def on_message(c, method, _props, _body) -> None:
        got["n"] += 1
        if got["first"] is None:
            got["first"] = time.perf_counter() - t0
        c.basic_ack(method.delivery_tag, multiple=True)
        if got["n"] >= a.count:
            c.stop_consuming()

    ch.basic_consume(a.queue, on_message, arguments={"x-stream-offset": offset})
    ch.start_consuming()
    print(json.dumps({"offset": a.offset, "first_delivery_s": got["first"], "count": got["n"],
                      "seconds": time.perf_counter() - t0}))
    conn.close()


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill")
    f.add_argument("--uri", required=True)
    f.add_argument("--pid", type=int, required=True)
    f.add_argument("--queue", default="bigstream")
    f.add_argument("--gib", type=float, default=10.0)
    f.add_argument("--size", type=int, default=65536)
    f.set_defaults(fn=cmd_fill)
    r = sub.add_parser("read")
    r.add_argument("--uri", required=True)
    r.add_argument("--queue", default="bigstream")
    r.add_argument("--offset", default="first")
    r.add_argument("--count", type=int, default=1)
    r.set_defaults(fn=cmd_read)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
