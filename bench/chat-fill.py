#!/usr/bin/env python3
"""Fill a chat room with COUNT messages as fast as the broker takes them (raw frames on
pika's socket, as bench/bigstream.py): JSON bodies published to exchange `chat` with routing
key room.<ROOM>, shown as from the AMQP user of --uri (a bot). Used by bench/chat-history.sh
and the browser test of a 100,000-message room (chat-web/browser/history.test.mjs).

    chat-fill.py --uri amqp://bot:secret@127.0.0.1:5672/chat --room r123 --count 100000
    -> JSON: {"published": N, "seconds": S}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hardening import body_frame, connect, raw_socket, send_all  # noqa: E402

import pika  # noqa: E402


def frames(channel: int, room: str, user: str, body: bytes) -> bytes:
    props = pika.spec.BasicProperties(content_type="application/json", user_id=user)
    return (
        pika.frame.Method(channel, pika.spec.Basic.Publish(exchange="chat", routing_key=f"room.{room}")).marshal()
        + pika.frame.Header(channel, len(body), props).marshal()
        + body_frame(channel, body)
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--uri", required=True)
    p.add_argument("--room", required=True)
    p.add_argument("--count", type=int, required=True)
    a = p.parse_args()
    user = pika.URLParameters(a.uri).credentials.username
    conn = connect(a.uri)
    conn.channel()  # channel 1: the raw frames' channel
    sock = raw_socket(conn)
    t0 = time.perf_counter()
    sent = 0
    run = uuid.uuid4().hex[:8]
    while sent < a.count:
        n = min(1000, a.count - sent)
        now = int(time.time() * 1000)
        batch = b"".join(
            frames(1, a.room, user, json.dumps({
                "id": f"fill-{run}-{sent + i}", "kind": "message", "ts": now,
                "text": f"message {sent + i} of the fill: some words to make it look like chat",
            }).encode())
            for i in range(n)
        )
        send_all(conn, sock, batch)
        sent += n
    # all are in once a confirmed publish on another channel of this connection is
    marker = conn.channel()
    marker.confirm_delivery()
    marker.basic_publish("chat", f"room.{a.room}", json.dumps({"id": f"fill-{run}-end", "text": "fill done"}).encode(),
                         pika.BasicProperties(content_type="application/json", user_id=user))
    print(json.dumps({"published": a.count, "seconds": round(time.perf_counter() - t0, 2)}))
    conn.close()


if __name__ == "__main__":
    main()
