"""The README's pika bot (chat-web/bots/echo_bot.py) against a running warren: a round trip in
both reply modes as the chat makes them (direct reply-to, and a per-request reply queue with
x-expires), then through the web chat itself (a user's "@bot ..." grows one reply message).

    AMQP_URL=amqp://bot:pass@127.0.0.1:5672/chat CHAT_URL=http://127.0.0.1:8080 pytest tests/python_bots

The AMQP user needs configure/read/write on pybot-.* and amq.gen-.* in the chat's vhost.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pika
import pytest

AMQP_URL = os.environ["AMQP_URL"]
CHAT_URL = os.environ["CHAT_URL"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
BOT = ROOT / "chat-web" / "bots" / "echo_bot.py"


@pytest.fixture(autouse=True)
def _hard_timeout():
    def on_alarm(signum, frame):
        raise TimeoutError("test took more than 60 s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture()
def bot():
    name = "pybot-" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([sys.executable, str(BOT)], env={**os.environ, "AMQP_URL": AMQP_URL, "BOT_NAME": name})
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        for _ in range(100):  # until the bot has declared its queue
            ch = conn.channel()
            try:
                ch.queue_declare(queue=f"{name}.requests", passive=True)
                ch.close()
                break
            except pika.exceptions.ChannelClosedByBroker:
                assert proc.poll() is None, "the bot exited"
                time.sleep(0.1)
        else:
            raise AssertionError("the bot never declared its request queue")
        yield name, conn
    finally:
        proc.kill()
        proc.wait()
        if conn.is_open:
            conn.close()


def collect(ch, queue, correlation_id):
    """The chunks on `queue` for `correlation_id`, up to done."""
    text = ""
    for method, props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=10):
        assert method is not None, "no reply chunk within 10 s"
        assert props.correlation_id == correlation_id
        chunk = json.loads(body)
        if chunk.get("done"):
            ch.cancel()
            return text
        text += chunk.get("text", "")
    raise AssertionError("the reply never ended")


def request(ch, name, reply_to, args):
    cid = str(uuid.uuid4())
    body = json.dumps({"id": cid, "room": "r", "user": "u", "bot": name, "text": f"@{name} {args}", "args": args})
    props = pika.BasicProperties(reply_to=reply_to, correlation_id=cid, content_type="application/json")
    ch.basic_publish("", f"{name}.requests", body, props)
    return cid


def test_direct_reply_to(bot):
    name, conn = bot
    ch = conn.channel()
    chunks = []

    def on_reply(ch, method, props, body):
        chunks.append((props.correlation_id, json.loads(body)))

    # direct reply-to: consume the pseudo-queue (no ack) on the channel that publishes
    ch.basic_consume("amq.rabbitmq.reply-to", on_reply, auto_ack=True)
    cid = request(ch, name, "amq.rabbitmq.reply-to", "one two three")
    deadline = time.time() + 10
    while not any(c.get("done") for _, c in chunks):
        assert time.time() < deadline, f"no end of the reply: {chunks}"
        conn.process_data_events(time_limit=0.2)
    assert all(c == cid for c, _ in chunks)
    assert "".join(c.get("text", "") for _, c in chunks) == "one two three "
    assert len(chunks) == 4, "one chunk per word, then done"


def test_reply_queue_with_x_expires(bot):
    name, conn = bot
    ch = conn.channel()
    q = ch.queue_declare("", arguments={"x-expires": 60000}).method.queue
    cid = request(ch, name, q, "four five")
    assert collect(ch, q, cid) == "four five "
    ch.queue_delete(q)


def http(method, path, token=None, body=None):
    req = urllib.request.Request(CHAT_URL + path, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: {e.code} {e.read()!r}") from None


def test_through_the_chat(bot):
    name, _ = bot
    user = "py-" + uuid.uuid4().hex[:8]
    token = http("POST", "/api/register", body={"username": user, "password": "hunter2hunter2"})["token"]
    # every new account is in the default room
    http("POST", "/api/rooms/general/messages", token, {"text": f"@{name} six seven"})
    deadline = time.time() + 15
    while True:
        msgs = http("GET", "/api/rooms/general/messages?limit=20", token)["messages"]
        replies = [m for m in msgs if m["bot"] and m["author"] == name]
        if replies and not replies[0]["streaming"]:
            break
        assert time.time() < deadline, f"no final reply: {msgs}"
        time.sleep(0.2)
    assert len(replies) == 1, "one message for the whole reply"
    assert replies[0]["text"] == "six seven "
    assert replies[0]["interrupted"] is False


def test_the_readme_shows_this_bot():
    readme = (ROOT / "README.md").read_text()
    assert BOT.read_text().strip() in readme, "README's pika example is chat-web/bots/echo_bot.py"
