"""basic.publish: mandatory, immediate, properties, bodies, sizes, user_id."""

from amqp_raw import Decimal, Value
from harness import T, scenario


def _q(c):
    ev = c.declare_queue(1, "", exclusive=True)
    return ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "?"


@scenario
def mandatory_unroutable_returned(t: T):
    """mandatory + no route: basic.return 312 NO_ROUTE with the whole message."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    c.publish(1, x, "nowhere", "lost", props={"content_type": "text/plain", "headers": {"h": 1}}, mandatory=True)
    c.expect("basic.return", "basic.return")
    c.settle()
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def mandatory_routable_not_returned(t: T):
    """mandatory + a route: no return, the message is queued."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, "kept", mandatory=True)
    c.get(1, q, no_ack=True)
    c.settle()
    c.close()


@scenario
def not_mandatory_unroutable_dropped(t: T):
    """Without mandatory an unroutable message is dropped silently."""
    c = t.connect()
    c.publish(1, "amq.direct", "nobody-" + t.token, "dropped")
    c.settle(0.2)
    c.declare_queue(1, "", exclusive=True)
    c.close()


@scenario
def immediate_refused(t: T):
    """immediate=true: RabbitMQ refuses it (540 NOT_IMPLEMENTED, connection closed)."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, "now", immediate=True)
    c.settle()
    c.expect_closed()
    t.check_broker_alive()


@scenario
def all_properties_roundtrip(t: T):
    """Every basic property and a table with every field type survive publish -> get."""
    c = t.connect()
    q = _q(c)
    headers = {
        "bool": Value("t", True),
        "i8": Value("b", -5),
        "u8": Value("B", 250),
        "i16": Value("s", -300),
        "u16": Value("u", 60000),
        "i32": Value("I", -70000),
        "u32": Value("i", 4000000000),
        "i64": Value("l", -(2**40)),
        "float": Value("f", 1.5),
        "double": Value("d", 2.25),
        "decimal": Value("D", Decimal(2, 12345)),
        "longstr": Value("S", b"hello"),
        "bytes": Value("x", b"\x00\x01\xff"),
        "array": Value("A", [Value("I", 1), Value("S", b"two"), Value("t", False)]),
        "timestamp": Value("T", 1700000000),
        "table": Value("F", {"nested": Value("S", b"yes"), "n": Value("I", 2)}),
        "void": Value("V", None),
    }
    props = {
        "content_type": "application/json",
        "content_encoding": "gzip",
        "headers": headers,
        "delivery_mode": 2,
        "priority": 7,
        "correlation_id": "corr-1",
        "reply_to": "reply.q",
        "expiration": "60000",
        "message_id": "msg-1",
        "timestamp": 1700000001,
        "type": "kind",
        "user_id": "guest",
        "app_id": "conformance",
        "cluster_id": "cl",
    }
    c.publish(1, "", q, "payload", props=props)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def properties_roundtrip_consume(t: T):
    """Properties and headers arrive the same through basic.deliver."""
    c = t.connect()
    q = _q(c)
    c.consume(1, q, tag="p", no_ack=True)
    c.publish(1, "", q, "x", props={"content_type": "text/plain", "delivery_mode": 1, "priority": 0,
                                     "headers": {"k": "v", "n": Value("l", 5)}})
    c.deliveries(1, 1)
    c.close()


@scenario
def empty_body(t: T):
    """A message with an empty body (header frame, no body frame)."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, b"")
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def large_body_multiple_frames(t: T):
    """A 300 000-octet body split over several frames arrives intact, re-framed by frame_max."""
    c = t.connect()
    q = _q(c)
    body = bytes(range(256)) * 1172
    c.publish(1, "", q, body)
    got = c.get(1, q, no_ack=True)
    t.note(f"body intact: {got is not None and got.body == body}")
    c.close()


@scenario
def body_in_tiny_frames(t: T):
    """A body sent as many 1-octet body frames is reassembled."""
    c = t.connect()
    q = _q(c)
    from amqp_raw import FRAME_BODY, FRAME_HEADER, FRAME_METHOD, encode_header, encode_method, frame
    data = frame(FRAME_METHOD, 1, encode_method("basic.publish", exchange="", routing_key=q))
    data += frame(FRAME_HEADER, 1, encode_header(60, 10, {}))
    for b in b"0123456789":
        data += frame(FRAME_BODY, 1, bytes([b]))
    c.send_raw(data, "ch1 basic.publish + header(size 10) + 10 body frames of 1 octet")
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def routing_key_max_length(t: T):
    """A 255-octet routing key (the shortstr maximum) works."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    key = "k" * 255
    q = _q(c)
    c.bind(1, q, x, key)
    c.publish(1, x, key, "long-key")
    c.get(1, q, no_ack=True)
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def user_id_mismatch(t: T):
    """user_id different from the connection's user: 406 PRECONDITION_FAILED."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, "spoof", props={"user_id": "mallory"})
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def user_id_match(t: T):
    """user_id equal to the connection's user is accepted and delivered."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, "me", props={"user_id": "guest"})
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def publish_order_preserved(t: T):
    """Ten messages published on one channel are delivered in order."""
    c = t.connect()
    q = _q(c)
    for i in range(10):
        c.publish(1, "", q, f"m{i}")
    c.consume(1, q, no_ack=True)
    evs = c.deliveries(1, 10)
    t.note("order: " + " ".join(e.body.decode() for e in evs))
    c.close()


@scenario
def publish_on_two_channels_fanout_copy(t: T):
    """One message to a fanout with two queues gives each its own copy; acking one leaves the other."""
    c = t.connect(sync=True)
    x = t.n("fan")
    c.declare_exchange(1, x, "fanout")
    q1, q2 = _q(c), _q(c)
    c.bind(1, q1, x)
    c.bind(1, q2, x)
    c.publish(1, x, "", "shared")
    c.get(1, q1, no_ack=True)
    c.get(1, q2)
    c.declare_queue(1, q1, passive=True)
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def max_message_size_exceeded(t: T):
    """A body larger than max_message_size (default 128 MiB): 406 PRECONDITION_FAILED."""
    c = t.connect()
    q = _q(c)
    size = 128 * 1024 * 1024 + 1
    body = b"\0" * size
    c.publish(1, "", q, body)
    c.expect("channel.close", "channel.close", timeout=2.0)
    c.channel(1)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def publish_persistent_to_transient_queue(t: T):
    """delivery_mode=2 to a non-durable queue keeps the property."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, "p", props={"delivery_mode": 2})
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def priority_queue_order(t: T):
    """x-max-priority queue: higher priority messages come first."""
    c = t.connect()
    q = t.n("prio")
    c.declare_queue(1, q, exclusive=True, arguments={"x-max-priority": 5})
    for p in (1, 5, 3, 0, 9):
        c.publish(1, "", q, f"p{p}", props={"priority": p})
    for _ in range(5):
        c.get(1, q, no_ack=True)
    c.close()
