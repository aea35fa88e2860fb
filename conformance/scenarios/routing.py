"""Routing through direct, fanout, topic, headers and the default exchange."""

from harness import T, scenario


def _route(t: T, xtype: str, bindings: list, messages: list, xargs=None):
    """Declare an exchange of xtype, one exclusive queue per binding (key, args), publish each
    message (routing_key, headers) with mandatory, then report which queues got what."""
    c = t.connect(sync=True)
    x = t.n(f"x-{xtype}")
    c.declare_exchange(1, x, xtype, arguments=xargs)
    queues = []
    for i, (key, args) in enumerate(bindings):
        q = t.n(f"b{i}")
        c.declare_queue(1, q, exclusive=True)
        ev = c.bind(1, q, x, key, arguments=args)
        if ev is None or ev.name != "queue.bind-ok":
            t.note("binding failed: scenario stops")
            if not c.eof:
                c.close()
            return
        queues.append(q)
    for rk, headers in messages:
        props = {"headers": headers} if headers is not None else None
        c.publish(1, x, rk, f"{rk}|{sorted(headers) if headers else ''}", props=props, mandatory=True)
    c.settle()
    for i, q in enumerate(queues):
        got = []
        while True:
            ev = c.call(1, "basic.get", queue=q, no_ack=True, _record=False)
            if ev is None or ev.name != "basic.get-ok":
                break
            got.append(ev.body.decode())
        key, args = bindings[i]
        t.note(f"binding {key!r} {args or ''} got {got}")
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def direct_exact_match(t: T):
    """direct: only the exact key matches; unmatched mandatory messages are returned."""
    _route(t, "direct", [("a", None), ("b", None), ("a", None)],
           [("a", None), ("b", None), ("c", None), ("A", None), ("", None)])


@scenario
def direct_same_queue_two_keys(t: T):
    """direct: a queue bound with two keys gets one copy per matching message."""
    c = t.connect(sync=True)
    x = t.n("x")
    c.declare_exchange(1, x, "direct")
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.bind(1, q, x, "k1")
    c.bind(1, q, x, "k2")
    c.publish(1, x, "k1", "one")
    c.publish(1, x, "k2", "two")
    c.declare_queue(1, q, passive=True)
    c.call(1, "exchange.delete", exchange=x)
    c.close()


@scenario
def direct_empty_key(t: T):
    """direct: the empty routing key is a key like any other."""
    _route(t, "direct", [("", None), ("x", None)], [("", None), ("x", None)])


@scenario
def fanout_ignores_key(t: T):
    """fanout: every bound queue gets every message, whatever the keys."""
    _route(t, "fanout", [("a", None), ("", None), ("#", None)], [("zzz", None), ("", None)])


@scenario
def fanout_no_bindings(t: T):
    """fanout with no bindings: a mandatory message is returned."""
    _route(t, "fanout", [], [("k", None)])


@scenario
def topic_star(t: T):
    """topic: * matches exactly one word."""
    _route(t, "topic", [("a.*", None), ("*.b", None), ("*", None), ("a.*.c", None)],
           [("a.b", None), ("a", None), ("a.b.c", None), ("x.b", None), ("b", None), ("a..c", None), ("", None)])


@scenario
def topic_hash(t: T):
    """topic: # matches zero or more words."""
    _route(t, "topic", [("a.#", None), ("#.z", None), ("#", None), ("a.#.z", None)],
           [("a", None), ("a.b", None), ("a.b.c.z", None), ("z", None), ("a.z", None), ("", None), ("b.a", None)])


@scenario
def topic_mixed_wildcards(t: T):
    """topic: *.# , #.* , *.*.# and #.#."""
    _route(t, "topic", [("*.#", None), ("#.*", None), ("*.*.#", None), ("#.#", None)],
           [("", None), ("a", None), ("a.b", None), ("a.b.c", None)])


@scenario
def topic_empty_words(t: T):
    """topic: empty words (leading, trailing, doubled dots)."""
    _route(t, "topic", [("*.a", None), ("a.*", None), ("a..b", None), ("a.*.b", None), ("", None)],
           [(".a", None), ("a.", None), ("a..b", None), ("", None), (".", None)])


@scenario
def topic_literal_key_and_case(t: T):
    """topic: keys without wildcards match exactly and case-sensitively."""
    _route(t, "topic", [("stock.usd.nyse", None), ("Stock.USD.nyse", None)],
           [("stock.usd.nyse", None), ("STOCK.usd.nyse", None), ("stock.usd", None)])


@scenario
def topic_hash_in_middle(t: T):
    """topic: a.#.b matches a.b, a.x.b, a.x.y.b but not a.b.c."""
    _route(t, "topic", [("a.#.b", None), ("#.b.#", None)],
           [("a.b", None), ("a.x.b", None), ("a.x.y.b", None), ("a.b.c", None), ("b", None), ("x.b.y", None)])


@scenario
def topic_wildcard_like_characters(t: T):
    """topic: '*' and '#' inside a word are plain characters."""
    _route(t, "topic", [("a*.b", None), ("a#", None), ("#a", None)],
           [("a*.b", None), ("ax.b", None), ("a#", None), ("a", None), ("#a", None)])


@scenario
def headers_all(t: T):
    """headers x-match=all: every binding header must be present and equal."""
    _route(t, "headers", [("", {"x-match": "all", "a": 1, "b": "two"})],
           [("m1", {"a": 1, "b": "two"}), ("m2", {"a": 1}), ("m3", {"a": 1, "b": "two", "c": 3}),
            ("m4", {"a": 2, "b": "two"}), ("m5", None)])


@scenario
def headers_any(t: T):
    """headers x-match=any: one matching header is enough."""
    _route(t, "headers", [("", {"x-match": "any", "a": 1, "b": "two"})],
           [("m1", {"a": 1}), ("m2", {"b": "two"}), ("m3", {"c": 1}), ("m4", {"a": 2, "b": "three"}), ("m5", None)])


@scenario
def headers_default_is_all(t: T):
    """headers without x-match behaves as all."""
    _route(t, "headers", [("", {"a": 1, "b": 2})], [("m1", {"a": 1}), ("m2", {"a": 1, "b": 2})])


@scenario
def headers_void_value(t: T):
    """headers: a void binding value matches only a void header value."""
    _route(t, "headers", [("", {"x-match": "all", "flag": None}), ("", {"x-match": "any", "flag": None})],
           [("void", {"flag": None}), ("str", {"flag": "x"}), ("absent", {"other": 1})])


@scenario
def headers_x_args_ignored(t: T):
    """headers: binding arguments starting with x- do not take part in matching."""
    _route(t, "headers", [("", {"x-match": "all", "x-extra": "y", "a": 1})],
           [("m1", {"a": 1}), ("m2", {"a": 1, "x-extra": "no"})])


@scenario
def headers_empty_binding(t: T):
    """headers: a binding with no headers (all) matches every message; with any, none."""
    _route(t, "headers", [("", {}), ("", {"x-match": "any"})], [("m1", {"a": 1}), ("m2", None)])


@scenario
def headers_type_sensitivity(t: T):
    """headers: integer 1 vs string '1' vs long 1, and booleans."""
    from amqp_raw import Value
    _route(t, "headers", [("", {"x-match": "all", "n": 1}), ("", {"x-match": "all", "b": True})],
           [("int", {"n": 1}), ("str", {"n": "1"}), ("long", {"n": Value("l", 1)}),
            ("true", {"b": True}), ("one", {"b": 1})])


@scenario
def headers_routing_key_ignored(t: T):
    """headers: the routing key plays no part."""
    _route(t, "headers", [("some-key", {"a": 1})], [("other-key", {"a": 1}), ("some-key", {"a": 2})])


@scenario
def headers_all_with_x_any_with_x(t: T):
    """headers x-match=all-with-x / any-with-x (RabbitMQ 3.10 extension) also match x- headers."""
    _route(t, "headers", [("", {"x-match": "any-with-x", "x-k": "v"}),
                          ("", {"x-match": "all-with-x", "x-k": "v", "a": 1}),
                          ("", {"x-match": "all", "x-k": "v", "a": 1})],
           [("m1", {"x-k": "v"}), ("m2", {"x-k": "v", "a": 1}), ("m3", {"x-k": "w", "a": 1})])


@scenario
def headers_invalid_x_match(t: T):
    """headers: an x-match value other than all/any/all-with-x/any-with-x is refused with 406."""
    _route(t, "headers", [("", {"x-match": "some"})], [])


@scenario
def headers_x_match_wrong_type(t: T):
    """headers: x-match given as an integer."""
    _route(t, "headers", [("", {"x-match": 1})], [])


@scenario
def default_exchange_routes_by_queue_name(t: T):
    """default exchange: routing key = queue name; unknown names are returned when mandatory."""
    c = t.connect()
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.publish(1, "", q, "hit", mandatory=True)
    c.publish(1, "", q + ".other", "miss", mandatory=True)
    c.expect("basic.return", "basic.return")
    c.get(1, q, no_ack=True)
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def default_exchange_explicit_bind_forbidden(t: T):
    """The default exchange cannot be bound, even with the queue's own name."""
    c = t.connect()
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.bind(1, q, "", q)
    c.close()


@scenario
def amq_default_exchanges_route(t: T):
    """amq.direct, amq.fanout, amq.topic, amq.headers and amq.match route as their types."""
    c = t.connect(sync=True)
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.bind(1, q, "amq.direct", "d")
    c.bind(1, q, "amq.fanout", "")
    c.bind(1, q, "amq.topic", "t.*")
    c.bind(1, q, "amq.headers", "", arguments={"h": 1})
    c.bind(1, q, "amq.match", "", arguments={"m": 1})
    c.publish(1, "amq.direct", "d", "direct")
    c.publish(1, "amq.fanout", "whatever", "fanout")
    c.publish(1, "amq.topic", "t.x", "topic")
    c.publish(1, "amq.headers", "", "headers", props={"headers": {"h": 1}})
    c.publish(1, "amq.match", "", "match", props={"headers": {"m": 1}})
    for _ in range(6):
        c.get(1, q, no_ack=True)
    c.close()


@scenario
def multiple_routes_one_copy(t: T):
    """A message reaching a queue through two exchanges (e2e) arrives once."""
    c = t.connect(sync=True)
    a, b = t.n("a"), t.n("b")
    c.declare_exchange(1, a, "fanout")
    c.declare_exchange(1, b, "fanout")
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.bind(1, q, a)
    c.bind(1, q, b)
    c.call(1, "exchange.bind", destination=b, source=a, routing_key="")
    c.publish(1, a, "", "once")
    c.declare_queue(1, q, passive=True)
    c.call(1, "exchange.delete", exchange=a)
    c.call(1, "exchange.delete", exchange=b)
    c.close()


@scenario
def exchange_binding_cycle(t: T):
    """Exchange bindings forming a cycle deliver one copy and do not loop."""
    c = t.connect(sync=True)
    a, b = t.n("a"), t.n("b")
    c.declare_exchange(1, a, "fanout")
    c.declare_exchange(1, b, "fanout")
    q = t.n("q")
    c.declare_queue(1, q, exclusive=True)
    c.bind(1, q, b)
    c.call(1, "exchange.bind", destination=b, source=a, routing_key="")
    c.call(1, "exchange.bind", destination=a, source=b, routing_key="")
    c.publish(1, a, "", "cycle")
    c.declare_queue(1, q, passive=True)
    c.call(1, "exchange.delete", exchange=a)
    c.call(1, "exchange.delete", exchange=b)
    c.close()
