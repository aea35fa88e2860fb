"""RabbitMQ extensions beyond the basics covered elsewhere: dead-lettering on expiry and
length limits, x-overflow, argument validation, single active consumer, consumer priorities
with prefetch, direct reply-to, alternate-exchange chains and exchange bindings."""

import time

from harness import T, scenario


def _q(ev):
    return ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "?"


def _dead_letter_note(t: T, c, queue: str) -> None:
    """basic.get from a dead-letter queue, noting the stable parts of x-death (not its time)."""
    got = c.call(1, "basic.get", queue=queue, no_ack=True, _record=False)
    if got is None or got.name != "basic.get-ok":
        t.note("nothing dead-lettered")
        return
    h = got.props.get("headers", {})
    death = h.get("x-death")
    first = death.value[0].value if death is not None else {}
    t.note(f"dead-lettered body={got.body!r} exchange={got['exchange']!r} routing_key={got['routing_key']!r}")
    t.note(f"props keys={sorted(k for k in got.props if k != 'headers')} headers keys={sorted(h)}")
    t.note(f"x-death entries={len(death.value) if death is not None else 0} keys={sorted(first)}")
    for k in ("reason", "queue", "exchange", "routing-keys", "count", "original-expiration"):
        if k in first:
            t.note(f"x-death[0].{k}={first[k]!r}")
    for k in ("x-first-death-reason", "x-first-death-queue", "x-first-death-exchange"):
        if k in h:
            t.note(f"{k}={h[k]!r}")


@scenario
def dead_letter_on_expiry_with_routing_key(t: T):
    """x-message-ttl + x-dead-letter-exchange + x-dead-letter-routing-key: expired messages are
    republished by the broker itself (nobody reads the queue) with reason expired."""
    q, dlq = t.n("delay"), t.n("dlq")
    c = t.connect()
    c.declare_queue(1, dlq)
    c.declare_queue(1, q, arguments={"x-message-ttl": 50, "x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": dlq})
    c.publish(1, "amq.direct", "nothing-bound", "lost")
    c.publish(1, "", q, "later", props={"expiration": "10000", "message_id": "m"})
    time.sleep(0.4)
    c.declare_queue(1, q, passive=True)
    _dead_letter_note(t, c, dlq)
    c.call(1, "queue.delete", queue=dlq)
    c.call(1, "queue.delete", queue=q)
    c.close()


@scenario
def dead_letter_maxlen_drop_head(t: T):
    """x-max-length=1 with a dead-letter exchange: the dropped head is dead-lettered (maxlen)."""
    q, dlq, dlx = t.n("q"), t.n("dlq"), t.n("dlx")
    c = t.connect(sync=True)
    c.declare_exchange(1, dlx, "fanout")
    c.declare_queue(1, dlq)
    c.bind(1, dlq, dlx)
    c.declare_queue(1, q, arguments={"x-max-length": 1, "x-dead-letter-exchange": dlx})
    c.publish(1, "", q, "first")
    c.publish(1, "", q, "second")
    time.sleep(0.1)
    c.declare_queue(1, q, passive=True)
    _dead_letter_note(t, c, dlq)
    c.get(1, q, no_ack=True)
    c.call(1, "exchange.delete", exchange=dlx)
    c.call(1, "queue.delete", queue=dlq)
    c.call(1, "queue.delete", queue=q)
    c.close()


@scenario
def reject_publish_dlx(t: T):
    """x-overflow=reject-publish-dlx: the refused publish is nacked and dead-lettered."""
    q, dlq, dlx = t.n("q"), t.n("dlq"), t.n("dlx")
    c = t.connect()
    c.declare_exchange(1, dlx, "fanout")
    c.declare_queue(1, dlq)
    c.bind(1, dlq, dlx)
    c.declare_queue(1, q, arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                     "x-dead-letter-exchange": dlx})
    c.call(1, "confirm.select")
    c.publish(1, "", q, "fits")
    c.publish(1, "", q, "refused")
    c.confirms(1, 2)
    time.sleep(0.1)
    c.declare_queue(1, q, passive=True)
    _dead_letter_note(t, c, dlq)
    c.call(1, "exchange.delete", exchange=dlx)
    c.call(1, "queue.delete", queue=dlq)
    c.call(1, "queue.delete", queue=q)
    c.close()


@scenario
def max_length_bytes(t: T):
    """x-max-length-bytes=10: bodies beyond ten ready bytes push the oldest out."""
    q = t.n("q")
    c = t.connect(sync=True)
    c.declare_queue(1, q, exclusive=True, arguments={"x-max-length-bytes": 10})
    for body in ("12345", "67890", "abc"):
        c.publish(1, "", q, body)
    c.declare_queue(1, q, passive=True)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def argument_validation(t: T):
    """Invalid x- arguments: each refused with RabbitMQ's 406 text; valid ones accepted."""
    c = t.connect()
    cases = [
        {"x-overflow": "nope"},
        {"x-overflow": 1},
        {"x-queue-mode": "fast"},
        {"x-single-active-consumer": 1},
        {"x-dead-letter-exchange": 5},
        {"x-dead-letter-routing-key": "k"},
        {"x-max-priority": 256},
        {"x-max-priority": "a"},
        {"x-max-length-bytes": -1},
        {"x-expires": -3},
        {"x-message-ttl": True},
        {"x-queue-mode": "lazy", "x-max-priority": 255, "x-single-active-consumer": False},
    ]
    for i, args in enumerate(cases):
        ev = c.declare_queue(1, t.n(f"q{i}"), exclusive=True, arguments=args)
        if ev is not None and ev.name == "channel.close":
            c.channel(1)
    c.close()


@scenario
def invalid_expiration_property(t: T):
    """The expiration property must be a non-negative integer: 406 otherwise."""
    c = t.connect()
    q = _q(c.declare_queue(1, "", exclusive=True))
    c.publish(1, "", q, "x", props={"expiration": "abc"})
    c.expect("channel.close", "channel.close")
    c.channel(1)
    q = _q(c.declare_queue(1, "", exclusive=True))
    c.publish(1, "", q, "x", props={"expiration": "-5"})
    c.expect("channel.close", "channel.close")
    c.channel(1)
    c.publish(1, "", q, "ok", props={"expiration": "0"})
    c.close()


@scenario
def single_active_consumer(t: T):
    """x-single-active-consumer: only the first consumer receives; the next takes over on cancel."""
    c = t.connect()
    p = t.connect("pub", sync=True)
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True, arguments={"x-single-active-consumer": True})
    c.consume(1, q, tag="first", no_ack=True)
    c.consume(1, q, tag="second", no_ack=True)
    p.publish(1, "", q, "m0")
    p.publish(1, "", q, "m1")
    c.deliveries(1, 2)
    c.call(1, "basic.cancel", consumer_tag="first")
    p.publish(1, "", q, "m2")
    c.deliveries(1, 1)
    p.close()
    c.close()


@scenario
def consumer_priority_falls_back_when_full(t: T):
    """x-priority with prefetch 1: the high-priority consumer takes one, the low one the rest."""
    c = t.connect()
    p = t.connect("pub", sync=True)
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.call(1, "basic.qos", prefetch_count=1)
    c.consume(1, q, tag="high", arguments={"x-priority": 5})
    c.consume(1, q, tag="low", arguments={"x-priority": -5})
    for i in range(3):
        p.publish(1, "", q, f"m{i}")
    c.deliveries(1, 2)
    p.close()
    c.close()


@scenario
def direct_reply_to_errors(t: T):
    """amq.rabbitmq.reply-to: consuming with acks, twice, or publishing without a reply consumer."""
    c = t.connect()
    c.consume(1, "amq.rabbitmq.reply-to", tag="r", no_ack=False)
    c.channel(1)
    c.consume(1, "amq.rabbitmq.reply-to", tag="r1", no_ack=True)
    c.consume(1, "amq.rabbitmq.reply-to", tag="r2", no_ack=True)
    c.channel(1)
    c.publish(1, "", "nowhere", "x", props={"reply_to": "amq.rabbitmq.reply-to"})
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def direct_reply_to_round_trip(t: T):
    """A request with reply_to=amq.rabbitmq.reply-to; the reply to the rewritten name arrives."""
    c = t.connect()
    s = t.connect("srv")
    q = t.n("rpc")
    s.declare_queue(1, q, exclusive=True)
    c.consume(1, "amq.rabbitmq.reply-to", tag="replies", no_ack=True)
    c.publish(1, "", q, "ping", props={"reply_to": "amq.rabbitmq.reply-to", "correlation_id": "7"})
    time.sleep(0.1)
    got = s.get(1, q, no_ack=True)
    reply_to = got.props.get("reply_to", b"") if got is not None and got.name == "basic.get-ok" else b""
    if isinstance(reply_to, bytes):
        reply_to = reply_to.decode()
    s.publish(1, "", reply_to, "pong", props={"correlation_id": "7"})
    c.deliveries(1, 1)
    s.close()
    c.close()


@scenario
def direct_reply_to_passive_declare(t: T):
    """Passive declares of the pseudo-queue and of a reply name, before and after consuming."""
    c = t.connect()
    c.declare_queue(1, "amq.rabbitmq.reply-to", passive=True)
    c.consume(1, "amq.rabbitmq.reply-to", tag="r", no_ack=True)
    c.declare_queue(1, "amq.rabbitmq.reply-to", passive=True)
    c.declare_queue(1, "amq.rabbitmq.reply-to.bogus", passive=True)
    c.channel(1)
    c.declare_queue(1, "amq.rabbitmq.reply-to", passive=False)
    c.close()


@scenario
def ttl_zero_reaches_a_waiting_consumer(t: T):
    """x-message-ttl 0 and expiration "0": delivered to a consumer that can take it at once,
    dead-lettered (expired) when nobody can."""
    c = t.connect()
    q, dlq = t.n("ttl0"), t.n("ttl0-dl")
    c.declare_queue(1, dlq)
    c.declare_queue(1, q, arguments={"x-message-ttl": 0, "x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": dlq})
    c.publish(1, "", q, "nobody")
    time.sleep(0.1)
    c.get(1, q, no_ack=True)
    _dead_letter_note(t, c, dlq)
    c.consume(1, q, tag="now", no_ack=True)
    c.publish(1, "", q, "taken")
    c.deliveries(1, 1)
    plain = t.n("exp0")
    c.declare_queue(1, plain)
    c.consume(1, plain, tag="p", no_ack=True)
    c.publish(1, "", plain, "per-message", props={"expiration": "0"})
    c.deliveries(1, 1)
    c.close()


def _alarm_blocks_publishers(t: T, set_alarm: list[str], clear_alarm: list[str]) -> None:
    """Set a resource alarm with the broker's control tool: a connection that publishes gets
    connection.blocked and its message waits; a connection that only reads is neither blocked
    nor stopped; when the alarm clears, connection.unblocked and the held message arrives."""
    q = t.n("held")
    reader = t.connect("reader")
    reader.declare_queue(1, q)
    pub = t.connect("pub")
    if not t.ctl(set_alarm, undo=clear_alarm):
        return
    time.sleep(0.3)
    pub.publish(1, "", q, "held")
    pub.expect("connection.blocked", "connection.blocked")
    reader.declare_queue(1, q, passive=True)
    reader.settle(0.3)
    t.ctl(clear_alarm)
    pub.expect("connection.unblocked", "connection.unblocked")
    time.sleep(0.3)
    reader.declare_queue(1, q, passive=True)
    reader.get(1, q, no_ack=True)
    reader.call(1, "queue.delete", queue=q)
    reader.close()
    pub.close()


@scenario
def memory_alarm_blocks_publishers_until_it_clears(t: T):
    """A memory alarm (set_vm_memory_high_watermark below what the broker uses) blocks
    publishers with "low on memory" until the watermark is raised again."""
    _alarm_blocks_publishers(t, ["set_vm_memory_high_watermark", "0.0000001"], ["set_vm_memory_high_watermark", "0.4"])


@scenario
def disk_alarm_blocks_publishers_until_it_clears(t: T):
    """A disk alarm (set_disk_free_limit above the free space) blocks publishers with "low on
    disk" until the limit is lowered again."""
    _alarm_blocks_publishers(t, ["set_disk_free_limit", "100000GB"], ["set_disk_free_limit", "50MB"])


@scenario
def close_all_connections_forces_320(t: T):
    """`close_all_connections <explanation>` (rabbitmqctl, warren ctl) closes every client
    connection with 320 CONNECTION_FORCED and the explanation; new connections open as usual."""
    a = t.connect("a")
    b = t.connect("b")
    a.declare_queue(1, "", exclusive=True)
    if not t.ctl(["close_all_connections", "maintenance window"]):
        return
    a.expect_closed()
    b.expect_closed()
    t.check_broker_alive()
