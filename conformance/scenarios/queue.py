"""Queues: declare (server-named, passive, exclusive, auto-delete, mismatches), purge, delete,
bind/unbind errors, the empty-name shortcut, and the common x- arguments."""

import time

from harness import T, scenario


def _q(ev):
    return ev["queue"].decode() if ev is not None and ev.name == "queue.declare-ok" else "?"


@scenario
def server_named(t: T):
    """queue.declare with an empty name: the server names it amq.gen-*; two names differ."""
    c = t.connect()
    a = _q(c.declare_queue(1, "", exclusive=True))
    b = _q(c.declare_queue(1, "", exclusive=True))
    t.note(f"names differ: {a != b}")
    c.declare_queue(1, a, passive=True)
    c.close()


@scenario
def server_named_not_exclusive(t: T):
    """A server-named queue that is neither exclusive nor auto-delete, then deleted."""
    c = t.connect()
    q = _q(c.declare_queue(1, ""))
    c.call(1, "queue.delete", queue=q)
    c.close()


@scenario
def passive_missing(t: T):
    """Passive declare of a missing queue: 404."""
    c = t.connect()
    c.declare_queue(1, t.n("nope"), passive=True)
    c.close()


@scenario
def passive_counts(t: T):
    """Passive declare reports message and consumer counts."""
    q = t.n("q")
    c = t.connect(sync=True)
    c.channel(2)
    c.declare_queue(1, q)
    for i in range(3):
        c.publish(1, "", q, f"m{i}")
    c.declare_queue(1, q, passive=True)
    c.consume(2, q, tag="c1")
    c.deliveries(2, 3)
    c.consume(2, q, tag="c2")
    c.declare_queue(1, q, passive=True)
    c.publish(1, "", q, "m3")
    c.deliveries(2, 1)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def redeclare_returns_counts(t: T):
    """A non-passive redeclare of an existing queue returns its current message count."""
    q = t.n("q")
    c = t.connect(sync=True)
    c.declare_queue(1, q)
    c.publish(1, "", q, "a")
    c.publish(1, "", q, "b")
    c.declare_queue(1, q)
    c.close()


@scenario
def exclusive_other_connection(t: T):
    """Another connection declaring, passively declaring, consuming from or deleting an exclusive queue: 405."""
    q = t.n("excl")
    c1 = t.connect("c1")
    c1.declare_queue(1, q, exclusive=True)
    c2 = t.connect("c2")
    c2.declare_queue(1, q, exclusive=True)
    c2.channel(1)
    c2.declare_queue(1, q)
    c2.channel(1)
    c2.declare_queue(1, q, passive=True)
    c2.channel(1)
    c2.consume(1, q)
    c2.channel(1)
    c2.call(1, "basic.get", queue=q)
    c2.channel(1)
    c2.call(1, "queue.delete", queue=q)
    c2.channel(1)
    c2.call(1, "queue.purge", queue=q)
    c2.close()
    c1.close()


@scenario
def exclusive_redeclare_same_connection(t: T):
    """The owner redeclares its exclusive queue (ok); then declares it non-exclusive."""
    q = t.n("excl")
    c = t.connect()
    c.declare_queue(1, q, exclusive=True)
    c.declare_queue(1, q, exclusive=True)
    c.declare_queue(1, q)
    c.close()


@scenario
def exclusive_gone_after_close(t: T):
    """An exclusive queue is deleted when its connection closes."""
    q = t.n("excl")
    c1 = t.connect("c1")
    c1.declare_queue(1, q, exclusive=True)
    c1.close()
    c2 = t.connect("c2")
    c2.declare_queue(1, q, passive=True)
    c2.close()


@scenario
def redeclare_durable_mismatch(t: T):
    """Redeclare a queue with another durable flag: 406."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q)
    c.declare_queue(1, q, durable=True)
    c.close()


@scenario
def redeclare_auto_delete_mismatch(t: T):
    """Redeclare a queue with another auto_delete flag: 406."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q)
    c.declare_queue(1, q, auto_delete=True)
    c.close()


@scenario
def redeclare_arguments_mismatch(t: T):
    """Redeclare with another x-message-ttl, then without it: 406 each."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q, arguments={"x-message-ttl": 1000})
    c.declare_queue(1, q, arguments={"x-message-ttl": 2000})
    c.channel(1)
    c.declare_queue(1, q)
    c.channel(1)
    c.declare_queue(1, q, arguments={"x-message-ttl": 1000})
    c.close()


@scenario
def redeclare_unknown_argument_ignored(t: T):
    """Arguments RabbitMQ does not know are not compared on redeclare."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q, arguments={"x-conformance-custom": "a"})
    c.declare_queue(1, q, arguments={"x-conformance-custom": "b"})
    c.declare_queue(1, q)
    c.close()


@scenario
def durable_queue_redeclare(t: T):
    """A durable queue redeclared durable is fine; passive ignores flags."""
    q = t.n("dq")
    c = t.connect()
    c.declare_queue(1, q, durable=True)
    c.declare_queue(1, q, durable=True)
    c.declare_queue(1, q, passive=True, exclusive=True, auto_delete=True)
    c.call(1, "queue.delete", queue=q)
    c.close()


@scenario
def auto_delete_after_last_consumer(t: T):
    """An auto-delete queue goes away when its last consumer is cancelled, not before."""
    q = t.n("ad")
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, q, auto_delete=True)
    c.consume(2, q, tag="a")
    c.consume(2, q, tag="b")
    c.call(2, "basic.cancel", consumer_tag="a")
    c.declare_queue(1, q, passive=True)
    c.call(2, "basic.cancel", consumer_tag="b")
    time.sleep(0.1)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def auto_delete_never_consumed(t: T):
    """An auto-delete queue that never had a consumer stays."""
    q = t.n("ad")
    c = t.connect()
    c.declare_queue(1, q, auto_delete=True)
    c.close()
    c2 = t.connect("c2")
    c2.declare_queue(1, q, passive=True)
    c2.call(1, "queue.delete", queue=q)
    c2.close()


@scenario
def auto_delete_on_channel_close(t: T):
    """Closing the channel of the last consumer deletes an auto-delete queue."""
    q = t.n("ad")
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, q, auto_delete=True)
    c.consume(2, q)
    c.close_channel(2)
    time.sleep(0.1)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def purge_counts(t: T):
    """queue.purge returns the number purged; unacked messages are not purged."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q)
    for i in range(5):
        c.publish(1, "", q, f"m{i}")
    c.get(1, q)
    c.call(1, "queue.purge", queue=q)
    c.call(1, "queue.purge", queue=q)
    c.send(1, "basic.nack", delivery_tag=1, requeue=True)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def purge_missing(t: T):
    """queue.purge of a missing queue: 404."""
    c = t.connect()
    c.call(1, "queue.purge", queue=t.n("nope"))
    c.close()


@scenario
def delete_counts(t: T):
    """queue.delete returns the message count; the queue is gone afterwards."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q)
    for i in range(3):
        c.publish(1, "", q, f"m{i}")
    c.call(1, "queue.delete", queue=q)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def delete_if_unused(t: T):
    """queue.delete if_unused: 406 while a consumer exists, ok after cancel."""
    q = t.n("q")
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, q)
    c.consume(2, q, tag="t")
    c.call(1, "queue.delete", queue=q, if_unused=True)
    c.channel(1)
    c.call(2, "basic.cancel", consumer_tag="t")
    c.call(1, "queue.delete", queue=q, if_unused=True)
    c.close()


@scenario
def delete_if_empty(t: T):
    """queue.delete if_empty: 406 with a message, ok once empty."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q)
    c.publish(1, "", q, "m")
    c.call(1, "queue.delete", queue=q, if_empty=True)
    c.channel(1)
    c.get(1, q, no_ack=True)
    c.call(1, "queue.delete", queue=q, if_empty=True)
    c.close()


@scenario
def delete_if_empty_with_unacked(t: T):
    """queue.delete if_empty with only an unacked message."""
    q = t.n("q")
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, q)
    c.publish(1, "", q, "m")
    c.get(1, q)
    c.call(2, "queue.delete", queue=q, if_empty=True)
    c.close()


@scenario
def delete_missing(t: T):
    """queue.delete of a missing queue: delete-ok with 0."""
    c = t.connect()
    c.call(1, "queue.delete", queue=t.n("nope"))
    c.settle()
    if not c.eof:
        c.close()


@scenario
def delete_cancels_consumers(t: T):
    """Deleting a queue with a consumer sends basic.cancel to the consumer (consumer_cancel_notify)."""
    q = t.n("q")
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, q)
    c.consume(2, q, tag="watch")
    d = t.connect("deleter")
    d.call(1, "queue.delete", queue=q)
    d.close()
    c.expect(lambda e: e.name == "basic.cancel", "basic.cancel")
    c.settle()
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def delete_on_consumer_channel(t: T):
    """queue.delete on the channel of its own consumer: delete-ok first, then basic.cancel."""
    # kombu's test_ack_from_another_thread: a prefetch-1 consumer acks both messages, then
    # the queue is deleted on the consumer's channel; py-amqp, waiting for delete-ok, raises
    # ConsumerCancelled if the basic.cancel comes first.
    q = t.n("q")
    c = t.connect()
    p = t.connect("pub", sync=True)
    c.declare_queue(1, q)
    for i in range(2):
        p.publish(1, "", q, f"m{i}")
    p.close()
    c.call(1, "basic.qos", prefetch_count=1)
    c.consume(1, q, tag="own")
    for i in range(2):
        c.deliveries(1, 1)
        c.ack(1, i + 1)
    c.call(1, "queue.delete", queue=q)
    c.settle()
    c.call(1, "basic.cancel", consumer_tag="own")
    c.close()


@scenario
def bind_missing_exchange(t: T):
    """queue.bind to a missing exchange: 404."""
    c = t.connect()
    q = _q(c.declare_queue(1, "", exclusive=True))
    c.bind(1, q, t.n("nope"), "k")
    c.close()


@scenario
def bind_missing_queue(t: T):
    """queue.bind of a missing queue: 404."""
    c = t.connect()
    c.bind(1, t.n("nope"), "amq.direct", "k")
    c.close()


@scenario
def bind_twice_is_idempotent(t: T):
    """Binding twice with the same key delivers one copy."""
    c = t.connect(sync=True)
    q = _q(c.declare_queue(1, "", exclusive=True))
    c.bind(1, q, "amq.direct", "k")
    c.bind(1, q, "amq.direct", "k")
    c.publish(1, "amq.direct", "k", "once")
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def unbind_missing(t: T):
    """queue.unbind of a binding that does not exist, of a missing queue, of a missing exchange."""
    c = t.connect()
    q = _q(c.declare_queue(1, "", exclusive=True))
    c.call(1, "queue.unbind", queue=q, exchange="amq.direct", routing_key="never-bound")
    c.call(1, "queue.unbind", queue=t.n("noq"), exchange="amq.direct", routing_key="k")
    c.call(1, "queue.unbind", queue=q, exchange=t.n("nox"), routing_key="k")
    c.settle()
    if not c.eof:
        c.close()


@scenario
def empty_name_shortcut(t: T):
    """After a declare, '' means the last declared queue: bind, publish, get, purge, consume, delete."""
    c = t.connect()
    q = _q(c.declare_queue(1, "", exclusive=True))
    c.bind(1, "", "amq.direct", "shortcut")
    c.publish(1, "amq.direct", "shortcut", "one")
    c.publish(1, "amq.direct", "shortcut", "two")
    c.get(1, "", no_ack=True)
    c.call(1, "queue.purge", queue="")
    c.publish(1, "amq.direct", "shortcut", "three")
    c.consume(1, "", tag="sc")
    c.deliveries(1, 1)
    c.call(1, "basic.cancel", consumer_tag="sc")
    c.call(1, "queue.unbind", queue="", exchange="amq.direct", routing_key="shortcut")
    c.call(1, "queue.delete", queue="")
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def empty_name_without_declare(t: T):
    """'' as queue name on a channel that declared nothing."""
    c = t.connect()
    c.bind(1, "", "amq.direct", "k")
    c.settle()
    if not c.eof:
        c.channel(1)
        c.get(1, "")
        c.settle()
    if not c.eof:
        c.close()


@scenario
def empty_name_per_channel(t: T):
    """The last-declared queue is remembered per channel."""
    c = t.connect()
    c.channel(2)
    q1 = _q(c.declare_queue(1, "", exclusive=True))
    c.declare_queue(2, "", exclusive=True)
    c.publish(1, "", q1, "to-q1")
    c.get(1, "", no_ack=True)
    c.get(2, "", no_ack=True)
    c.close()


@scenario
def amq_prefix_queue(t: T):
    """Declaring a queue named amq.*: 403; passive declare of a missing amq.* queue: 404."""
    c = t.connect()
    c.declare_queue(1, "amq.conformance-" + t.token)
    c.channel(1)
    c.declare_queue(1, "amq.conformance-" + t.token, passive=True)
    c.close()


@scenario
def declare_nowait(t: T):
    """queue.declare with no_wait: no declare-ok, the queue exists."""
    q = t.n("q")
    c = t.connect()
    c.send(1, "queue.declare", queue=q, no_wait=True)
    c.declare_queue(1, q, passive=True)
    c.send(1, "queue.bind", queue=q, exchange="amq.direct", routing_key="k", no_wait=True)
    c.send(1, "queue.purge", queue=q, no_wait=True)
    c.send(1, "queue.delete", queue=q, no_wait=True)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def argument_invalid_ttl(t: T):
    """x-message-ttl negative, then of the wrong type: 406."""
    c = t.connect()
    c.declare_queue(1, t.n("q1"), arguments={"x-message-ttl": -1})
    c.channel(1)
    c.declare_queue(1, t.n("q2"), arguments={"x-message-ttl": "soon"})
    c.close()


@scenario
def argument_invalid_max_length(t: T):
    """x-max-length negative: 406; x-expires 0: 406."""
    c = t.connect()
    c.declare_queue(1, t.n("q1"), arguments={"x-max-length": -5})
    c.channel(1)
    c.declare_queue(1, t.n("q2"), arguments={"x-expires": 0})
    c.close()


@scenario
def argument_invalid_queue_type(t: T):
    """x-queue-type unknown: an error."""
    c = t.connect()
    c.declare_queue(1, t.n("q1"), arguments={"x-queue-type": "nonsense"})
    c.settle()
    if not c.eof:
        c.close()


@scenario
def message_ttl_expires(t: T):
    """x-message-ttl=50: a message older than that is not delivered by basic.get."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q, arguments={"x-message-ttl": 50})
    c.publish(1, "", q, "old")
    time.sleep(0.2)
    c.publish(1, "", q, "fresh")
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def per_message_expiration(t: T):
    """The expiration property: an expired message at the head is dropped."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q)
    c.publish(1, "", q, "short", props={"expiration": "30"})
    c.publish(1, "", q, "long", props={"expiration": "60000"})
    time.sleep(0.15)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def max_length_drop_head(t: T):
    """x-max-length=2: the oldest messages are dropped."""
    q = t.n("q")
    c = t.connect(sync=True)
    c.declare_queue(1, q, arguments={"x-max-length": 2})
    for i in range(4):
        c.publish(1, "", q, f"m{i}")
    c.declare_queue(1, q, passive=True)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def max_length_reject_publish(t: T):
    """x-overflow=reject-publish with confirms: the excess publish is nacked."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    c.call(1, "confirm.select")
    c.publish(1, "", q, "fits")
    c.publish(1, "", q, "rejected")
    c.confirms(1, 2)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def dead_letter_on_reject(t: T):
    """x-dead-letter-exchange: a rejected message is dead-lettered with an x-death header."""
    q, dlq = t.n("q"), t.n("dlq")
    dlx = t.n("dlx")
    c = t.connect()
    c.declare_exchange(1, dlx, "fanout")
    c.declare_queue(1, dlq)
    c.bind(1, dlq, dlx)
    c.declare_queue(1, q, arguments={"x-dead-letter-exchange": dlx})
    c.publish(1, "", q, "doomed", props={"message_id": "m1"})
    ev = c.get(1, q)
    c.reject(1, ev["delivery_tag"] if ev is not None and ev.name == "basic.get-ok" else 1, requeue=False)
    time.sleep(0.1)
    got = c.call(1, "basic.get", queue=dlq, no_ack=True, _record=False)
    if got is not None and got.name == "basic.get-ok":
        h = got.props.get("headers", {})
        death = h.get("x-death")
        first = death.value[0].value if death is not None else {}
        t.note(f"dead-lettered body={got.body!r} exchange={got['exchange']!r} routing_key={got['routing_key']!r}")
        t.note(f"headers keys={sorted(h)} x-death[0] keys={sorted(first)}")
        for k in ("reason", "queue", "exchange", "routing-keys", "count"):
            if k in first:
                v = first[k]
                t.note(f"x-death[0].{k}={v!r}")
    else:
        t.note("nothing dead-lettered")
    c.call(1, "exchange.delete", exchange=dlx)
    c.close()


@scenario
def queue_expires(t: T):
    """x-expires=100: an unused queue is deleted after 100 ms."""
    q = t.n("q")
    c = t.connect()
    c.declare_queue(1, q, arguments={"x-expires": 100})
    c.declare_queue(1, q, passive=True)
    time.sleep(0.4)
    c.declare_queue(1, q, passive=True)
    c.close()


@scenario
def exclusive_consume_other_connection_after_owner_gone(t: T):
    """Once the owner is gone, the exclusive queue name is free for another connection."""
    q = t.n("excl")
    c1 = t.connect("c1")
    c1.declare_queue(1, q, exclusive=True)
    c1.close()
    c2 = t.connect("c2")
    c2.declare_queue(1, q, exclusive=True)
    c2.close()
