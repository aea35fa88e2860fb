"""Stream queues (x-queue-type=stream) over AMQP 0-9-1: declaration rules, offsets, the
x-stream-offset header, credit, and what a stream refuses."""

from harness import T, scenario

STREAM = {"x-queue-type": "stream"}


def _stream(t: T, c, name: str = "s", **extra):
    q = t.n(name)
    c.declare_queue(1, q, durable=True, arguments={**STREAM, **extra})
    return q


@scenario
def declare_non_durable(t: T):
    """A stream must be durable: 406."""
    c = t.connect()
    c.declare_queue(1, t.n("s"), arguments=STREAM)
    c.close()


@scenario
def declare_exclusive_or_auto_delete(t: T):
    """A stream is never exclusive nor auto-delete: 406 each."""
    c = t.connect()
    c.declare_queue(1, t.n("s"), durable=True, exclusive=True, arguments=STREAM)
    c.channel(2)
    c.declare_queue(2, t.n("s"), durable=True, auto_delete=True, arguments=STREAM)
    c.close()


@scenario
def declare_redeclare_and_passive(t: T):
    """Declare, redeclare the same, declare as classic (406), passive counts after publishing."""
    c = t.connect(sync=True)
    q = _stream(t, c)
    c.declare_queue(1, q, durable=True, arguments=STREAM)
    for i in range(3):
        c.publish(1, "", q, f"m{i}")
    c.channel(2)
    c.declare_queue(2, q, durable=True)
    c.close()


@scenario
def consume_needs_prefetch(t: T):
    """Consuming a stream without basic.qos: refused."""
    c = t.connect()
    q = _stream(t, c)
    c.consume(1, q, tag="c1")
    c.close()


@scenario
def consume_no_ack_refused(t: T):
    """Consuming a stream with no-ack: refused."""
    c = t.connect()
    q = _stream(t, c)
    c.call(1, "basic.qos", prefetch_count=10)
    c.consume(1, q, tag="c1", no_ack=True)
    c.close()


@scenario
def get_refused(t: T):
    """basic.get on a stream: refused."""
    c = t.connect()
    q = _stream(t, c)
    c.get(1, q)
    c.close()


@scenario
def offsets_first_number_last_next(t: T):
    """Consumers from first, a number, last and next each see the entries from there, with x-stream-offset headers."""
    c = t.connect(sync=True)
    q = _stream(t, c)
    for i in range(4):
        c.publish(1, "", q, f"m{i}", props={"headers": {"k": i}})
    c.channel(2)
    c.call(2, "basic.qos", prefetch_count=10)
    c.consume(2, q, tag="first", arguments={"x-stream-offset": "first"})
    c.deliveries(2, 4)
    c.consume(2, q, tag="two", arguments={"x-stream-offset": 2})
    c.deliveries(2, 2)
    # Which of several stream consumers is served first is not specified: keep one.
    c.call(2, "basic.cancel", consumer_tag="first")
    c.call(2, "basic.cancel", consumer_tag="two")
    c.consume(2, q, tag="next", arguments={"x-stream-offset": "next"})
    c.deliveries(2, 0)
    c.publish(1, "", q, "m4")
    c.deliveries(2, 1)
    c.close()


@scenario
def credit_returns_with_acks(t: T):
    """prefetch 2: two deliveries, then one more per ack; the stream keeps everything (a second
    consumer reads all five from the first offset)."""
    c = t.connect(sync=True)
    q = _stream(t, c)
    for i in range(5):
        c.publish(1, "", q, f"m{i}")
    c.channel(2)
    c.call(2, "basic.qos", prefetch_count=2)
    c.consume(2, q, tag="c", arguments={"x-stream-offset": "first"})
    ds = c.deliveries(2, 2)
    if ds:
        c.ack(2, ds[0]["delivery_tag"])
    c.deliveries(2, 1)
    # (Not a passive queue.declare: RabbitMQ 3.10 reports a stream's message_count as 0 or 5
    # from one run to the next.)
    c.channel(3)
    c.call(3, "basic.qos", prefetch_count=10)
    c.consume(3, q, tag="again", arguments={"x-stream-offset": "first"})
    c.deliveries(3, 5)
    c.close()


@scenario
def invalid_max_age(t: T):
    """x-max-age that is not an interval: refused."""
    c = t.connect()
    _stream(t, c, **{"x-max-age": "seven days"})
    c.close()


@scenario
def bound_to_topic_exchange(t: T):
    """A stream bound to a topic exchange keeps only what routes to it."""
    c = t.connect(sync=True)
    q = _stream(t, c)
    x = t.n("x")
    c.declare_exchange(1, x, "topic")
    c.bind(1, q, x, "room.#")
    for key in ("room.a", "other", "room.b"):
        c.publish(1, x, key, key)
    c.channel(2)
    c.call(2, "basic.qos", prefetch_count=10)
    c.consume(2, q, tag="c", arguments={"x-stream-offset": "first"})
    c.deliveries(2, 2)
    c.close()


@scenario
def purge_and_delete(t: T):
    """queue.purge on a stream, then queue.delete with its message count."""
    c = t.connect(sync=True)
    q = _stream(t, c)
    c.publish(1, "", q, "a")
    c.call(1, "queue.purge", queue=q)
    c.channel(2)
    c.call(2, "queue.delete", queue=q)
    c.close()
