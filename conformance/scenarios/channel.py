"""Channels: open, close, reuse, flow, errors on unopened or closing channels."""

from harness import T, scenario


@scenario
def open_twice(t: T):
    """channel.open on an already open channel."""
    c = t.connect()
    c.send(1, "channel.open")
    c.settle()
    c.expect_closed()
    t.check_broker_alive()


@scenario
def method_on_unopened_channel(t: T):
    """queue.declare on a channel that was never opened."""
    c = t.connect()
    c.send(5, "queue.declare", queue="", exclusive=True)
    c.settle()
    c.expect_closed()
    t.check_broker_alive()


@scenario
def close_and_close_ok(t: T):
    """Client closes a channel: close-ok; the number can be opened again and used."""
    c = t.connect()
    c.close_channel(1)
    c.channel(1)
    c.declare_queue(1, "", exclusive=True)
    c.close()


@scenario
def closes_cross(t: T):
    """The server closes channel 1 (404) and the client closes it too before its close-ok."""
    c = t.connect()
    c.auto_close_ok = False
    c.declare_queue(1, "missing-" + t.token, passive=True)
    c.send(1, "channel.close", reply_code=200, reply_text="bye", class_id=0, method_id=0)
    c.settle()
    c.send(1, "channel.close-ok")
    c.settle()
    c.auto_close_ok = True
    if not c.eof:
        c.channel(1)
        c.declare_queue(1, "", exclusive=True)
        c.close()


@scenario
def close_ok_unsolicited(t: T):
    """channel.close-ok the server never asked for."""
    c = t.connect()
    c.send(1, "channel.close-ok")
    c.settle()
    if not c.eof:
        c.declare_queue(1, "", exclusive=True)
        c.close()


@scenario
def methods_ignored_while_closing(t: T):
    """After a server channel.close the client sends methods before close-ok: they are ignored."""
    c = t.connect()
    c.auto_close_ok = False
    c.declare_queue(1, "missing-" + t.token, passive=True)
    c.send(1, "queue.declare", queue="", exclusive=True)
    c.send(1, "basic.qos", prefetch_count=1)
    c.settle()
    c.send(1, "channel.close-ok")
    c.auto_close_ok = True
    c.channel(1)
    c.declare_queue(1, "", exclusive=True)
    c.close()


@scenario
def reopen_after_error(t: T):
    """A channel closed by a 404 can be reopened under the same number."""
    c = t.connect()
    c.declare_queue(1, "missing-" + t.token, passive=True)
    c.channel(1)
    c.declare_queue(1, "", exclusive=True)
    c.close()


@scenario
def error_closes_only_that_channel(t: T):
    """A channel error on channel 1 leaves channel 2 of the same connection working."""
    c = t.connect()
    c.channel(2)
    c.declare_queue(1, "missing-" + t.token, passive=True)
    c.declare_queue(2, "", exclusive=True)
    c.close()


@scenario
def flow_active_true(t: T):
    """channel.flow active=true: flow-ok active=true."""
    c = t.connect()
    c.call(1, "channel.flow", active=True)
    c.declare_queue(1, "", exclusive=True)
    c.close()


@scenario
def flow_active_false(t: T):
    """channel.flow active=false (RabbitMQ does not support pausing deliveries)."""
    c = t.connect()
    c.call(1, "channel.flow", active=False)
    c.settle()
    if not c.eof:
        c.close()


@scenario
def flow_ok_from_client(t: T):
    """An unsolicited channel.flow-ok from the client."""
    c = t.connect()
    c.send(1, "channel.flow-ok", active=True)
    c.settle()
    if not c.eof:
        c.close()


@scenario
def highest_channel_number(t: T):
    """Channel 2047 (the server's channel_max), then 2048 and 65535."""
    c = t.connect(channel=None)
    c.channel(2047)
    c.declare_queue(2047, "", exclusive=True)
    c.channel(2048)
    c.channel(65535)
    c.settle()
    if not c.eof:
        c.close()


@scenario
def channel_close_requeues_unacked(t: T):
    """Closing a channel requeues its unacked messages, marked redelivered."""
    q = t.n("q")
    c = t.connect(sync=True)
    c.channel(2)
    c.declare_queue(1, q)
    c.publish(1, "", q, "a")
    c.publish(1, "", q, "b")
    c.get(2, q)
    c.get(2, q)
    c.close_channel(2)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def delivery_tags_per_channel(t: T):
    """Delivery tags count per channel, from 1."""
    q = t.n("q")
    c = t.connect(sync=True)
    c.channel(2)
    c.declare_queue(1, q)
    for i in range(4):
        c.publish(1, "", q, f"m{i}")
    c.get(1, q)
    c.get(2, q)
    c.get(1, q)
    c.get(2, q)
    c.close()


@scenario
def access_request(t: T):
    """The deprecated access.request (class 30): RabbitMQ answers access.request-ok."""
    c = t.connect()
    c.call(1, "access.request", realm="/data", active=True, read=True, write=True)
    c.settle()
    if not c.eof:
        c.close()
