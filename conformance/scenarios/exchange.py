"""Exchanges: declare (every type, passive, flags, mismatches), delete, bind, reserved names."""

from harness import T, scenario


def _declare_each(t: T, type_: str):
    c = t.connect()
    x = t.n(f"x-{type_}")
    c.declare_exchange(1, x, type_)
    c.declare_exchange(1, x, type_)
    c.declare_exchange(1, x, type_, passive=True)
    c.call(1, "exchange.delete", exchange=x)
    c.declare_exchange(1, x, type_, passive=True)
    c.close()


@scenario
def declare_direct(t: T):
    """Declare, redeclare, passive, delete a direct exchange; passive after delete is 404."""
    _declare_each(t, "direct")


@scenario
def declare_fanout(t: T):
    """Same for a fanout exchange."""
    _declare_each(t, "fanout")


@scenario
def declare_topic(t: T):
    """Same for a topic exchange."""
    _declare_each(t, "topic")


@scenario
def declare_headers(t: T):
    """Same for a headers exchange."""
    _declare_each(t, "headers")


@scenario
def declare_passive_missing(t: T):
    """Passive declare of a missing exchange: 404."""
    c = t.connect()
    c.declare_exchange(1, t.n("nope"), "direct", passive=True)
    c.close()


@scenario
def declare_passive_ignores_type_and_flags(t: T):
    """Passive declare with another type and flags than the existing exchange succeeds."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    c.declare_exchange(1, x, "fanout", passive=True, durable=True, auto_delete=True)
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def declare_durable_mismatch(t: T):
    """Redeclare with another durable flag: 406 inequivalent arg 'durable'."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    c.declare_exchange(1, x, "direct", durable=True)
    c.close()


@scenario
def declare_durable_exchange_redeclare(t: T):
    """A durable exchange redeclared durable is fine; non-durable is 406."""
    c = t.connect()
    x = t.n("xd")
    c.declare_exchange(1, x, "topic", durable=True)
    c.declare_exchange(1, x, "topic", durable=True)
    c.declare_exchange(1, x, "topic")
    c.close()


@scenario
def declare_type_mismatch(t: T):
    """Redeclare with another type: 406 inequivalent arg 'type'."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    c.declare_exchange(1, x, "topic")
    c.close()


@scenario
def declare_auto_delete_mismatch(t: T):
    """Redeclare with another auto_delete flag: 406."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "fanout")
    c.declare_exchange(1, x, "fanout", auto_delete=True)
    c.close()


@scenario
def declare_internal_mismatch(t: T):
    """Redeclare with another internal flag: 406."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "fanout")
    c.declare_exchange(1, x, "fanout", internal=True)
    c.close()


@scenario
def declare_arguments_mismatch(t: T):
    """Redeclare with another alternate-exchange argument: 406."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct", arguments={"alternate-exchange": "ae1"})
    c.declare_exchange(1, x, "direct", arguments={"alternate-exchange": "ae2"})
    c.close()


@scenario
def declare_amq_prefix(t: T):
    """Declaring an exchange named amq.*: 403 ACCESS_REFUSED."""
    c = t.connect()
    c.declare_exchange(1, "amq.conformance-" + t.token, "direct")
    c.close()


@scenario
def declare_amq_builtin_redeclare(t: T):
    """Redeclaring amq.direct with its own properties, and passive declares of every amq.* exchange."""
    c = t.connect()
    for x, ty in (("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
                  ("amq.headers", "headers"), ("amq.match", "headers")):
        c.declare_exchange(1, x, ty, passive=True)
    c.declare_exchange(1, "amq.direct", "direct", durable=True)
    c.close()


@scenario
def declare_default_exchange(t: T):
    """Active declare of the default exchange '' and passive declare of it."""
    c = t.connect()
    c.declare_exchange(1, "", "direct", passive=True)
    c.channel(1)
    c.declare_exchange(1, "", "direct", durable=True)
    c.close()


@scenario
def delete_default_exchange(t: T):
    """Deleting the default exchange: 403."""
    c = t.connect()
    c.call(1, "exchange.delete", exchange="")
    c.close()


@scenario
def delete_amq_exchange(t: T):
    """Deleting amq.direct: 403."""
    c = t.connect()
    c.call(1, "exchange.delete", exchange="amq.direct")
    c.close()


@scenario
def bind_queue_to_default_exchange(t: T):
    """queue.bind and queue.unbind with the default exchange: 403."""
    c = t.connect()
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.bind(1, q, "", "foo")
    c.channel(1)
    c.call(1, "queue.unbind", queue=q, exchange="", routing_key=q)
    c.close()


@scenario
def unknown_type(t: T):
    """Declare with an unknown exchange type: a connection error 503."""
    c = t.connect()
    c.declare_exchange(1, t.n("x"), "x-no-such-type")
    c.settle()
    c.expect_closed()
    t.check_broker_alive()


@scenario
def declare_empty_type(t: T):
    """Declare with an empty type string."""
    c = t.connect()
    c.declare_exchange(1, t.n("x"), "")
    c.settle()
    if not c.eof:
        c.close()


@scenario
def delete_if_unused(t: T):
    """exchange.delete if_unused: 406 while a queue is bound, ok after unbind."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.bind(1, q, x, "k")
    c.call(1, "exchange.delete", exchange=x, if_unused=True)
    c.channel(1)
    c.call(1, "queue.unbind", queue=q, exchange=x, routing_key="k")
    c.call(1, "exchange.delete", exchange=x, if_unused=True)
    c.declare_exchange(1, x, "direct", passive=True)
    c.close()


@scenario
def delete_if_unused_as_source_of_e2e(t: T):
    """if_unused: an exchange that is the source of an exchange binding is in use; the destination is not."""
    c = t.connect()
    a, b = t.n("a"), t.n("b")
    c.declare_exchange(1, a, "fanout")
    c.declare_exchange(1, b, "fanout")
    c.call(1, "exchange.bind", destination=b, source=a, routing_key="")
    c.call(1, "exchange.delete", exchange=a, if_unused=True)
    c.channel(1)
    c.call(1, "exchange.delete", exchange=b, if_unused=True)
    c.call(1, "exchange.delete", exchange=a, if_unused=True)
    c.close()


@scenario
def delete_missing(t: T):
    """Deleting an exchange that does not exist."""
    c = t.connect()
    c.call(1, "exchange.delete", exchange=t.n("nope"))
    c.settle()
    if not c.eof:
        c.close()


@scenario
def delete_removes_bindings(t: T):
    """Deleting an exchange removes its bindings; redeclared, it routes nothing."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "fanout")
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.bind(1, q, x)
    c.call(1, "exchange.delete", exchange=x)
    c.declare_exchange(1, x, "fanout")
    c.publish(1, x, "", "lost", mandatory=True)
    c.expect("basic.return", "basic.return")
    c.get(1, q)
    c.close()


@scenario
def internal_publish_refused(t: T):
    """Publishing to an internal exchange: 403; it still routes via an exchange binding."""
    c = t.connect()
    x, src = t.n("internal"), t.n("src")
    c.declare_exchange(1, x, "fanout", internal=True)
    c.declare_exchange(1, src, "fanout")
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.bind(1, q, x)
    c.call(1, "exchange.bind", destination=x, source=src, routing_key="")
    c.publish(1, src, "", "via-src")
    c.get(1, q, no_ack=True)
    c.publish(1, x, "", "direct-to-internal")
    c.expect("channel.close", "channel.close")
    c.channel(1)
    c.call(1, "exchange.delete", exchange=x)
    c.call(1, "exchange.delete", exchange=src)
    c.close()


@scenario
def publish_to_missing_exchange(t: T):
    """Publishing to an exchange that does not exist: 404 on basic.publish."""
    c = t.connect()
    c.publish(1, t.n("nope"), "k", "m")
    c.expect("channel.close", "channel.close")
    c.close()


@scenario
def exchange_to_exchange_routing(t: T):
    """exchange.bind: topic -> fanout -> queue; unbind stops it; bind-ok/unbind-ok."""
    c = t.connect()
    top, fan = t.n("top"), t.n("fan")
    c.declare_exchange(1, top, "topic")
    c.declare_exchange(1, fan, "fanout")
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.bind(1, q, fan)
    c.call(1, "exchange.bind", destination=fan, source=top, routing_key="a.*")
    c.publish(1, top, "a.b", "yes")
    c.publish(1, top, "b.a", "no")
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.call(1, "exchange.unbind", destination=fan, source=top, routing_key="a.*")
    c.publish(1, top, "a.b", "after-unbind")
    c.get(1, q, no_ack=True)
    c.call(1, "exchange.delete", exchange=top)
    c.call(1, "exchange.delete", exchange=fan)
    c.close()


@scenario
def exchange_bind_missing(t: T):
    """exchange.bind with a missing source, then with a missing destination: 404 each."""
    c = t.connect()
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    c.call(1, "exchange.bind", destination=x, source=t.n("nosrc"), routing_key="k")
    c.channel(1)
    c.call(1, "exchange.bind", destination=t.n("nodst"), source=x, routing_key="k")
    c.channel(1)
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def exchange_unbind_missing_binding(t: T):
    """exchange.unbind of a binding that does not exist between existing exchanges."""
    c = t.connect()
    a, b = t.n("a"), t.n("b")
    c.declare_exchange(1, a, "direct")
    c.declare_exchange(1, b, "direct")
    c.call(1, "exchange.unbind", destination=b, source=a, routing_key="nothing")
    c.settle()
    if not c.eof:
        c.call(1, "exchange.delete", exchange=a)
        c.call(1, "exchange.delete", exchange=b)
        c.close()


@scenario
def auto_delete_exchange(t: T):
    """An auto-delete exchange survives until its last binding goes, then disappears."""
    c = t.connect()
    x = t.n("ad")
    c.declare_exchange(1, x, "direct", auto_delete=True)
    c.declare_exchange(1, x, "direct", auto_delete=True, passive=True)
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.bind(1, q, x, "k1")
    c.bind(1, q, x, "k2")
    c.call(1, "queue.unbind", queue=q, exchange=x, routing_key="k1")
    c.declare_exchange(1, x, "direct", passive=True)
    c.call(1, "queue.unbind", queue=q, exchange=x, routing_key="k2")
    c.declare_exchange(1, x, "direct", passive=True)
    c.close()


@scenario
def alternate_exchange(t: T):
    """alternate-exchange gets what the main exchange cannot route; mandatory then no return."""
    c = t.connect()
    main, ae = t.n("main"), t.n("ae")
    c.declare_exchange(1, ae, "fanout")
    c.declare_exchange(1, main, "direct", arguments={"alternate-exchange": ae})
    ev = c.declare_queue(1, "", exclusive=True)
    qa = ev["queue"].decode()
    ev = c.declare_queue(1, "", exclusive=True)
    qm = ev["queue"].decode()
    c.bind(1, qa, ae)
    c.bind(1, qm, main, "known")
    c.publish(1, main, "known", "routed", mandatory=True)
    c.publish(1, main, "unknown", "to-ae", mandatory=True)
    c.get(1, qm, no_ack=True)
    c.get(1, qa, no_ack=True)
    c.get(1, qa, no_ack=True)
    c.settle()
    c.call(1, "exchange.delete", exchange=main)
    c.call(1, "exchange.delete", exchange=ae)
    c.close()


@scenario
def alternate_exchange_missing(t: T):
    """alternate-exchange naming a missing exchange: unroutable mandatory messages are returned."""
    c = t.connect()
    main = t.n("main")
    c.declare_exchange(1, main, "direct", arguments={"alternate-exchange": t.n("missing-ae")})
    c.publish(1, main, "k", "m", mandatory=True)
    c.expect("basic.return", "basic.return")
    c.call(1, "exchange.delete", exchange=main)
    c.close()


@scenario
def declare_nowait(t: T):
    """exchange.declare with no_wait: no declare-ok, the exchange exists."""
    c = t.connect()
    x = t.n("x")
    c.send(1, "exchange.declare", exchange=x, type="direct", no_wait=True)
    c.declare_exchange(1, x, "direct", passive=True)
    c.send(1, "exchange.delete", exchange=x, no_wait=True)
    c.declare_exchange(1, x, "direct", passive=True)
    c.close()


@scenario
def declare_unusual_name(t: T):
    """Exchange names with spaces and non-ASCII characters are accepted."""
    c = t.connect()
    x = "conf ex é/" + t.token
    t.names.append(x)
    c.declare_exchange(1, x, "fanout")
    c.declare_exchange(1, x, "fanout", passive=True)
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def declare_amq_prefix_passive(t: T):
    """Passive declare of a missing amq.* exchange: 404 (not 403)."""
    c = t.connect()
    c.declare_exchange(1, "amq.nope-" + t.token, "direct", passive=True)
    c.close()
