"""basic.qos: prefetch per consumer and global, ordering under prefetch, prefetch_size."""

from harness import T, scenario


def _queue_with(c, n):
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    for i in range(n):
        c.publish(1, "", q, f"m{i}")
    return q


@scenario
def prefetch_one(t: T):
    """prefetch_count=1: one delivery at a time, the next after each ack."""
    c = t.connect()
    q = _queue_with(c, 3)
    c.call(1, "basic.qos", prefetch_count=1)
    c.consume(1, q, tag="k")
    c.deliveries(1, 1)
    c.ack(1, 1)
    c.deliveries(1, 1)
    c.ack(1, 2)
    c.deliveries(1, 1)
    c.ack(1, 3)
    c.settle()
    c.close()


@scenario
def prefetch_two_multiple_ack(t: T):
    """prefetch_count=2 with a multiple ack frees two slots."""
    c = t.connect()
    q = _queue_with(c, 5)
    c.call(1, "basic.qos", prefetch_count=2)
    c.consume(1, q, tag="k")
    c.deliveries(1, 2)
    c.ack(1, 2, multiple=True)
    c.deliveries(1, 2)
    c.close()


@scenario
def prefetch_per_consumer(t: T):
    """global=false applies to each consumer: two consumers with prefetch 1 get one each."""
    c = t.connect()
    q = _queue_with(c, 4)
    c.call(1, "basic.qos", prefetch_count=1, **{"global": False})
    c.consume(1, q, tag="a")
    c.deliveries(1, 1)
    c.consume(1, q, tag="b")
    c.deliveries(1, 1)
    c.close()


@scenario
def prefetch_global(t: T):
    """global=true: the limit is shared by all consumers on the channel."""
    c = t.connect()
    q = _queue_with(c, 4)
    c.call(1, "basic.qos", prefetch_count=1, **{"global": True})
    c.consume(1, q, tag="a")
    c.deliveries(1, 1)
    c.consume(1, q, tag="b")
    c.settle(0.2)
    c.ack(1, 1)
    c.deliveries(1, 1)
    c.close()


@scenario
def prefetch_global_and_per_consumer(t: T):
    """Both limits set (channel-wide 3, then per-consumer 2), three consumers one after another."""
    c = t.connect()
    q = _queue_with(c, 8)
    c.call(1, "basic.qos", prefetch_count=3, **{"global": True})
    c.call(1, "basic.qos", prefetch_count=2, **{"global": False})
    c.consume(1, q, tag="a")
    c.deliveries(1, 2)
    c.consume(1, q, tag="b")
    c.deliveries(1, 2)
    c.consume(1, q, tag="c")
    c.deliveries(1, 2)
    c.close()


@scenario
def prefetch_applies_to_new_consumers_only(t: T):
    """Changing per-consumer prefetch after consume does not change existing consumers (RabbitMQ)."""
    c = t.connect()
    q = _queue_with(c, 4)
    c.call(1, "basic.qos", prefetch_count=1)
    c.consume(1, q, tag="a")
    c.deliveries(1, 1)
    c.call(1, "basic.qos", prefetch_count=3)
    c.ack(1, 1)
    c.deliveries(1, 1)
    c.close()


@scenario
def prefetch_zero_unlimited(t: T):
    """prefetch_count=0 means no limit."""
    c = t.connect()
    q = _queue_with(c, 5)
    c.call(1, "basic.qos", prefetch_count=0)
    c.consume(1, q, tag="k")
    c.deliveries(1, 5)
    c.close()


@scenario
def prefetch_ignored_for_no_ack(t: T):
    """prefetch does not limit a no_ack consumer."""
    c = t.connect()
    q = _queue_with(c, 4)
    c.call(1, "basic.qos", prefetch_count=1)
    c.consume(1, q, tag="k", no_ack=True)
    c.deliveries(1, 4)
    c.close()


@scenario
def prefetch_requeue_order(t: T):
    """prefetch 2: nack requeue the first; it comes back before the third message."""
    c = t.connect()
    q = _queue_with(c, 4)
    c.call(1, "basic.qos", prefetch_count=2)
    c.consume(1, q, tag="k")
    c.deliveries(1, 2)
    c.nack(1, 1, requeue=True)
    c.deliveries(1, 1)
    c.ack(1, 2)
    c.deliveries(1, 1)
    c.close()


@scenario
def prefetch_two_consumers_fairness(t: T):
    """prefetch 1 with two consumers: only the one that acks gets the next message."""
    c = t.connect()
    q = _queue_with(c, 4)
    c.call(1, "basic.qos", prefetch_count=1)
    c.consume(1, q, tag="a")
    c.deliveries(1, 1)
    c.consume(1, q, tag="b")
    c.deliveries(1, 1)
    c.ack(1, 1)
    c.deliveries(1, 1)
    c.close()


@scenario
def prefetch_size_refused(t: T):
    """basic.qos prefetch_size != 0: RabbitMQ refuses with 540 NOT_IMPLEMENTED."""
    c = t.connect()
    c.call(1, "basic.qos", prefetch_size=1000, prefetch_count=1)
    c.settle()
    c.expect_closed()


@scenario
def qos_on_get(t: T):
    """basic.get is not limited by prefetch_count."""
    c = t.connect()
    q = _queue_with(c, 3)
    c.call(1, "basic.qos", prefetch_count=1)
    c.get(1, q)
    c.get(1, q)
    c.get(1, q)
    c.close()
