"""Acknowledgements: ack / nack / reject (multiple, requeue), redelivery, unknown tags, recover."""

from harness import T, scenario


def _setup(t: T, n: int, prefetch: int = 0):
    """A queue with n messages m0..m(n-1) and a manual-ack consumer 'k' on channel 1 that
    has received them all."""
    c = t.connect()
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    for i in range(n):
        c.publish(1, "", q, f"m{i}")
    if prefetch:
        c.call(1, "basic.qos", prefetch_count=prefetch)
    c.consume(1, q, tag="k")
    c.deliveries(1, min(n, prefetch) if prefetch else n)
    return c, q


def _drain(c, q, label="left"):
    """Close the channel (requeueing what is unacked), reopen it and read what the queue
    holds with basic.get."""
    c.close_channel(1)
    c.channel(1)
    while True:
        ev = c.call(1, "basic.get", queue=q, no_ack=True)
        if ev is None or ev.name != "basic.get-ok":
            break


@scenario
def ack_single(t: T):
    """ack one delivery: it is gone; the others are requeued on close."""
    c, q = _setup(t, 3)
    c.ack(1, 2)
    _drain(c, q)
    c.close()


@scenario
def ack_multiple(t: T):
    """ack multiple=true up to tag 2 acks 1 and 2."""
    c, q = _setup(t, 4)
    c.ack(1, 2, multiple=True)
    _drain(c, q)
    c.close()


@scenario
def ack_multiple_zero(t: T):
    """ack delivery_tag=0 multiple=true acks everything outstanding."""
    c, q = _setup(t, 3)
    c.ack(1, 0, multiple=True)
    _drain(c, q)
    c.close()


@scenario
def ack_zero_not_multiple(t: T):
    """ack delivery_tag=0 multiple=false."""
    c, q = _setup(t, 2)
    c.ack(1, 0)
    c.settle()
    if not c.eof:
        c.close()


@scenario
def ack_unknown_tag(t: T):
    """ack of a delivery tag never sent: 406 PRECONDITION_FAILED unknown delivery tag."""
    c, q = _setup(t, 1)
    c.ack(1, 99)
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def ack_twice(t: T):
    """Acking the same tag twice: 406 on the second."""
    c, q = _setup(t, 2)
    c.ack(1, 1)
    c.ack(1, 1)
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def ack_multiple_unknown_tag(t: T):
    """ack multiple=true with a tag above any delivered: 406."""
    c, q = _setup(t, 2)
    c.ack(1, 5, multiple=True)
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def ack_on_no_ack_delivery(t: T):
    """Acking a delivery made with no_ack=true: 406 unknown delivery tag."""
    c = t.connect()
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.publish(1, "", q, "m")
    c.consume(1, q, no_ack=True)
    c.deliveries(1, 1)
    c.ack(1, 1)
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def ack_on_other_channel(t: T):
    """Acking on channel 2 a tag delivered on channel 1: 406."""
    c, q = _setup(t, 1)
    c.channel(2)
    c.ack(2, 1)
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def ack_after_channel_error_requeues(t: T):
    """After a 406 on a bad ack, the channel's unacked messages are requeued (redelivered)."""
    c, q = _setup(t, 2)
    c.ack(1, 7)
    c.expect("channel.close", "channel.close")
    c.channel(1)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def nack_requeue_redelivered_order(t: T):
    """nack requeue=true of the first of three: it comes back first, redelivered=true."""
    c, q = _setup(t, 3)
    c.nack(1, 1, requeue=True)
    c.deliveries(1, 1)
    c.close()


@scenario
def nack_multiple_requeue(t: T):
    """nack multiple=true requeue=true: all come back, in original order, redelivered."""
    c, q = _setup(t, 3)
    c.nack(1, 3, multiple=True, requeue=True)
    c.deliveries(1, 3)
    c.close()


@scenario
def nack_no_requeue_drops(t: T):
    """nack requeue=false drops the message (no dead-letter exchange)."""
    c, q = _setup(t, 2)
    c.nack(1, 1, requeue=False)
    c.ack(1, 2)
    _drain(c, q)
    c.close()


@scenario
def nack_unknown_tag(t: T):
    """nack of an unknown tag: 406."""
    c, q = _setup(t, 1)
    c.nack(1, 42)
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def nack_zero_multiple(t: T):
    """nack delivery_tag=0 multiple=true requeue=true requeues everything outstanding."""
    c, q = _setup(t, 2)
    c.nack(1, 0, multiple=True, requeue=True)
    c.deliveries(1, 2)
    c.close()


@scenario
def reject_requeue(t: T):
    """reject requeue=true: redelivered=true, back at the head."""
    c, q = _setup(t, 2)
    c.reject(1, 2, requeue=True)
    c.deliveries(1, 1)
    c.close()


@scenario
def reject_no_requeue(t: T):
    """reject requeue=false drops the message."""
    c, q = _setup(t, 2)
    c.reject(1, 1, requeue=False)
    c.ack(1, 2)
    _drain(c, q)
    c.close()


@scenario
def reject_unknown_tag(t: T):
    """reject of an unknown tag: 406."""
    c, q = _setup(t, 1)
    c.reject(1, 9)
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def requeue_order_mixed(t: T):
    """Requeue m3 then m1 of m0..m4 (prefetch 5): the queue order afterwards."""
    c, q = _setup(t, 5)
    c.reject(1, 4, requeue=True)
    c.reject(1, 2, requeue=True)
    c.deliveries(1, 2)
    c.ack(1, 0, multiple=True)
    _drain(c, q)
    c.close()


@scenario
def redelivered_flag_on_get(t: T):
    """A message delivered to a consumer and requeued by cancel+close shows redelivered=true on get."""
    c, q = _setup(t, 1)
    c.close_channel(1)
    c.channel(1)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def recover_requeue_true(t: T):
    """basic.recover requeue=true: unacked messages are redelivered with redelivered=true."""
    c, q = _setup(t, 2)
    c.call(1, "basic.recover", requeue=True)
    c.deliveries(1, 2)
    c.close()


@scenario
def recover_requeue_false(t: T):
    """basic.recover requeue=false."""
    c, q = _setup(t, 2)
    c.call(1, "basic.recover", requeue=False)
    c.settle(0.2)
    if not c.eof:
        c.close()


@scenario
def recover_async(t: T):
    """basic.recover-async requeue=true (deprecated, no reply)."""
    c, q = _setup(t, 1)
    c.send(1, "basic.recover-async", requeue=True)
    c.settle(0.3)
    if not c.eof:
        c.close()


@scenario
def recover_nothing_unacked(t: T):
    """basic.recover with nothing unacked: just recover-ok."""
    c = t.connect()
    c.call(1, "basic.recover", requeue=True)
    c.settle()
    c.close()


@scenario
def ack_after_get_and_deliver_mixed(t: T):
    """Delivery tags are shared by basic.get and basic.deliver on a channel."""
    c = t.connect()
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    for i in range(3):
        c.publish(1, "", q, f"m{i}")
    c.get(1, q)
    c.consume(1, q, tag="k")
    c.deliveries(1, 2)
    c.ack(1, 3, multiple=True)
    c.call(1, "basic.cancel", consumer_tag="k")
    c.get(1, q)
    c.close()
