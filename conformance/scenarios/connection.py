"""Connection negotiation: protocol header, authentication, tune, vhost, heartbeats, close."""

import struct
import time

from harness import FRAME_HEARTBEAT, PROTOCOL_HEADER, Client, T, frame, scenario
from amqp_raw import Value, enc_table


def _to_start(t: T, label=None) -> Client:
    """Protocol header sent, connection.start received (recorded)."""
    c = t.raw(label)
    c.raw_mode = True
    c.send_raw(PROTOCOL_HEADER, "protocol header AMQP 0-9-1")
    c.expect("connection.start", "connection.start")
    return c


def _start_ok(c: Client, user="guest", password="guest", caps=True, mechanism="PLAIN", response=None,
              locale="en_US"):
    props = {"product": "warren-conformance"}
    if caps:
        props["capabilities"] = {"authentication_failure_close": True}
    if response is None:
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
    c.send(0, "connection.start-ok", client_properties=props, mechanism=mechanism, response=response,
           locale=locale)


def _to_tune(t: T, label=None) -> Client:
    c = _to_start(t, label)
    _start_ok(c)
    c.expect("connection.tune", "connection.tune")
    return c


@scenario
def handshake_full(t: T):
    """Full handshake recorded: start (capabilities, mechanisms, locales), tune, open-ok, close."""
    c = t.raw()
    c.brief_start = False
    c.handshake(verbose=True)
    c.channel(1)
    c.close()


@scenario
def bad_protocol_header_version(t: T):
    """Protocol header for AMQP 0-9-2: server answers its own header and closes."""
    c = t.raw()
    c.raw_mode = True
    c.send_raw(b"AMQP\x00\x00\x09\x02", "protocol header AMQP 0-9-2")
    c.expect_closed()
    t.check_broker_alive()


@scenario
def bad_protocol_header_amqp08(t: T):
    """Protocol header of AMQP 0-8 (AMQP\\x01\\x01\\x08\\x00)."""
    c = t.raw()
    c.brief_start = False
    c.raw_mode = True
    c.send_raw(b"AMQP\x01\x01\x08\x00", "protocol header AMQP 0-8")
    c.settle(0.5)


@scenario
def bad_protocol_header_amqp10(t: T):
    """Protocol header of AMQP 1.0 (AMQP\\x00\\x01\\x00\\x00)."""
    c = t.raw()
    c.raw_mode = True
    c.send_raw(b"AMQP\x00\x01\x00\x00", "protocol header AMQP 1.0")
    c.expect_closed()


@scenario
def bad_protocol_header_http(t: T):
    """An HTTP request instead of a protocol header."""
    c = t.raw()
    c.raw_mode = True
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP GET")
    c.expect_closed()
    t.check_broker_alive()


@scenario
def bad_password_with_afc(t: T):
    """Wrong password, client has authentication_failure_close: connection.close 403."""
    c = t.raw()
    c.handshake(password="wrong", verbose=True)
    c.expect_closed()
    t.check_broker_alive()


@scenario
def bad_password_without_afc(t: T):
    """Wrong password, client lacks authentication_failure_close: the socket just closes."""
    c = t.raw()
    c.handshake(password="wrong", capabilities={"publisher_confirms": True}, verbose=True)
    c.expect_silent_close()


@scenario
def unknown_user(t: T):
    """Unknown user name with authentication_failure_close."""
    c = t.raw()
    c.handshake(user="nobody", password="x", verbose=True)
    c.expect_closed()


@scenario
def amqplain_login(t: T):
    """AMQPLAIN mechanism with a LOGIN/PASSWORD table."""
    c = _to_start(t)
    resp = enc_table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]
    _start_ok(c, mechanism="AMQPLAIN", response=resp)
    c.expect("connection.tune", "connection.tune")
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=131072, heartbeat=0)
    c.send(0, "connection.open", virtual_host="/")
    c.expect("connection.open-ok", "connection.open-ok")
    c.close()


@scenario
def unknown_mechanism(t: T):
    """start-ok names a mechanism the server did not offer."""
    c = _to_start(t)
    _start_ok(c, mechanism="SCRAM-SHA-1")
    c.expect_silent_close()
    t.check_broker_alive()


@scenario
def plain_response_malformed(t: T):
    """PLAIN response without the NUL separators."""
    c = _to_start(t)
    _start_ok(c, response=b"guestguest")
    c.expect_silent_close()


@scenario
def unknown_locale(t: T):
    """start-ok with a locale the server did not offer."""
    c = _to_start(t)
    _start_ok(c, locale="fr_FR")
    c.expect("connection.tune", "connection.tune")
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=131072, heartbeat=0)
    c.send(0, "connection.open", virtual_host="/")
    c.expect("connection.open-ok", "connection.open-ok")
    c.close()


@scenario
def unknown_vhost(t: T):
    """connection.open on a vhost that does not exist: 530 NOT_ALLOWED."""
    c = t.raw()
    c.handshake(vhost="no-such-vhost", verbose=True)
    c.expect_closed()


@scenario
def tune_frame_max_too_small(t: T):
    """tune-ok with frame_max below the 4096 minimum."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=4095, heartbeat=0)
    c.send(0, "connection.open", virtual_host="/")
    c.expect_silent_close()


@scenario
def tune_frame_max_minimum(t: T):
    """tune-ok with frame_max exactly 4096 works; a 10000-octet body arrives in pieces."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=4096, heartbeat=0)
    c.frame_max = 4096
    c.send(0, "connection.open", virtual_host="/")
    c.expect("connection.open-ok", "connection.open-ok")
    c.channel(1)
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.publish(1, "", q, b"x" * 10000)
    got = c.get(1, q, no_ack=True)
    t.note(f"body intact: {got is not None and got.body == b'x' * 10000}")
    c.close()


@scenario
def tune_frame_max_too_large(t: T):
    """tune-ok with frame_max above what the server proposed."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=131073, heartbeat=0)
    c.send(0, "connection.open", virtual_host="/")
    c.expect_silent_close()


@scenario
def tune_frame_max_zero(t: T):
    """tune-ok with frame_max 0 (no limit)."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=0, heartbeat=0)
    c.send(0, "connection.open", virtual_host="/")
    c.expect_silent_close()


@scenario
def tune_channel_max_too_large(t: T):
    """tune-ok with channel_max above what the server proposed."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=2048, frame_max=131072, heartbeat=0)
    c.send(0, "connection.open", virtual_host="/")
    c.expect_silent_close()


@scenario
def tune_channel_max_zero(t: T):
    """tune-ok with channel_max 0 ("no limit", more than the server proposed)."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=0, frame_max=131072, heartbeat=0)
    c.send(0, "connection.open", virtual_host="/")
    c.expect_silent_close()


@scenario
def channel_above_negotiated_max(t: T):
    """channel_max negotiated to 10: channels 10, 11 and 2047 open, 2048 is an error."""
    c = t.connect(channel=None, channel_max=10)
    c.channel(10)
    c.channel(11)
    c.channel(2047)
    c.channel(2048)
    c.settle()
    if not c.eof:
        c.close()


@scenario
def heartbeat_server_sends(t: T):
    """heartbeat=1 negotiated: the server sends heartbeat frames while the client is busy."""
    c = t.connect(heartbeat=1)
    c.record_heartbeats = False
    got = 0
    end = time.monotonic() + 1.6
    c.rec("-> heartbeats on ch0 every 0.4 s for 1.6 s (not recorded one by one)")
    while time.monotonic() < end:
        c.send_raw(frame(FRAME_HEARTBEAT, 0, b""))  # keep the server from timing us out
        ev = c.wait(lambda e: e.kind == "heartbeat", 0.4)
        if ev is not None:
            got += 1
    t.note(f"heartbeat frames received within 1.6s: {'yes' if got else 'no'}")
    c.close()


@scenario
def heartbeat_disabled(t: T):
    """heartbeat=0 negotiated: no heartbeat frames at all within 1.2s."""
    c = t.connect(heartbeat=0)
    ev = c.wait(lambda e: e.kind == "heartbeat", 1.2)
    t.note(f"heartbeat received: {ev is not None}")
    c.close()


@scenario
def heartbeat_client_frames_accepted(t: T):
    """Client heartbeats on channel 0 between methods are accepted silently."""
    c = t.connect()
    c.heartbeat()
    c.declare_queue(1, "", exclusive=True)
    c.heartbeat()
    c.heartbeat()
    c.call(1, "basic.qos", prefetch_count=5)
    c.close()


@scenario
def heartbeat_before_open(t: T):
    """A heartbeat frame between tune-ok and open is accepted."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=131072, heartbeat=0)
    c.heartbeat()
    c.send(0, "connection.open", virtual_host="/")
    c.expect("connection.open-ok", "connection.open-ok")
    c.close()


@scenario
def open_before_tune_ok(t: T):
    """connection.open sent without tune-ok first."""
    c = _to_tune(t)
    c.send(0, "connection.open", virtual_host="/")
    c.expect_silent_close()


@scenario
def tune_ok_instead_of_start_ok(t: T):
    """tune-ok sent where start-ok is expected."""
    c = _to_start(t)
    c.send(0, "connection.tune-ok", channel_max=0, frame_max=131072, heartbeat=0)
    c.expect_silent_close()
    t.check_broker_alive()


@scenario
def channel_open_before_connection_open(t: T):
    """channel.open after tune-ok but before connection.open."""
    c = _to_tune(t)
    c.send(0, "connection.tune-ok", channel_max=2047, frame_max=131072, heartbeat=0)
    c.send(1, "channel.open")
    c.expect_silent_close()


@scenario
def connection_open_twice(t: T):
    """A second connection.open on an open connection."""
    c = t.connect()
    c.send(0, "connection.open", virtual_host="/")
    c.expect_silent_close()


@scenario
def non_connection_method_on_channel_0(t: T):
    """queue.declare on channel 0."""
    c = t.connect()
    c.send(0, "queue.declare", queue="x")
    c.expect_silent_close()
    t.check_broker_alive()


@scenario
def close_ok_unsolicited(t: T):
    """connection.close-ok the server never asked for (RabbitMQ: 504 in state running)."""
    c = t.connect()
    c.send(0, "connection.close-ok")
    c.settle()
    if not c.eof:
        c.declare_queue(1, "", exclusive=True)
        c.close()
    t.check_broker_alive()


@scenario
def client_close_with_error_code(t: T):
    """Client closes with reply code 320 and a class/method: server answers close-ok."""
    c = t.connect()
    c.send(0, "connection.close", reply_code=320, reply_text="going away", class_id=50, method_id=10)
    c.expect("connection.close-ok", "connection.close-ok")


@scenario
def close_requeues_unacked(t: T):
    """Closing a connection with unacked deliveries requeues them (redelivered on next get)."""
    q = t.n("q")
    c1 = t.connect("c1")
    c1.declare_queue(1, q)
    c1.publish(1, "", q, "m1")
    c1.publish(1, "", q, "m2")
    c1.get(1, q)
    c1.close()
    c2 = t.connect("c2")
    c2.declare_queue(1, q, passive=True)
    c2.get(1, q, no_ack=True)
    c2.get(1, q, no_ack=True)
    c2.close()


@scenario
def abrupt_disconnect_drops_exclusive_queue(t: T):
    """A client that drops the socket loses its exclusive queue; its unacked message is requeued."""
    q = t.n("q")
    q2 = t.n("shared")
    c1 = t.connect("c1")
    c1.declare_queue(1, q, exclusive=True)
    c1.declare_queue(1, q2)
    c1.publish(1, "", q2, "m")
    c1.get(1, q2)
    c1.close_socket()
    c1.rec("-> (socket closed by client)")
    time.sleep(0.3)
    c2 = t.connect("c2")
    c2.declare_queue(1, q2, passive=True)
    c2.declare_queue(1, q, passive=True)
    c2.close()


@scenario
def connection_blocked_capability_absent(t: T):
    """A client without any capabilities table can still do everything."""
    c = t.connect(capabilities={})
    ev = c.declare_queue(1, "", exclusive=True)
    q = ev["queue"].decode()
    c.publish(1, "", q, "x")
    c.get(1, q, no_ack=True)
    c.close()


@scenario
def many_channels(t: T):
    """Open 20 channels on one connection, use the last one, close them all."""
    c = t.connect(channel=None)
    for i in range(1, 21):
        c.channel(i, quiet=True)
    c.declare_queue(20, "", exclusive=True)
    for i in range(1, 21):
        c.call(i, "channel.close", reply_code=200, reply_text="", class_id=0, method_id=0, _record=False)
    t.note("20 channels opened and closed")
    c.close()
