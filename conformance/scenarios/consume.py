"""basic.consume / basic.cancel / consumer tags / exclusive consumers / round-robin / basic.get."""

import time

from harness import T, scenario


def _q(c, ch=1):
    ev = c.declare_queue(ch, "", exclusive=True)
    return ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "?"


@scenario
def consume_and_cancel(t: T):
    """consume-ok, a delivery, cancel-ok; nothing after the cancel."""
    c = t.connect()
    q = _q(c)
    c.consume(1, q, tag="ct", no_ack=True)
    c.publish(1, "", q, "one")
    c.deliveries(1, 1)
    c.call(1, "basic.cancel", consumer_tag="ct")
    c.publish(1, "", q, "two")
    c.settle(0.2)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def server_generated_tag(t: T):
    """An empty consumer tag gets a server-generated amq.ctag-*; two differ."""
    c = t.connect()
    q = _q(c)
    a = c.consume(1, q)
    b = c.consume(1, q)
    t.note(f"tags differ: {a != b}")
    c.close()


@scenario
def tag_reuse_same_channel(t: T):
    """Reusing a consumer tag on the same channel: 530 NOT_ALLOWED (connection error)."""
    c = t.connect()
    q = _q(c)
    c.consume(1, q, tag="dup")
    c.consume(1, q, tag="dup")
    c.settle()
    c.expect_closed()


@scenario
def tag_reuse_other_channel(t: T):
    """The same consumer tag on two channels is fine."""
    c = t.connect()
    c.channel(2)
    q = _q(c)
    c.consume(1, q, tag="same")
    c.consume(2, q, tag="same")
    c.close()


@scenario
def tag_reuse_after_cancel(t: T):
    """A tag can be reused after its consumer was cancelled."""
    c = t.connect()
    q = _q(c)
    c.consume(1, q, tag="again")
    c.call(1, "basic.cancel", consumer_tag="again")
    c.consume(1, q, tag="again")
    c.close()


@scenario
def cancel_unknown_tag(t: T):
    """Cancelling an unknown consumer tag: cancel-ok all the same."""
    c = t.connect()
    c.call(1, "basic.cancel", consumer_tag="never-existed")
    c.settle()
    if not c.eof:
        c.close()


@scenario
def cancel_nowait(t: T):
    """basic.cancel with no_wait: no cancel-ok, and no more deliveries."""
    c = t.connect()
    q = _q(c)
    c.consume(1, q, tag="nw", no_ack=True)
    c.send(1, "basic.cancel", consumer_tag="nw", no_wait=True)
    c.publish(1, "", q, "after")
    c.settle(0.2)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def consume_nowait(t: T):
    """basic.consume with no_wait and an explicit tag: no consume-ok, deliveries arrive."""
    c = t.connect()
    q = _q(c)
    c.send(1, "basic.consume", queue=q, consumer_tag="quiet", no_ack=True, no_wait=True)
    c.publish(1, "", q, "m")
    c.deliveries(1, 1)
    c.close()


@scenario
def consume_missing_queue(t: T):
    """Consuming from a missing queue: 404."""
    c = t.connect()
    c.consume(1, t.n("nope"))
    c.close()


@scenario
def exclusive_consumer_blocks_others(t: T):
    """An exclusive consumer: a second consumer gets 403 ACCESS_REFUSED."""
    q = t.n("q")
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, q)
    c.consume(1, q, tag="only", exclusive=True)
    c.consume(2, q, tag="second")
    c.close()


@scenario
def exclusive_consumer_when_others_exist(t: T):
    """Asking for an exclusive consumer while another consumer exists: 403."""
    q = t.n("q")
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, q)
    c.consume(1, q, tag="first")
    c.consume(2, q, tag="wants-exclusive", exclusive=True)
    c.close()


@scenario
def exclusive_consumer_released_on_cancel(t: T):
    """After the exclusive consumer is cancelled, others may consume."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q)
    c.consume(1, q, tag="x1", exclusive=True)
    c.call(1, "basic.cancel", consumer_tag="x1")
    c.consume(1, q, tag="x2")
    c.close()


@scenario
def round_robin_two_consumers(t: T):
    """Two consumers on one channel share a queue round-robin."""
    c = t.connect()
    p = t.connect("pub", sync=True)
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.consume(1, q, tag="A", no_ack=True)
    c.consume(1, q, tag="B", no_ack=True)
    for i in range(6):
        p.publish(1, "", q, f"m{i}")
    evs = c.deliveries(1, 6)
    t.note("by consumer: " + " ".join(f"{e['consumer_tag'].decode()}:{e.body.decode()}" for e in evs))
    c.close()


@scenario
def round_robin_two_connections(t: T):
    """Consumers on two connections alternate; each sees delivery tags from 1."""
    q = t.n("q")
    p = t.connect("pub", sync=True)
    p.declare_queue(1, q)
    a = t.connect("ca")
    b = t.connect("cb")
    a.consume(1, q, tag="A", no_ack=True)
    b.consume(1, q, tag="B", no_ack=True)
    for i in range(4):
        p.publish(1, "", q, f"m{i}")
    a.deliveries(1, 2)
    b.deliveries(1, 2)
    a.close()
    b.close()
    p.call(1, "queue.delete", queue=q)
    p.close()


@scenario
def fifo_order_single_consumer(t: T):
    """A consumer added to a queue holding messages gets them in FIFO order."""
    c = t.connect()
    q = _q(c)
    for i in range(5):
        c.publish(1, "", q, f"m{i}")
    c.consume(1, q, no_ack=True)
    evs = c.deliveries(1, 5)
    t.note("order: " + " ".join(e.body.decode() for e in evs))
    c.close()


@scenario
def cancel_keeps_unacked(t: T):
    """Cancelling a consumer leaves its unacked deliveries unacked; acking them still works."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, "a")
    c.publish(1, "", q, "b")
    c.consume(1, q, tag="k")
    evs = c.deliveries(1, 2)
    c.call(1, "basic.cancel", consumer_tag="k")
    c.ack(1, evs[-1]["delivery_tag"] if evs else 2, multiple=True)
    c.get(1, q)
    c.close()


@scenario
def no_local_ignored(t: T):
    """no_local=true: RabbitMQ still delivers the connection's own messages."""
    c = t.connect()
    q = _q(c)
    c.consume(1, q, no_ack=True, no_local=True)
    c.publish(1, "", q, "own")
    c.deliveries(1, 1)
    c.close()


@scenario
def consumer_on_other_channel_same_connection(t: T):
    """Publish on channel 1, consume on channel 2 of the same connection."""
    c = t.connect()
    c.channel(2)
    q = _q(c)
    c.consume(2, q, tag="c2", no_ack=True)
    c.publish(1, "", q, "cross")
    c.deliveries(2, 1)
    c.close()


@scenario
def consume_then_queue_deleted_other_connection(t: T):
    """A queue deleted by another connection cancels the consumer with basic.cancel."""
    q = t.n("q")
    c = t.connect("c1")
    c.declare_queue(1, q)
    c.consume(1, q, tag="victim")
    o = t.connect("c2")
    o.call(1, "queue.delete", queue=q)
    o.close()
    c.expect("basic.cancel", "basic.cancel")
    c.settle()
    c.close()


@scenario
def consumer_priority_argument(t: T):
    """x-priority consumer argument: the higher-priority consumer gets the messages."""
    c = t.connect()
    p = t.connect("pub", sync=True)
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.consume(1, q, tag="low", no_ack=True, arguments={"x-priority": 1})
    c.consume(1, q, tag="high", no_ack=True, arguments={"x-priority": 10})
    for i in range(3):
        p.publish(1, "", q, f"m{i}")
    c.deliveries(1, 3)
    c.close()


@scenario
def get_empty(t: T):
    """basic.get on an empty queue: get-empty."""
    c = t.connect()
    q = _q(c)
    c.get(1, q)
    c.close()


@scenario
def get_message_count(t: T):
    """basic.get-ok carries the number of messages left."""
    c = t.connect()
    q = _q(c)
    for i in range(3):
        c.publish(1, "", q, f"m{i}")
    for _ in range(4):
        c.get(1, q, no_ack=True)
    c.close()


@scenario
def get_missing_queue(t: T):
    """basic.get on a missing queue: 404."""
    c = t.connect()
    c.get(1, t.n("nope"))
    c.close()


@scenario
def get_ack_and_redeliver(t: T):
    """basic.get without no_ack, nack with requeue: the next get is redelivered=true."""
    c = t.connect()
    q = _q(c)
    c.publish(1, "", q, "g")
    ev = c.get(1, q)
    c.nack(1, ev["delivery_tag"] if ev is not None and ev.name == "basic.get-ok" else 1)
    ev = c.get(1, q)
    c.ack(1, ev["delivery_tag"] if ev is not None and ev.name == "basic.get-ok" else 2)
    c.get(1, q)
    c.close()


@scenario
def get_while_consumer_active(t: T):
    """basic.get on a queue with a consumer that has no credit left (prefetch 1)."""
    c = t.connect()
    c.channel(2)
    q = _q(c)
    c.call(2, "basic.qos", prefetch_count=1)
    c.consume(2, q, tag="busy")
    c.publish(1, "", q, "to-consumer")
    c.deliveries(2, 1)
    c.publish(1, "", q, "to-get")
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def delivery_exchange_and_key(t: T):
    """basic.deliver carries the exchange and routing key the message was published with."""
    c = t.connect()
    q = _q(c)
    c.bind(1, q, "amq.topic", "a.#")
    c.consume(1, q, no_ack=True)
    c.publish(1, "amq.topic", "a.b.c", "t")
    c.publish(1, "", q, "d")
    c.deliveries(1, 2)
    c.close()
