"""AMQP 0-9-1 behaviour seen through pika's BlockingConnection.

The same tests run against warren and against a real RabbitMQ (the reference):

    conformance/rabbitmq.sh start        # a private RabbitMQ on 127.0.0.1:5673
    VENV=$(scripts/python-venv.sh)
    AMQP_URL=amqp://guest:guest@127.0.0.1:5673/%2f $VENV/bin/pytest -q tests/python

AMQP_URL is required. Every test uses its own uuid-named queues and exchanges, deletes
them afterwards, uses short socket/blocked-connection timeouts and bounded loops, and is
killed by SIGALRM after TEST_TIMEOUT seconds, so a broker that never answers fails the
test instead of hanging the run.
"""

import datetime
import decimal
import os
import signal
import time
import uuid

import pika
import pika.exceptions as pex
import pytest

AMQP_URL = os.environ.get("AMQP_URL", "").strip()
if not AMQP_URL:
    raise RuntimeError(
        "AMQP_URL is not set: point it at the broker under test, "
        "e.g. AMQP_URL=amqp://guest:guest@127.0.0.1:5673/%2f"
    )

TEST_TIMEOUT = float(os.environ.get("WARREN_TEST_TIMEOUT", "30"))
WAIT = 3.0  # seconds to wait for something that should happen
SETTLE = 0.3  # seconds to wait for something that should NOT happen


# --------------------------------------------------------------------------------------
# helpers and fixtures


def params():
    p = pika.URLParameters(AMQP_URL)
    p.socket_timeout = 5
    p.stack_timeout = 10
    p.blocked_connection_timeout = 5
    p.connection_attempts = 1
    p.heartbeat = 30
    return p


def connect():
    return pika.BlockingConnection(params())


def uniq(kind):
    return f"warren-pika-{kind}-{uuid.uuid4().hex}"


def close_quietly(conn):
    try:
        if conn.is_open:
            conn.close()
    except Exception:
        pass


@pytest.fixture(autouse=True)
def _hard_timeout():
    """Fail (never hang) if a test takes more than TEST_TIMEOUT seconds."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"test took more than {TEST_TIMEOUT}s (broker not answering?)")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Broker:
    """Opens connections and remembers what to delete when the test ends."""

    def __init__(self):
        self.connections = []
        self.queues = []
        self.exchanges = []

    def connect(self):
        conn = connect()
        self.connections.append(conn)
        return conn

    def queue(self, ch, name=None, **kwargs):
        ok = ch.queue_declare(name if name is not None else uniq("q"), **kwargs)
        self.queues.append(ok.method.queue)
        return ok.method.queue

    def exchange(self, ch, exchange_type, name=None, **kwargs):
        name = name or uniq(f"x-{exchange_type}")
        ch.exchange_declare(name, exchange_type=exchange_type, **kwargs)
        self.exchanges.append(name)
        return name

    def cleanup(self):
        for conn in self.connections:
            close_quietly(conn)
        if not (self.queues or self.exchanges):
            return
        conn = connect()
        try:
            for q in self.queues:
                ch = conn.channel()
                try:
                    ch.queue_delete(q)
                except pex.AMQPChannelError:
                    pass  # already gone (exclusive / auto-delete)
                finally:
                    if ch.is_open:
                        ch.close()
            for x in self.exchanges:
                ch = conn.channel()
                try:
                    ch.exchange_delete(x)
                except pex.AMQPChannelError:
                    pass
                finally:
                    if ch.is_open:
                        ch.close()
        finally:
            close_quietly(conn)


@pytest.fixture
def broker():
    b = Broker()
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def conn(broker):
    return broker.connect()


@pytest.fixture
def ch(conn):
    return conn.channel()


def get_one(ch, queue, auto_ack=False, timeout=WAIT):
    """basic.get until a message arrives (publishes are asynchronous) or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, props, body
        if time.monotonic() > deadline:
            raise AssertionError(f"no message arrived on {queue} within {timeout}s")
        ch.connection.sleep(0.05)


def drain(ch, queue, limit=100):
    """All bodies currently ready in the queue (auto-acked), in order."""
    bodies = []
    for _ in range(limit):
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return bodies
        bodies.append(body)
    raise AssertionError(f"more than {limit} messages in {queue}")


def ready_count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def wait_ready_count(ch, queue, expected, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        n = ready_count(ch, queue)
        if n == expected or time.monotonic() > deadline:
            return n
        ch.connection.sleep(0.05)


def expect_channel_error(code, text_prefix, fn, *args, **kwargs):
    with pytest.raises(pex.ChannelClosedByBroker) as info:
        fn(*args, **kwargs)
    assert info.value.reply_code == code, info.value
    assert info.value.reply_text.startswith(text_prefix), info.value
    return info.value


# --------------------------------------------------------------------------------------
# publish / consume / get


def test_publish_consume_round_trip_with_properties(broker, ch):
    q = broker.queue(ch)
    headers = {
        "str": "héllo wörld",
        "int": 42,
        "negative": -7,
        "big": 2**40,
        "bool_true": True,
        "bool_false": False,
        "decimal": decimal.Decimal("12.34"),
        "timestamp": datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=datetime.timezone.utc),
        "bytes": b"\x00\x01\xfe\xff",
        "list": [1, "two", True],
        "nested": {"inner": "value", "n": 3},
        "void": None,
    }
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        delivery_mode=2,
        priority=5,
        correlation_id="corr-" + uuid.uuid4().hex,
        reply_to="reply-queue",
        expiration="60000",
        message_id="msg-1",
        timestamp=1700000000,
        type="greeting",
        app_id="warren-tests",
    )
    body = b'{"hello": "world"}' + bytes(range(256))  # binary-safe body
    ch.basic_publish("", q, body, props)

    received = []
    for method, rprops, rbody in ch.consume(q, inactivity_timeout=WAIT):
        if method is None:
            break
        received.append((method, rprops, rbody))
        ch.basic_ack(method.delivery_tag)
        break
    ch.cancel()

    assert len(received) == 1, "message was not delivered to the consumer"
    method, rprops, rbody = received[0]
    assert rbody == body
    assert method.routing_key == q
    assert method.exchange == ""
    assert method.redelivered is False
    assert method.delivery_tag == 1
    assert rprops.content_type == "application/json"
    assert rprops.content_encoding == "utf-8"
    assert rprops.delivery_mode == 2
    assert rprops.priority == 5
    assert rprops.correlation_id == props.correlation_id
    assert rprops.reply_to == "reply-queue"
    assert rprops.expiration == "60000"
    assert rprops.message_id == "msg-1"
    assert rprops.timestamp == 1700000000
    assert rprops.type == "greeting"
    assert rprops.app_id == "warren-tests"
    assert rprops.user_id is None
    assert rprops.headers == headers
    # the ack removed it
    assert wait_ready_count(ch, q, 0) == 0
    assert ch.basic_get(q) == (None, None, None)


def test_consume_delivers_in_order_to_consumer_callback(broker, conn, ch):
    q = broker.queue(ch)
    for i in range(10):
        ch.basic_publish("", q, f"m{i}".encode())
    got = []

    def on_message(c, method, props, body):
        got.append((method.delivery_tag, body))
        c.basic_ack(method.delivery_tag)

    tag = ch.basic_consume(q, on_message)
    assert tag.startswith("ctag")
    deadline = time.monotonic() + WAIT
    while len(got) < 10 and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.1)
    ch.basic_cancel(tag)
    assert [b for _, b in got] == [f"m{i}".encode() for i in range(10)]
    assert [t for t, _ in got] == list(range(1, 11))


def test_basic_get_empty_and_message_count(broker, ch):
    q = broker.queue(ch)
    assert ch.basic_get(q) == (None, None, None)
    assert ch.basic_get(q, auto_ack=True) == (None, None, None)

    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", q, f"m{i}".encode(), pika.BasicProperties(message_id=str(i)))
    assert wait_ready_count(ch, q, 3) == 3

    method, props, body = get_one(ch, q)
    assert isinstance(method, pika.spec.Basic.GetOk)
    assert body == b"m0"
    assert props.message_id == "0"
    assert method.message_count == 2  # messages still ready after this one
    assert method.redelivered is False
    assert method.routing_key == q
    assert method.exchange == ""
    ch.basic_ack(method.delivery_tag)

    method, _, body = get_one(ch, q, auto_ack=True)
    assert body == b"m1"
    assert method.message_count == 1

    method, _, body = get_one(ch, q, auto_ack=True)
    assert body == b"m2"
    assert method.message_count == 0

    assert ch.basic_get(q) == (None, None, None)
    assert ready_count(ch, q) == 0


def test_empty_body_and_large_body(broker, ch):
    q = broker.queue(ch)
    ch.confirm_delivery()
    large = os.urandom(300 * 1024)  # several frames at any frame_max
    ch.basic_publish("", q, b"")
    ch.basic_publish("", q, large)
    _, _, body = get_one(ch, q, auto_ack=True)
    assert body == b""
    _, _, body = get_one(ch, q, auto_ack=True)
    assert body == large


# --------------------------------------------------------------------------------------
# mandatory / returns


def test_mandatory_unroutable_with_confirms_raises_unroutable_312(broker, ch):
    ch.confirm_delivery()
    key = uniq("nowhere")
    props = pika.BasicProperties(correlation_id="c-1")
    with pytest.raises(pex.UnroutableError) as info:
        ch.basic_publish("", key, b"lost", props, mandatory=True)
    assert len(info.value.messages) == 1
    returned = info.value.messages[0]
    assert returned.method.reply_code == 312
    assert returned.method.reply_text == "NO_ROUTE"
    assert returned.method.exchange == ""
    assert returned.method.routing_key == key
    assert returned.body == b"lost"
    assert returned.properties.correlation_id == "c-1"

    # not mandatory: silently dropped, still confirmed
    ch.basic_publish("", key, b"dropped", mandatory=False)
    # mandatory and routable: no return
    q = broker.queue(ch)
    ch.basic_publish("", q, b"kept", mandatory=True)
    _, _, body = get_one(ch, q, auto_ack=True)
    assert body == b"kept"


def test_mandatory_unroutable_on_return_callback(broker, conn, ch):
    x = broker.exchange(ch, "direct")
    returns = []
    ch.add_on_return_callback(lambda c, method, props, body: returns.append((method, body)))
    ch.basic_publish(x, "no-binding", b"bounce", mandatory=True)
    deadline = time.monotonic() + WAIT
    while not returns and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.1)
    assert len(returns) == 1, "no basic.return received"
    method, body = returns[0]
    assert method.reply_code == 312
    assert method.reply_text == "NO_ROUTE"
    assert method.exchange == x
    assert method.routing_key == "no-binding"
    assert body == b"bounce"
    # a non-mandatory unroutable publish produces no return
    ch.basic_publish(x, "no-binding", b"quiet")
    conn.process_data_events(time_limit=SETTLE)
    assert len(returns) == 1


# --------------------------------------------------------------------------------------
# channel errors


def test_passive_declare_of_missing_queue_is_404_and_connection_survives(broker, conn):
    ch = conn.channel()
    missing = uniq("missing")
    err = expect_channel_error(404, "NOT_FOUND", ch.queue_declare, missing, passive=True)
    assert missing in err.reply_text
    assert ch.is_closed
    assert conn.is_open

    ch2 = conn.channel()
    assert ch2.channel_number != 0
    q = broker.queue(ch2)
    ch2.basic_publish("", q, b"still works")
    _, _, body = get_one(ch2, q, auto_ack=True)
    assert body == b"still works"

    # the same for exchanges, and for consuming from a missing queue
    expect_channel_error(404, "NOT_FOUND", ch2.exchange_declare, uniq("x"), passive=True)
    ch3 = conn.channel()
    expect_channel_error(404, "NOT_FOUND", ch3.basic_consume, missing, lambda *a: None)
    ch4 = conn.channel()
    expect_channel_error(404, "NOT_FOUND", ch4.queue_bind, missing, "amq.direct", "k")
    assert conn.is_open
    ch5 = conn.channel()
    assert ready_count(ch5, q) == 0


def test_publish_to_missing_exchange_closes_channel_404(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    expect_channel_error(404, "NOT_FOUND", ch.basic_publish, uniq("x"), "k", b"x")
    assert conn.is_open
    assert conn.channel().is_open


def test_redeclare_with_different_attributes_is_406(broker, conn):
    ch = conn.channel()
    q = broker.queue(ch, durable=False)
    assert ch.queue_declare(q, durable=False).method.queue == q  # same attributes: fine
    expect_channel_error(406, "PRECONDITION_FAILED", ch.queue_declare, q, durable=True)
    ch = conn.channel()
    expect_channel_error(406, "PRECONDITION_FAILED", ch.queue_declare, q, auto_delete=True)
    ch = conn.channel()
    expect_channel_error(
        406, "PRECONDITION_FAILED", ch.queue_declare, q, arguments={"x-max-length": 10}
    )
    ch = conn.channel()
    x = broker.exchange(ch, "direct")
    expect_channel_error(
        406, "PRECONDITION_FAILED", ch.exchange_declare, x, exchange_type="fanout"
    )
    assert conn.is_open
    # the originals are untouched
    ch = conn.channel()
    assert ch.queue_declare(q, passive=True).method.queue == q
    ch.exchange_declare(x, exchange_type="direct", passive=True)


def test_reserved_names_are_403(conn):
    ch = conn.channel()
    expect_channel_error(
        403, "ACCESS_REFUSED", ch.exchange_declare, "amq.warren-" + uuid.uuid4().hex, "direct"
    )
    ch = conn.channel()
    expect_channel_error(403, "ACCESS_REFUSED", ch.queue_declare, "amq.warren-" + uuid.uuid4().hex)
    assert conn.is_open


def test_exclusive_queue_from_another_connection_is_405(broker):
    owner = broker.connect()
    och = owner.channel()
    q = broker.queue(och, "", exclusive=True)  # server-named
    assert q.startswith("amq.gen-")
    och.basic_publish("", q, b"mine")
    get_one(och, q)  # owner can use it

    other = broker.connect()
    ch = other.channel()
    expect_channel_error(405, "RESOURCE_LOCKED", ch.queue_declare, q, passive=True)
    ch = other.channel()
    expect_channel_error(405, "RESOURCE_LOCKED", ch.basic_consume, q, lambda *a: None)
    ch = other.channel()
    expect_channel_error(405, "RESOURCE_LOCKED", ch.basic_get, q)
    assert other.is_open

    # the queue goes away with its owner
    owner.close()
    ch = other.channel()
    deadline = time.monotonic() + WAIT
    while True:
        try:
            ch.queue_declare(q, passive=True)
        except pex.ChannelClosedByBroker as e:
            assert e.reply_code in (404, 405)
            if e.reply_code == 404:
                break
            ch = other.channel()
        if time.monotonic() > deadline:
            raise AssertionError("exclusive queue survived its connection")
        other.sleep(0.05)


def test_queue_purge_and_delete_report_counts(broker, ch):
    q = broker.queue(ch)
    ch.confirm_delivery()
    for i in range(4):
        ch.basic_publish("", q, b"x")
    assert ch.queue_purge(q).method.message_count == 4
    assert ready_count(ch, q) == 0
    ch.basic_publish("", q, b"y")
    ch.basic_publish("", q, b"z")
    ok = ch.queue_delete(q, if_empty=False)
    assert ok.method.message_count == 2
    expect_channel_error(404, "NOT_FOUND", ch.queue_declare, q, passive=True)


def test_queue_delete_if_empty_refuses_non_empty_406(broker, conn):
    ch = conn.channel()
    q = broker.queue(ch)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"x")
    expect_channel_error(406, "PRECONDITION_FAILED", ch.queue_delete, q, if_empty=True)
    ch = conn.channel()
    assert ready_count(ch, q) == 1


# --------------------------------------------------------------------------------------
# publisher confirms


def test_publisher_confirms(broker, ch):
    q = broker.queue(ch)
    ch.confirm_delivery()
    for i in range(50):
        # returns None once the broker acked it; NackError/UnroutableError otherwise
        assert ch.basic_publish("", q, f"c{i}".encode(), mandatory=True) is None
    # confirmed means enqueued: the count is exact right away
    assert ready_count(ch, q) == 50
    assert drain(ch, q) == [f"c{i}".encode() for i in range(50)]
    # confirm.select twice is fine
    ch.confirm_delivery()
    ch.basic_publish("", q, b"again")
    assert ready_count(ch, q) == 1


def test_confirm_select_on_transactional_channel_is_406(conn):
    ch = conn.channel()
    ch.tx_select()
    expect_channel_error(406, "PRECONDITION_FAILED", ch.confirm_delivery)
    ch = conn.channel()
    ch.confirm_delivery()
    expect_channel_error(406, "PRECONDITION_FAILED", ch.tx_select)


# --------------------------------------------------------------------------------------
# acknowledgements


def test_nack_reject_requeue_sets_redelivered(broker, ch):
    q = broker.queue(ch)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"a")
    ch.basic_publish("", q, b"b")

    m, _, body = get_one(ch, q)
    assert (body, m.redelivered) == (b"a", False)
    ch.basic_nack(m.delivery_tag, requeue=True)

    m, _, body = get_one(ch, q)
    assert (body, m.redelivered) == (b"a", True)  # requeued at its old place
    ch.basic_reject(m.delivery_tag, requeue=True)

    m, _, body = get_one(ch, q)
    assert (body, m.redelivered) == (b"a", True)
    ch.basic_ack(m.delivery_tag)

    m, _, body = get_one(ch, q)
    assert (body, m.redelivered) == (b"b", False)
    ch.basic_reject(m.delivery_tag, requeue=False)  # dropped
    assert ch.basic_get(q) == (None, None, None)
    assert ready_count(ch, q) == 0


def test_nack_multiple_and_ack_multiple(broker, ch):
    q = broker.queue(ch)
    ch.confirm_delivery()
    for i in range(6):
        ch.basic_publish("", q, f"m{i}".encode())
    tags = [get_one(ch, q)[0].delivery_tag for _ in range(6)]
    assert tags == sorted(tags) and len(set(tags)) == 6
    ch.basic_ack(tags[1], multiple=True)  # m0, m1
    ch.basic_nack(tags[3], multiple=True, requeue=True)  # m2, m3 back
    ch.basic_nack(tags[5], multiple=True, requeue=False)  # m4, m5 dropped
    m, _, body = get_one(ch, q, auto_ack=True)
    assert (body, m.redelivered) == (b"m2", True)
    m, _, body = get_one(ch, q, auto_ack=True)
    assert (body, m.redelivered) == (b"m3", True)
    assert ch.basic_get(q) == (None, None, None)


def test_unacked_messages_are_requeued_when_channel_closes(broker, conn):
    ch = conn.channel()
    q = broker.queue(ch)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"x")
    m, _, _ = get_one(ch, q)
    assert m.redelivered is False
    ch2 = conn.channel()
    assert ready_count(ch2, q) == 0  # it is unacked, not ready
    ch.close()
    assert wait_ready_count(ch2, q, 1) == 1
    m, _, body = get_one(ch2, q, auto_ack=True)
    assert (body, m.redelivered) == (b"x", True)


def test_unknown_delivery_tag_is_406(conn):
    ch = conn.channel()
    ch.basic_ack(12345)
    # the error arrives asynchronously; the next synchronous call sees the closed channel
    with pytest.raises(pex.ChannelClosedByBroker) as info:
        ch.queue_declare("", exclusive=True)
    assert info.value.reply_code == 406
    assert info.value.reply_text.startswith("PRECONDITION_FAILED")
    assert conn.is_open


# --------------------------------------------------------------------------------------
# QoS


def test_qos_prefetch_count_one_limits_unacked_deliveries(broker, conn):
    ch = conn.channel()
    q = broker.queue(ch)
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", q, f"m{i}".encode())
    ch.basic_qos(prefetch_count=1)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((m.delivery_tag, b)))

    def pump(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            conn.process_data_events(time_limit=0.05)

    deadline = time.monotonic() + WAIT
    while not got and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    pump(SETTLE)
    assert [b for _, b in got] == [b"m0"], "prefetch_count=1 must allow one unacked delivery"
    other = conn.channel()
    assert ready_count(other, q) == 2

    ch.basic_ack(got[0][0])
    deadline = time.monotonic() + WAIT
    while len(got) < 2 and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    pump(SETTLE)
    assert [b for _, b in got] == [b"m0", b"m1"]

    ch.basic_ack(got[1][0])
    deadline = time.monotonic() + WAIT
    while len(got) < 3 and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    assert [b for _, b in got] == [b"m0", b"m1", b"m2"]
    ch.basic_ack(got[2][0])


def test_qos_prefetch_count_two_and_multiple_ack(broker, conn):
    ch = conn.channel()
    q = broker.queue(ch)
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish("", q, f"m{i}".encode())
    ch.basic_qos(prefetch_count=2)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
    deadline = time.monotonic() + WAIT
    while len(got) < 2 and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    conn.process_data_events(time_limit=SETTLE)
    assert len(got) == 2
    ch.basic_ack(got[-1], multiple=True)  # frees both slots
    deadline = time.monotonic() + WAIT
    while len(got) < 4 and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    conn.process_data_events(time_limit=SETTLE)
    assert len(got) == 4


# --------------------------------------------------------------------------------------
# exchanges and routing


def routed(ch, queues):
    """{queue: [bodies]} for every queue, draining them."""
    return {q: drain(ch, q) for q in queues}


def test_direct_exchange(broker, ch):
    x = broker.exchange(ch, "direct")
    qa, qb, qab = broker.queue(ch), broker.queue(ch), broker.queue(ch)
    ch.queue_bind(qa, x, "a")
    ch.queue_bind(qb, x, "b")
    ch.queue_bind(qab, x, "a")
    ch.queue_bind(qab, x, "b")
    ch.queue_bind(qab, x, "b")  # binding twice is idempotent
    ch.confirm_delivery()
    ch.basic_publish(x, "a", b"to-a")
    ch.basic_publish(x, "b", b"to-b")
    ch.basic_publish(x, "A", b"case-sensitive")
    with pytest.raises(pex.UnroutableError):
        ch.basic_publish(x, "c", b"nobody", mandatory=True)
    assert routed(ch, [qa, qb, qab]) == {
        qa: [b"to-a"],
        qb: [b"to-b"],
        qab: [b"to-a", b"to-b"],
    }
    ch.queue_unbind(qab, x, "a")
    ch.basic_publish(x, "a", b"after-unbind")
    assert routed(ch, [qa, qb, qab]) == {qa: [b"after-unbind"], qb: [], qab: []}


def test_default_exchange_routes_by_queue_name(broker, ch):
    q = broker.queue(ch)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"direct-to-queue")
    ch.basic_publish("amq.direct", q, b"not-bound-there")  # amq.direct has no binding
    assert drain(ch, q) == [b"direct-to-queue"]


def test_fanout_exchange(broker, ch):
    x = broker.exchange(ch, "fanout")
    q1, q2, q3 = broker.queue(ch), broker.queue(ch), broker.queue(ch)
    ch.queue_bind(q1, x, "ignored-1")
    ch.queue_bind(q2, x, "")
    ch.confirm_delivery()
    ch.basic_publish(x, "any.key", b"f1")
    ch.basic_publish(x, "", b"f2")
    assert routed(ch, [q1, q2, q3]) == {q1: [b"f1", b"f2"], q2: [b"f1", b"f2"], q3: []}


TOPIC_BINDINGS = {
    "star": "stock.*.nyse",
    "hash_tail": "stock.#",
    "hash_all": "#",
    "star_first": "*.usd",
    "hash_middle": "a.#.z",
    "exact": "a.b.c",
    "star_only": "*",
}

TOPIC_CASES = [
    ("stock.ibm.nyse", {"star", "hash_tail", "hash_all"}),
    ("stock.nyse", {"hash_tail", "hash_all"}),
    ("stock", {"hash_tail", "hash_all", "star_only"}),
    ("stock.a.b.nyse", {"hash_tail", "hash_all"}),
    ("eur.usd", {"star_first", "hash_all"}),
    ("usd", {"hash_all", "star_only"}),
    ("a.z", {"hash_middle", "hash_all"}),
    ("a.b.c.z", {"hash_middle", "hash_all"}),
    ("a.b.c", {"exact", "hash_all"}),
    ("a.b.c.d", {"hash_all"}),
    ("", {"hash_all"}),
]


def test_topic_exchange_star_and_hash(broker, ch):
    x = broker.exchange(ch, "topic")
    queues = {}
    for name, pattern in TOPIC_BINDINGS.items():
        queues[name] = broker.queue(ch)
        ch.queue_bind(queues[name], x, pattern)
    ch.confirm_delivery()
    for key, _ in TOPIC_CASES:
        ch.basic_publish(x, key, key.encode() or b"<empty>")
    got = routed(ch, list(queues.values()))
    for name, q in queues.items():
        expected = [
            (key.encode() or b"<empty>") for key, matches in TOPIC_CASES if name in matches
        ]
        assert got[q] == expected, f"binding {TOPIC_BINDINGS[name]!r}"


def test_headers_exchange_all_and_any(broker, ch):
    x = broker.exchange(ch, "headers")
    q_all, q_any, q_num = broker.queue(ch), broker.queue(ch), broker.queue(ch)
    ch.queue_bind(q_all, x, "", arguments={"x-match": "all", "format": "pdf", "type": "report"})
    ch.queue_bind(q_any, x, "", arguments={"x-match": "any", "format": "pdf", "type": "log"})
    ch.queue_bind(q_num, x, "", arguments={"x-match": "all", "level": 3})
    ch.confirm_delivery()

    def pub(body, headers):
        ch.basic_publish(x, "ignored", body, pika.BasicProperties(headers=headers))

    pub(b"pdf-report", {"format": "pdf", "type": "report"})
    pub(b"pdf-report-extra", {"format": "pdf", "type": "report", "extra": 1})
    pub(b"zip-log", {"format": "zip", "type": "log"})
    pub(b"pdf-only", {"format": "pdf"})
    pub(b"zip-report", {"format": "zip", "type": "report"})
    pub(b"no-headers", None)
    pub(b"level-3", {"level": 3})
    pub(b"level-4", {"level": 4})
    with pytest.raises(pex.UnroutableError):
        ch.basic_publish(
            x, "", b"nothing", pika.BasicProperties(headers={"format": "doc"}), mandatory=True
        )
    assert routed(ch, [q_all, q_any, q_num]) == {
        q_all: [b"pdf-report", b"pdf-report-extra"],
        q_any: [b"pdf-report", b"pdf-report-extra", b"zip-log", b"pdf-only"],
        q_num: [b"level-3"],
    }


def test_exchange_delete_removes_bindings(broker, ch):
    x = broker.exchange(ch, "fanout")
    q = broker.queue(ch)
    ch.queue_bind(q, x)
    ch.confirm_delivery()
    ch.basic_publish(x, "", b"1")
    ch.exchange_delete(x)
    assert drain(ch, q) == [b"1"]  # queued messages survive their exchange
    ch.exchange_declare(x, exchange_type="fanout")  # same name, fresh: no bindings
    with pytest.raises(pex.UnroutableError):
        ch.basic_publish(x, "", b"2", mandatory=True)
    assert drain(ch, q) == []
    ch.exchange_delete(x)
    expect_channel_error(404, "NOT_FOUND", ch.exchange_declare, x, passive=True)


# --------------------------------------------------------------------------------------
# transactions


def test_tx_commit_and_rollback(broker, conn):
    ch = conn.channel()
    q = broker.queue(ch)
    observer = conn.channel()
    assert ch.tx_select().method.NAME == "Tx.SelectOk"

    ch.basic_publish("", q, b"committed")
    observer.connection.sleep(SETTLE)
    assert ready_count(observer, q) == 0, "uncommitted publish must not be visible"
    assert ch.tx_commit().method.NAME == "Tx.CommitOk"
    assert wait_ready_count(observer, q, 1) == 1

    ch.basic_publish("", q, b"rolled-back")
    assert ch.tx_rollback().method.NAME == "Tx.RollbackOk"
    ch.tx_commit()  # nothing left to commit
    observer.connection.sleep(SETTLE)
    assert drain(observer, q) == [b"committed"]

    # the channel stays transactional: a publish after rollback still needs a commit
    ch.basic_publish("", q, b"second")
    observer.connection.sleep(SETTLE)
    assert ready_count(observer, q) == 0
    ch.tx_commit()
    assert wait_ready_count(observer, q, 1) == 1


def test_tx_acks_apply_on_commit_only(broker, conn):
    ch = conn.channel()
    q = broker.queue(ch)
    ch.confirm_delivery()
    ch.basic_publish("", q, b"a")
    ch.basic_publish("", q, b"b")

    tx = conn.channel()
    tx.tx_select()
    ma = get_one(tx, q)[0]
    mb = get_one(tx, q)[0]
    tx.basic_ack(ma.delivery_tag)
    tx.tx_commit()  # "a" is gone for good
    tx.basic_ack(mb.delivery_tag)
    tx.tx_rollback()  # the ack of "b" is discarded, "b" stays unacked
    tx.close()  # ...so closing the channel requeues it

    assert wait_ready_count(ch, q, 1) == 1
    m, _, body = get_one(ch, q, auto_ack=True)
    assert (body, m.redelivered) == (b"b", True)


def test_tx_commit_without_select_is_406(conn):
    ch = conn.channel()
    expect_channel_error(406, "PRECONDITION_FAILED", ch.tx_commit)
    ch = conn.channel()
    expect_channel_error(406, "PRECONDITION_FAILED", ch.tx_rollback)
    assert conn.is_open


# --------------------------------------------------------------------------------------
# RabbitMQ extensions


def test_rpc_round_trip_over_direct_reply_to(broker, conn):
    """Classic pika RPC: the client consumes amq.rabbitmq.reply-to (no-ack) and publishes a
    request with reply_to set to it; the server answers to the rewritten reply_to."""
    server_conn = broker.connect()
    server = server_conn.channel()
    rpc_queue = broker.queue(server)

    def on_request(channel, method, props, body):
        channel.basic_publish(
            "",
            props.reply_to,
            body.upper(),
            pika.BasicProperties(correlation_id=props.correlation_id),
        )
        channel.basic_ack(method.delivery_tag)

    server.basic_consume(rpc_queue, on_request)

    client = conn.channel()
    replies = []
    client.basic_consume(
        "amq.rabbitmq.reply-to",
        lambda _ch, _m, props, body: replies.append((props.correlation_id, body)),
        auto_ack=True,
    )
    for i in range(3):
        client.basic_publish(
            "",
            rpc_queue,
            f"ping {i}".encode(),
            pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id=str(i)),
        )
    deadline = time.monotonic() + WAIT
    while len(replies) < 3 and time.monotonic() < deadline:
        server_conn.process_data_events(time_limit=0.05)
        conn.process_data_events(time_limit=0.05)
    assert replies == [("0", b"PING 0"), ("1", b"PING 1"), ("2", b"PING 2")]


def test_direct_reply_to_requires_no_ack_and_a_reply_consumer(conn):
    ch = conn.channel()
    expect_channel_error(
        406,
        "PRECONDITION_FAILED - reply consumer cannot acknowledge",
        ch.basic_consume,
        "amq.rabbitmq.reply-to",
        lambda *a: None,
        auto_ack=False,
    )
    ch = conn.channel()
    ch.confirm_delivery()
    expect_channel_error(
        406,
        "PRECONDITION_FAILED - fast reply consumer does not exist",
        ch.basic_publish,
        "",
        "nowhere",
        b"x",
        pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"),
    )


def test_ttl_and_dead_letter_exchange_delay_pattern(broker, ch):
    """A TTL queue without consumers dead-letters into a work queue: the delayed-retry pattern."""
    dlx = broker.exchange(ch, "fanout")
    work = broker.queue(ch)
    ch.queue_bind(work, dlx)
    delay = broker.queue(ch, arguments={"x-message-ttl": 100, "x-dead-letter-exchange": dlx})
    ch.basic_publish("", delay, b"retry me", pika.BasicProperties(headers={"attempt": 1}))
    method, props, body = get_one(ch, work, auto_ack=True)
    assert body == b"retry me"
    assert props.headers["attempt"] == 1
    death = props.headers["x-death"][0]
    assert death["reason"] == "expired"
    assert death["queue"] == delay
    assert death["count"] == 1
    assert death["routing-keys"] == [delay]
    assert props.headers["x-first-death-reason"] == "expired"
    assert ready_count(ch, delay) == 0


def test_invalid_queue_argument_is_406_with_rabbitmq_text(broker, conn):
    ch = conn.channel()
    expect_channel_error(
        406,
        "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue",
        ch.queue_declare,
        uniq("q"),
        arguments={"x-max-length": -1},
    )
