"""Publisher confirms."""

from harness import T, scenario


def _q(c):
    ev = c.declare_queue(1, "", exclusive=True)
    return ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "?"


@scenario
def select_and_ack(t: T):
    """confirm.select-ok, then one publish is acked with delivery tag 1."""
    c = t.connect()
    q = _q(c)
    c.call(1, "confirm.select")
    c.publish(1, "", q, "m")
    c.confirms(1, 1)
    c.close()


@scenario
def many_publishes_all_acked(t: T):
    """20 publishes: every sequence number 1..20 is acked exactly once."""
    c = t.connect()
    q = _q(c)
    c.call(1, "confirm.select")
    for i in range(20):
        c.publish(1, "", q, f"m{i}")
    c.confirms(1, 20)
    c.close()


@scenario
def unroutable_is_acked(t: T):
    """An unroutable message (no mandatory) is still acked."""
    c = t.connect()
    c.call(1, "confirm.select")
    c.publish(1, "amq.direct", "nobody-" + t.token, "m")
    c.confirms(1, 1)
    c.close()


@scenario
def mandatory_unroutable_return_then_ack(t: T):
    """mandatory + unroutable in confirm mode: basic.return comes before the basic.ack."""
    c = t.connect()
    c.call(1, "confirm.select")
    c.hidden = None
    c.publish(1, "amq.direct", "nobody-" + t.token, "m", mandatory=True)
    c.expect(lambda e: e.name in ("basic.return", "basic.ack"), "return or ack")
    c.expect(lambda e: e.name in ("basic.return", "basic.ack"), "return or ack")
    c.settle()
    c.close()


@scenario
def select_nowait(t: T):
    """confirm.select with nowait: no select-ok, confirms still arrive."""
    c = t.connect()
    q = _q(c)
    c.send(1, "confirm.select", nowait=True)
    c.publish(1, "", q, "m")
    c.confirms(1, 1)
    c.close()


@scenario
def select_twice(t: T):
    """confirm.select twice is fine."""
    c = t.connect()
    c.call(1, "confirm.select")
    c.call(1, "confirm.select")
    c.close()


@scenario
def confirm_to_multiple_queues(t: T):
    """A message routed to two queues is acked once."""
    c = t.connect()
    q1, q2 = _q(c), _q(c)
    c.bind(1, q1, "amq.fanout")
    c.bind(1, q2, "amq.fanout")
    c.call(1, "confirm.select")
    c.publish(1, "amq.fanout", "", "both")
    c.confirms(1, 1)
    c.call(1, "queue.unbind", queue=q1, exchange="amq.fanout", routing_key="")
    c.call(1, "queue.unbind", queue=q2, exchange="amq.fanout", routing_key="")
    c.close()


@scenario
def confirm_sequence_per_channel(t: T):
    """Sequence numbers are per channel: two channels each start at 1."""
    c = t.connect()
    c.channel(2)
    q = _q(c)
    c.call(1, "confirm.select")
    c.call(2, "confirm.select")
    c.publish(1, "", q, "a")
    c.publish(1, "", q, "b")
    c.publish(2, "", q, "c")
    c.confirms(1, 2)
    c.confirms(2, 1)
    c.close()


@scenario
def confirm_persistent_durable(t: T):
    """A persistent message on a durable queue is acked."""
    c = t.connect()
    q = t.n("dq")
    c.declare_queue(1, q, durable=True)
    c.call(1, "confirm.select")
    c.publish(1, "", q, "persist", props={"delivery_mode": 2})
    c.confirms(1, 1)
    c.call(1, "queue.delete", queue=q)
    c.close()


@scenario
def confirm_then_tx_select(t: T):
    """tx.select on a channel in confirm mode: 406."""
    c = t.connect()
    c.call(1, "confirm.select")
    c.call(1, "tx.select")
    c.close()


@scenario
def confirm_publish_to_missing_exchange(t: T):
    """In confirm mode a publish to a missing exchange closes the channel (404), no ack."""
    c = t.connect()
    c.call(1, "confirm.select")
    c.publish(1, t.n("nope"), "k", "m")
    c.expect("channel.close", "channel.close")
    c.close()
