"""Drive warren through the recording proxy with pika: one short connection per scenario."""
import datetime, decimal, time
import pika

def conn(frame_max=None):
    kw = {}
    if frame_max:
        kw["frame_max"] = frame_max
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5796, heartbeat=0, **kw))

TABLE = {
    "str": "text", "bytes": b"\x00\x01bin", "bool": True, "false": False, "int": 42, "neg": -7,
    "big": 2**40, "dec": decimal.Decimal("3.14"),
    "ts": datetime.datetime(2024, 1, 2, 3, 4, 5), "nested": {"a": 1, "b": ["x", 2, {"c": None}]},
    "list": [1, "two", True, None, b"z"], "void": None,
}

def scenario_declare_publish():
    c = conn(); ch = c.channel()
    ch.exchange_declare("fx.direct", "direct", durable=True, arguments={"alternate-exchange": "fx.ae"})
    ch.exchange_declare("fx.ae", "fanout")
    ch.exchange_declare("fx.topic", "topic", auto_delete=True)
    ch.exchange_declare("fx.headers", "headers")
    ch.queue_declare("fx.q1", durable=True, arguments={"x-message-ttl": 60000, "x-max-length": 100,
        "x-overflow": "reject-publish", "x-dead-letter-exchange": "fx.ae", "x-dead-letter-routing-key": "dl",
        "x-max-priority": 5, "x-expires": 600000})
    ch.queue_declare("fx.q2", arguments=TABLE)
    ch.queue_bind("fx.q1", "fx.direct", "rk")
    ch.queue_bind("fx.q2", "fx.topic", "a.*.#")
    ch.queue_bind("fx.q2", "fx.headers", "", arguments={"x-match": "any", "k": "v", "n": 1, "void": None})
    props = pika.BasicProperties(content_type="application/json", content_encoding="gzip", headers=TABLE,
        delivery_mode=2, priority=3, correlation_id="corr", reply_to="replies", expiration="60000",
        message_id="mid", timestamp=1700000000, type="t", user_id="guest", app_id="app", cluster_id="cl")
    ch.basic_publish("fx.direct", "rk", b'{"a":1}', props, mandatory=True)
    ch.basic_publish("fx.topic", "a.b.c", b"topic body")
    ch.basic_publish("fx.headers", "", b"hdr", pika.BasicProperties(headers={"k": "v", "n": 1}))
    ch.basic_publish("", "fx.q1", b"", pika.BasicProperties(delivery_mode=1))
    ch.basic_publish("", "fx.q1", b"x" * 3000)
    c.close()

def scenario_consume_ack():
    c = conn(); ch = c.channel()
    ch.basic_qos(prefetch_count=10)
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(6):
        ch.basic_publish("", q, f"m{i}".encode(), pika.BasicProperties(headers={"i": i}))
    got = []
    def on_msg(chn, method, props, body):
        got.append(method.delivery_tag)
        t = method.delivery_tag
        if t == 1: chn.basic_ack(t)
        elif t == 2: chn.basic_nack(t, requeue=False)
        elif t == 3: chn.basic_reject(t, requeue=False)
        elif t == 5: chn.basic_ack(t, multiple=True)
        elif t == 6: chn.basic_nack(t, multiple=True, requeue=True)
    tag = ch.basic_consume(q, on_msg, arguments={"x-priority": 5})
    deadline = time.time() + 2
    while len(got) < 6 and time.time() < deadline:
        c.process_data_events(0.1)
    ch.basic_cancel(tag)
    ch.basic_recover(requeue=True)
    c.close()

def scenario_confirms_get():
    c = conn(); ch = c.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("fx.get", auto_delete=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, b"conf%d" % i, pika.BasicProperties(delivery_mode=2))
    try:
        ch.basic_publish("fx.none", "x", b"unroutable", mandatory=True)
    except Exception:
        pass
    c.close()
    c = conn(); ch = c.channel()
    m, p, b = ch.basic_get("fx.get")
    if m: ch.basic_ack(m.delivery_tag)
    m, p, b = ch.basic_get("fx.get", auto_ack=True)
    ch.basic_get("fx.empty-%d" % 0 if False else "fx.get")
    ch.queue_purge("fx.get")
    ch.queue_delete("fx.get", if_unused=False, if_empty=False)
    c.close()

def scenario_tx():
    c = conn(); ch = c.channel()
    ch.tx_select()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"tx1")
    ch.tx_commit()
    ch.basic_publish("", q, b"tx2")
    ch.tx_rollback()
    m, p, b = ch.basic_get(q)
    if m: ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    c.close()

def scenario_exchange_bind():
    c = conn(); ch = c.channel()
    ch.exchange_declare("fx.src", "fanout", auto_delete=True)
    ch.exchange_declare("fx.dst", "topic", auto_delete=True)
    ch.exchange_bind("fx.dst", "fx.src", "any", arguments={"x": 1})
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "fx.dst", "#")
    ch.basic_publish("fx.src", "r", b"e2e")
    ch.exchange_unbind("fx.dst", "fx.src", "any", arguments={"x": 1})
    ch.queue_unbind(q, "fx.dst", "#")
    ch.exchange_delete("fx.src")
    ch.exchange_delete("fx.dst", if_unused=True)
    c.close()

def scenario_small_frames():
    c = conn(frame_max=4096); ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, bytes(range(256)) * 20, pika.BasicProperties(headers={"multi": "frame"}))
    ch2 = c.connection.channel() if hasattr(c, "connection") else c.channel()
    ch2.basic_qos(prefetch_count=1, global_qos=True)
    ch2.flow(True) if hasattr(ch2, "flow") else None
    ch2.close()
    c.close()

def scenario_errors():
    c = conn(); ch = c.channel()
    try:
        ch.queue_declare("fx.bad", arguments={"x-message-ttl": -1})
    except Exception:
        pass
    try:
        c.channel().queue_declare("fx.missing", passive=True)
    except Exception:
        pass
    c.close()

for s in [scenario_declare_publish, scenario_consume_ack, scenario_confirms_get, scenario_tx,
          scenario_exchange_bind, scenario_small_frames, scenario_errors]:
    try:
        s()
        print("ok", s.__name__)
    except Exception as e:
        print("FAIL", s.__name__, repr(e))
