"""Transactions: tx.select / commit / rollback, acks in a transaction, mode switching."""

from harness import T, scenario


def _q(c):
    ev = c.declare_queue(1, "", exclusive=True)
    return ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "?"


@scenario
def select_commit_publishes(t: T):
    """Publishes in a transaction are invisible until commit."""
    c = t.connect()
    c.channel(2)
    q = _q(c)
    c.call(1, "tx.select")
    c.publish(1, "", q, "t1")
    c.publish(1, "", q, "t2")
    c.get(2, q, no_ack=True)
    c.call(1, "tx.commit")
    c.get(2, q, no_ack=True)
    c.get(2, q, no_ack=True)
    c.close()


@scenario
def rollback_discards_publishes(t: T):
    """tx.rollback discards the uncommitted publishes."""
    c = t.connect()
    q = _q(c)
    c.call(1, "tx.select")
    c.publish(1, "", q, "gone")
    c.call(1, "tx.rollback")
    c.publish(1, "", q, "kept")
    c.call(1, "tx.commit")
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def acks_in_tx_commit(t: T):
    """An ack inside a transaction takes effect at commit."""
    c = t.connect()
    c.channel(2)
    c.sync_channel(2)
    q = _q(c)
    c.publish(2, "", q, "m")
    c.call(1, "tx.select")
    c.get(1, q)
    c.ack(1, 1)
    c.get(2, q, no_ack=True)
    c.call(1, "tx.commit")
    c.close_channel(1)
    c.get(2, q, no_ack=True)
    c.close()


@scenario
def acks_in_tx_rollback(t: T):
    """An ack rolled back leaves the message unacked (requeued when the channel closes)."""
    c = t.connect()
    c.channel(2)
    c.sync_channel(2)
    q = _q(c)
    c.publish(2, "", q, "m")
    c.call(1, "tx.select")
    c.get(1, q)
    c.ack(1, 1)
    c.call(1, "tx.rollback")
    c.get(2, q, no_ack=True)
    c.close_channel(1)
    c.get(2, q, no_ack=True)
    c.close()


@scenario
def commit_without_select(t: T):
    """tx.commit on a non-transactional channel: 406 PRECONDITION_FAILED."""
    c = t.connect()
    c.call(1, "tx.commit")
    c.close()


@scenario
def rollback_without_select(t: T):
    """tx.rollback on a non-transactional channel: 406 PRECONDITION_FAILED."""
    c = t.connect()
    c.call(1, "tx.rollback")
    c.close()


@scenario
def tx_then_confirm_select(t: T):
    """confirm.select on a transactional channel: 406."""
    c = t.connect()
    c.call(1, "tx.select")
    c.call(1, "confirm.select")
    c.close()


@scenario
def select_twice(t: T):
    """tx.select twice is fine."""
    c = t.connect()
    c.call(1, "tx.select")
    c.call(1, "tx.select")
    c.close()


@scenario
def empty_commit_and_rollback(t: T):
    """commit and rollback with nothing pending."""
    c = t.connect()
    c.call(1, "tx.select")
    c.call(1, "tx.commit")
    c.call(1, "tx.rollback")
    c.call(1, "tx.commit")
    c.close()


@scenario
def tx_mandatory_unroutable(t: T):
    """In a transaction a mandatory unroutable publish is returned at commit."""
    c = t.connect()
    c.call(1, "tx.select")
    c.publish(1, "amq.direct", "nobody-" + t.token, "r", mandatory=True)
    c.settle(0.2)
    c.call(1, "tx.commit")
    c.settle()
    c.close()


@scenario
def tx_nack_and_reject(t: T):
    """nack and reject inside a transaction apply at commit."""
    c = t.connect()
    q = _q(c)
    for i in range(2):
        c.publish(1, "", q, f"m{i}")
    c.call(1, "tx.select")
    c.get(1, q)
    c.get(1, q)
    c.nack(1, 1, requeue=True)
    c.reject(1, 2, requeue=False)
    c.call(1, "tx.commit")
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def tx_publish_then_channel_close(t: T):
    """Uncommitted publishes are discarded when the channel closes."""
    c = t.connect()
    c.channel(2)
    q = _q(c)
    c.call(2, "tx.select")
    c.publish(2, "", q, "never")
    c.close_channel(2)
    c.get(1, q, no_ack=True)
    c.close()
