"""The same kind of checks driven by pika (a second, real client implementation).

Each scenario records what pika hands to the application: return values, message frames and
properties, callbacks, and the exception class with reply code and text."""

import logging
import time

from harness import T, scenario

logging.getLogger("pika").setLevel(logging.CRITICAL)


def _pika():
    import pika  # imported lazily: the raw scenarios do not need it

    return pika


def _params(t: T, user=None, password=None, vhost="/"):
    pika = _pika()
    return pika.ConnectionParameters(
        host=t.broker.host,
        port=t.broker.port,
        virtual_host=vhost,
        credentials=pika.PlainCredentials(user or t.broker.user, password or t.broker.password),
        heartbeat=0,
        connection_attempts=1,
        socket_timeout=2,
        blocked_connection_timeout=2,
        stack_timeout=5,
    )


def _connect(t: T, **kw):
    pika = _pika()
    conn = pika.BlockingConnection(_params(t, **kw))
    t.note("pika connected")
    return conn


def _exc(e: BaseException) -> str:
    """Exception class, and reply code/text when pika has them."""
    code = getattr(e, "reply_code", None)
    text = getattr(e, "reply_text", None)
    if code is not None:
        return f"{type(e).__name__}({code}, {text!r})"
    if e.args and isinstance(e.args[0], BaseException):
        return f"{type(e).__name__}<{_exc(e.args[0])}>"
    return f"{type(e).__name__}{e.args!r}"


def _props(p) -> str:
    fields = ["content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
              "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id"]
    return "{" + ", ".join(f"{f}={getattr(p, f)!r}" for f in fields if getattr(p, f) is not None) + "}"


def _method(m) -> str:
    keys = ["consumer_tag", "delivery_tag", "redelivered", "exchange", "routing_key", "message_count"]
    return f"{m.NAME} " + " ".join(f"{k}={getattr(m, k)!r}" for k in keys if hasattr(m, k))


def _get(t: T, ch, q, auto_ack=True):
    m, p, body = ch.basic_get(q, auto_ack=auto_ack)
    if m is None:
        t.note("basic_get -> empty")
    else:
        t.note(f"basic_get -> {_method(m)} props={_props(p)} body={body!r}")
    return m


@scenario
def pika_declare_publish_get(t: T):
    """pika: server-named queue, publish with properties, basic_get, message counts."""
    pika = _pika()
    conn = _connect(t)
    ch = conn.channel()
    r = ch.queue_declare("", exclusive=True)
    q = r.method.queue
    t.note(f"queue_declare -> {r.method.NAME} queue={q} message_count={r.method.message_count}")
    props = pika.BasicProperties(content_type="text/plain", delivery_mode=2, headers={"a": 1, "b": "x"},
                                 message_id="id-1", priority=3)
    ch.basic_publish("", q, b"hello", props)
    ch.basic_publish("", q, b"world")
    _get(t, ch, q)
    _get(t, ch, q)
    _get(t, ch, q)
    conn.close()
    t.note("closed")


@scenario
def pika_consume_and_ack(t: T):
    """pika: basic_consume with a callback, manual acks, process_data_events."""
    conn = _connect(t)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, f"m{i}".encode())
    got = []

    def on_msg(chan, method, props, body):
        got.append(f"{_method(method)} body={body!r}")
        chan.basic_ack(method.delivery_tag)

    tag = ch.basic_consume(q, on_msg, consumer_tag="pika-c")
    t.note(f"basic_consume -> {tag}")
    deadline = time.monotonic() + 2
    while len(got) < 3 and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    for g in got:
        t.note(g)
    ch.basic_cancel(tag)
    t.note(f"after cancel: {ch.queue_declare(q, passive=True).method.message_count} messages")
    conn.close()


@scenario
def pika_passive_declare_missing(t: T):
    """pika: passive declare of a missing queue raises ChannelClosedByBroker 404."""
    conn = _connect(t)
    ch = conn.channel()
    try:
        ch.queue_declare(t.n("nope"), passive=True)
        t.note("no error")
    except Exception as e:
        t.note(f"raised {_exc(e)}")
    t.note(f"channel is_closed={ch.is_closed} connection is_open={conn.is_open}")
    ch2 = conn.channel()
    t.note(f"new channel is_open={ch2.is_open}")
    conn.close()


@scenario
def pika_confirm_mandatory_unroutable(t: T):
    """pika: confirm_delivery + mandatory publish with no route raises UnroutableError."""
    pika = _pika()
    conn = _connect(t)
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"routed", mandatory=True)
    t.note("routed publish confirmed")
    try:
        ch.basic_publish("amq.direct", "nobody-" + t.token, b"lost", mandatory=True)
        t.note("no error")
    except pika.exceptions.UnroutableError as e:
        msgs = [(m.method.reply_code, m.method.reply_text, m.body) for m in e.messages]
        t.note(f"raised UnroutableError {msgs!r}")
    except Exception as e:
        t.note(f"raised {_exc(e)}")
    conn.close()


@scenario
def pika_bad_password(t: T):
    """pika: wrong password raises ProbableAuthenticationError / AuthenticationError."""
    pika = _pika()
    try:
        pika.BlockingConnection(_params(t, password="wrong"))
        t.note("connected?!")
    except Exception as e:
        t.note(f"raised {_exc(e)}")


@scenario
def pika_unknown_vhost(t: T):
    """pika: an unknown vhost is refused."""
    pika = _pika()
    try:
        pika.BlockingConnection(_params(t, vhost="no-such-vhost"))
        t.note("connected?!")
    except Exception as e:
        t.note(f"raised {_exc(e)}")


@scenario
def pika_tx_commit_rollback(t: T):
    """pika: tx_select, rollback discards, commit publishes."""
    conn = _connect(t)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    t.note(f"tx_select -> {ch.tx_select().method.NAME}")
    ch.basic_publish("", q, b"rolled-back")
    t.note(f"tx_rollback -> {ch.tx_rollback().method.NAME}")
    ch.basic_publish("", q, b"committed")
    t.note(f"tx_commit -> {ch.tx_commit().method.NAME}")
    _get(t, ch, q)
    _get(t, ch, q)
    conn.close()


@scenario
def pika_nack_requeue_redelivered(t: T):
    """pika: basic_get, basic_nack(requeue=True), the next get is redelivered."""
    conn = _connect(t)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"again")
    m = _get(t, ch, q, auto_ack=False)
    ch.basic_nack(m.delivery_tag, requeue=True)
    m = _get(t, ch, q, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=False)
    _get(t, ch, q)
    conn.close()


@scenario
def pika_topic_and_exchange_binding(t: T):
    """pika: topic exchange bound to a fanout exchange, routed into a queue."""
    conn = _connect(t)
    ch = conn.channel()
    top, fan = t.n("ptop"), t.n("pfan")
    ch.exchange_declare(top, "topic")
    ch.exchange_declare(fan, "fanout")
    ch.exchange_bind(fan, top, "a.#")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, fan)
    for rk in ("a", "a.b.c", "b.a"):
        ch.basic_publish(top, rk, rk.encode())
    for _ in range(3):
        _get(t, ch, q)
    ch.exchange_delete(top)
    ch.exchange_delete(fan)
    conn.close()


@scenario
def pika_qos_prefetch(t: T):
    """pika: basic_qos(prefetch_count=1) holds back deliveries until the ack."""
    conn = _connect(t)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, f"m{i}".encode())
    ch.basic_qos(prefetch_count=1)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((m.delivery_tag, b)), consumer_tag="q1")
    conn.process_data_events(time_limit=0.3)
    t.note(f"before ack: {got!r}")
    ch.basic_ack(got[-1][0] if got else 1)
    conn.process_data_events(time_limit=0.3)
    t.note(f"after one ack: {got!r}")
    conn.close()


@scenario
def pika_consumer_cancelled_by_broker(t: T):
    """pika: deleting the queue from another connection fires the on-cancel callback."""
    q = t.n("pq")
    conn = _connect(t)
    ch = conn.channel()
    ch.queue_declare(q)
    seen = []
    ch.add_on_cancel_callback(lambda frame: seen.append(frame.method.NAME + " " + frame.method.consumer_tag))
    ch.basic_consume(q, lambda *a: None, consumer_tag="doomed")
    other = _connect(t)
    r = other.channel().queue_delete(q)
    t.note(f"queue_delete -> message_count={r.method.message_count}")
    other.close()
    deadline = time.monotonic() + 2
    while not seen and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    t.note(f"cancel callback: {seen!r}")
    conn.close()


@scenario
def pika_headers_exchange(t: T):
    """pika: headers exchange with x-match any."""
    pika = _pika()
    conn = _connect(t)
    ch = conn.channel()
    x = t.n("phdr")
    ch.exchange_declare(x, "headers")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, arguments={"x-match": "any", "color": "red", "size": 10})
    for h in ({"color": "red"}, {"size": 10}, {"color": "blue"}, {}):
        ch.basic_publish(x, "", repr(sorted(h.items())).encode(), pika.BasicProperties(headers=h))
    for _ in range(3):
        _get(t, ch, q)
    ch.exchange_delete(x)
    conn.close()


@scenario
def pika_exchange_redeclare_mismatch(t: T):
    """pika: redeclaring an exchange with another type raises ChannelClosedByBroker 406."""
    conn = _connect(t)
    ch = conn.channel()
    x = t.n("pmis")
    ch.exchange_declare(x, "direct")
    try:
        ch.exchange_declare(x, "fanout")
        t.note("no error")
    except Exception as e:
        t.note(f"raised {_exc(e)}")
    conn.channel().exchange_delete(x)
    conn.close()


@scenario
def pika_purge_and_delete_counts(t: T):
    """pika: queue_purge and queue_delete report message counts."""
    conn = _connect(t)
    ch = conn.channel()
    ch.confirm_delivery()
    q = t.n("pcount")
    ch.queue_declare(q)
    for i in range(4):
        ch.basic_publish("", q, b"x")
    t.note(f"passive declare -> message_count={ch.queue_declare(q, passive=True).method.message_count}")
    t.note(f"queue_purge -> message_count={ch.queue_purge(q).method.message_count}")
    ch.basic_publish("", q, b"y")
    t.note(f"queue_delete -> message_count={ch.queue_delete(q).method.message_count}")
    conn.close()


@scenario
def pika_consume_generator(t: T):
    """pika: the channel.consume() generator with an inactivity timeout."""
    conn = _connect(t)
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(2):
        ch.basic_publish("", q, f"g{i}".encode())
    n = 0
    for method, props, body in ch.consume(q, auto_ack=True, inactivity_timeout=0.3):
        if method is None:
            t.note("inactivity timeout")
            break
        tag_ok = method.consumer_tag.startswith("ctag")
        t.note(f"{_method(method).replace(repr(method.consumer_tag), '<pika-generated ctag>')} "
               f"body={body!r} (pika's tag kept: {tag_ok})")
        n += 1
    t.note(f"cancel -> {ch.cancel()} requeued")
    conn.close()


@scenario
def pika_publish_to_missing_exchange(t: T):
    """pika: publish to a missing exchange closes the channel with 404 (seen on the next call)."""
    conn = _connect(t)
    ch = conn.channel()
    ch.basic_publish(t.n("nope"), "k", b"x")
    try:
        ch.queue_declare("", exclusive=True)
        t.note("no error")
    except Exception as e:
        t.note(f"raised {_exc(e)}")
    conn.close()
