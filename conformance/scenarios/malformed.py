"""Malformed and out-of-order frames (which real clients never send). After each, a
bystander connection opened beforehand and a fresh connection must be unaffected."""

import random
import struct

from amqp_raw import (
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    PROTOCOL_HEADER,
    encode_header,
    encode_method,
    enc_shortstr,
    frame,
)
from harness import T, scenario


def _garbage(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


def _malformed(t: T, act, handshake: bool = True, settle: float = 0.3):
    """Run act on connection c with a bystander connection open; then, if c is still open,
    check whether its channel 1 still works; then the bystander and a fresh connection."""
    by = t.connect("bystander")
    c = t.connect("c") if handshake else t.raw("c")
    act(c)
    c.settle(settle)
    if not c.eof:
        c.rec("(connection still open: is channel 1 usable?)")
        c.declare_queue(1, "", exclusive=True)
        c.settle()
    if not c.eof:
        c.close()
    t.check_conn_alive(by)
    t.check_broker_alive()
    by.close(_record=False)


@scenario
def random_bytes_after_header(t: T):
    """Protocol header, connection.start, then 64 random octets instead of start-ok."""
    def act(c):
        c.raw_mode = True
        c.send_raw(PROTOCOL_HEADER, "protocol header AMQP 0-9-1")
        c.expect("connection.start", "connection.start")
        c.send_raw(_garbage(64, 1), "64 random octets")
    by = t.connect("bystander")
    c = t.raw("c")
    act(c)
    c.expect_silent_close()
    t.check_conn_alive(by)
    t.check_broker_alive()


@scenario
def random_bytes_after_open(t: T):
    """An open connection receives 64 random octets."""
    _malformed(t, lambda c: c.send_raw(b"\x07" + _garbage(63, 2), "64 random octets (first octet 7)"))


@scenario
def bad_frame_type(t: T):
    """A frame of type 5 (no such type) on channel 1."""
    _malformed(t, lambda c: c.send_frame(5, 1, b"\x00\x01\x02", note="frame type 5 on ch1"))


@scenario
def bad_frame_end(t: T):
    """A well-formed queue.declare whose frame-end octet is 0x00 instead of 0xCE."""
    _malformed(t, lambda c: c.send_frame(FRAME_METHOD, 1, encode_method("queue.declare", queue=""), end=0,
                                         note="ch1 queue.declare with frame-end 0x00"))


@scenario
def frame_over_frame_max(t: T):
    """A body frame larger than the negotiated frame_max (131072)."""
    def act(c):
        c.send_raw(frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key="x"))
                   + frame(FRAME_HEADER, 1, encode_header(60, 200000, {}))
                   + frame(FRAME_BODY, 1, b"\0" * 140000),
                   "ch1 basic.publish, header (size 200000), one body frame of 140000 octets")
    _malformed(t, act)


@scenario
def method_frame_over_frame_max(t: T):
    """A method frame larger than frame_max (queue.declare with a 140000-octet arguments table)."""
    def act(c):
        payload = encode_method("queue.declare", queue="", arguments={"x-big": "a" * 140000})
        c.send_frame(FRAME_METHOD, 1, payload, note=f"ch1 queue.declare method frame of {len(payload)} octets")
    _malformed(t, act)


@scenario
def huge_frame_size_field(t: T):
    """A frame header announcing a 2 GiB payload (only the header is sent)."""
    _malformed(t, lambda c: c.send_raw(struct.pack(">BHI", 1, 1, 0x7FFFFFFF), "frame header: type 1, ch1, size 2^31-1"))


@scenario
def body_without_header(t: T):
    """A content body frame on channel 1 with no publish or header before it."""
    _malformed(t, lambda c: c.send_frame(FRAME_BODY, 1, b"orphan", note="ch1 body frame 'orphan'"))


@scenario
def header_without_publish(t: T):
    """A content header frame on channel 1 with no basic.publish before it."""
    _malformed(t, lambda c: c.send_frame(FRAME_HEADER, 1, encode_header(60, 3, {}), note="ch1 content header (size 3)"))


@scenario
def body_on_channel_zero(t: T):
    """A content body frame on channel 0."""
    _malformed(t, lambda c: c.send_frame(FRAME_BODY, 0, b"x", note="ch0 body frame"))


@scenario
def header_on_channel_zero(t: T):
    """A content header frame on channel 0."""
    _malformed(t, lambda c: c.send_frame(FRAME_HEADER, 0, encode_header(60, 1, {}), note="ch0 content header"))


@scenario
def publish_on_unopened_channel(t: T):
    """basic.publish + header + body on a channel never opened."""
    _malformed(t, lambda c: c.publish(7, "", "x", "m"))


@scenario
def heartbeat_on_channel_one(t: T):
    """A heartbeat frame on channel 1."""
    _malformed(t, lambda c: c.heartbeat(1))


@scenario
def heartbeat_with_payload(t: T):
    """A heartbeat frame on channel 0 carrying a payload."""
    _malformed(t, lambda c: c.send_frame(FRAME_HEARTBEAT, 0, b"abc", note="ch0 heartbeat with 3 octets"))


@scenario
def unknown_class_id(t: T):
    """A method frame with class id 99."""
    _malformed(t, lambda c: c.send_frame(FRAME_METHOD, 1, struct.pack(">HH", 99, 10), note="ch1 method 99/10"))


@scenario
def unknown_method_id(t: T):
    """A method frame with class 60 (basic) and method id 99."""
    _malformed(t, lambda c: c.send_frame(FRAME_METHOD, 1, struct.pack(">HH", 60, 99), note="ch1 method 60/99"))


@scenario
def unknown_method_on_channel_zero(t: T):
    """A method frame with class 10 (connection) and method id 99 on channel 0."""
    _malformed(t, lambda c: c.send_frame(FRAME_METHOD, 0, struct.pack(">HH", 10, 99), note="ch0 method 10/99"))


@scenario
def truncated_method_payload(t: T):
    """queue.declare cut short in the middle of its queue name."""
    def act(c):
        payload = encode_method("queue.declare", queue="truncated-name")[:10]
        c.send_frame(FRAME_METHOD, 1, payload, note="ch1 queue.declare truncated to 10 octets")
    _malformed(t, act)


@scenario
def method_frame_too_short(t: T):
    """A method frame with a 2-octet payload (no method id)."""
    _malformed(t, lambda c: c.send_frame(FRAME_METHOD, 1, b"\x00\x32", note="ch1 method frame payload 0x0032"))


@scenario
def empty_method_frame(t: T):
    """A method frame with an empty payload."""
    _malformed(t, lambda c: c.send_frame(FRAME_METHOD, 1, b"", note="ch1 method frame with empty payload"))


@scenario
def trailing_octets_in_method(t: T):
    """basic.qos followed by 4 extra octets inside the same method frame."""
    def act(c):
        c.send_frame(FRAME_METHOD, 1, encode_method("basic.qos", prefetch_count=1) + b"\xde\xad\xbe\xef",
                     note="ch1 basic.qos + 4 trailing octets")
    by = t.connect("bystander")
    c = t.connect("c")
    act(c)
    c.settle(0.3)
    if not c.eof:
        c.declare_queue(1, "", exclusive=True)
        c.settle()
    if not c.eof:
        c.close()
    t.check_conn_alive(by)


@scenario
def bad_field_table_type(t: T):
    """queue.declare whose arguments table holds a value of unknown type 'Z'."""
    def act(c):
        table = enc_shortstr("k") + b"Z" + b"\x00\x00\x00\x01"
        payload = (struct.pack(">HHH", 50, 10, 0) + enc_shortstr("") + b"\x00"
                   + struct.pack(">I", len(table)) + table)
        c.send_frame(FRAME_METHOD, 1, payload, note="ch1 queue.declare, arguments {k: type 'Z'}")
    _malformed(t, act)


@scenario
def body_larger_than_declared(t: T):
    """Content header declares 5 octets, the body frame carries 10."""
    def act(c):
        ev = c.declare_queue(1, "", exclusive=True)
        q = ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "x"
        c.send_raw(frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key=q))
                   + frame(FRAME_HEADER, 1, encode_header(60, 5, {}))
                   + frame(FRAME_BODY, 1, b"0123456789"),
                   "ch1 basic.publish, header (size 5), body frame of 10 octets")
        c.settle(0.2)
        if not c.eof:
            c.get(1, q, no_ack=True)
    _malformed(t, act)


@scenario
def method_interrupts_content(t: T):
    """basic.publish and its header, then queue.declare before the body."""
    def act(c):
        c.send_raw(frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key="x"))
                   + frame(FRAME_HEADER, 1, encode_header(60, 10, {}))
                   + frame(FRAME_METHOD, 1, encode_method("queue.declare", queue="", exclusive=True)),
                   "ch1 basic.publish, header (size 10), then queue.declare")
    _malformed(t, act)


@scenario
def publish_without_header(t: T):
    """basic.publish followed directly by another basic.publish."""
    def act(c):
        c.send_raw(frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key="x")) * 2,
                   "ch1 basic.publish, basic.publish")
    _malformed(t, act)


@scenario
def header_class_mismatch(t: T):
    """basic.publish followed by a content header whose class id is 50 (queue)."""
    def act(c):
        c.send_raw(frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key="x"))
                   + frame(FRAME_HEADER, 1, encode_header(50, 1, {})) + frame(FRAME_BODY, 1, b"x"),
                   "ch1 basic.publish, header with class 50, body")
    _malformed(t, act)


@scenario
def body_after_empty_content(t: T):
    """A header declaring an empty body, then a body frame anyway."""
    def act(c):
        c.send_raw(frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key="x"))
                   + frame(FRAME_HEADER, 1, encode_header(60, 0, {})) + frame(FRAME_BODY, 1, b"extra"),
                   "ch1 basic.publish, header (size 0), body frame 'extra'")
    _malformed(t, act)


@scenario
def empty_body_frames_accepted(t: T):
    """Zero-length body frames inside a content are accepted."""
    by = t.connect("bystander")
    c = t.connect("c")
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "x"
    c.send_raw(frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key=q))
               + frame(FRAME_HEADER, 1, encode_header(60, 3, {})) + frame(FRAME_BODY, 1, b"")
               + frame(FRAME_BODY, 1, b"abc"),
               "ch1 basic.publish, header (size 3), empty body frame, body 'abc'")
    c.settle(0.2)
    if not c.eof:
        c.get(1, q, no_ack=True)
        c.close()
    t.check_conn_alive(by)


@scenario
def content_on_closing_channel_ignored(t: T):
    """After a channel error, a publish with its content sent before close-ok is ignored."""
    by = t.connect("bystander")
    c = t.connect("c")
    c.auto_close_ok = False
    c.declare_queue(1, "missing-" + t.token, passive=True)
    c.publish(1, "", "x", "ignored")
    c.send(1, "queue.declare", queue="", exclusive=True)
    c.settle(0.2)
    c.send(1, "channel.close-ok")
    c.auto_close_ok = True
    c.channel(1)
    c.declare_queue(1, "", exclusive=True)
    c.close()
    t.check_conn_alive(by)


@scenario
def client_sends_server_method(t: T):
    """The client sends basic.deliver (a server-to-client method)."""
    def act(c):
        c.send(1, "basic.deliver", consumer_tag="x", delivery_tag=1, exchange="", routing_key="x")
    _malformed(t, act)


@scenario
def client_sends_connection_start(t: T):
    """The client sends connection.start on an open connection."""
    def act(c):
        c.send(0, "connection.start", version_major=0, version_minor=9, server_properties={},
               mechanisms="PLAIN", locales="en_US")
    _malformed(t, act)


@scenario
def second_protocol_header(t: T):
    """The protocol header sent again on an open connection."""
    _malformed(t, lambda c: c.send_raw(PROTOCOL_HEADER, "protocol header again"))


@scenario
def stray_body_on_closing_channel(t: T):
    """After a channel error, a body frame with no publish, sent before close-ok."""
    def act(c):
        c.auto_close_ok = False
        c.declare_queue(1, "missing-" + t.token, passive=True)
        c.send_frame(FRAME_BODY, 1, b"stray", note="ch1 stray body frame")
        c.settle(0.2)
        c.auto_close_ok = True
        c.send(1, "channel.close-ok")
    _malformed(t, act)


@scenario
def queue_name_not_utf8(t: T):
    """queue.declare whose queue name is the octets FF FE (not UTF-8)."""
    _malformed(t, lambda c: c.send(1, "queue.declare", queue=b"\xff\xfe"))


@scenario
def exchange_name_not_utf8(t: T):
    """exchange.declare whose exchange name is the octets C3 28 (not UTF-8)."""
    _malformed(t, lambda c: c.send(1, "exchange.declare", exchange=b"\xc3\x28", type="direct"))
