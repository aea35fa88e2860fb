"""pika over AMQPS (TLS), run by tests/clients_python.rs against a warren it starts with a
certificate signed by a CA the Rust test makes (rcgen).

    AMQPS_URL=amqps://guest:guest@127.0.0.1:5671/%2f AMQPS_CA=ca.pem pytest -q tests/python_tls

Kept apart from tests/python (plain AMQP, also run against RabbitMQ) because it needs the
broker's CA file.
"""

import os
import ssl
import uuid

import pika
import pika.exceptions as pex
import pytest

AMQPS_URL = os.environ.get("AMQPS_URL", "").strip()
AMQPS_CA = os.environ.get("AMQPS_CA", "").strip()
if not AMQPS_URL or not AMQPS_CA:
    raise RuntimeError("set AMQPS_URL (amqps://...) and AMQPS_CA (the CA's PEM file)")


def params(context):
    p = pika.URLParameters(AMQPS_URL)
    p.ssl_options = pika.SSLOptions(context, server_hostname=p.host)
    p.socket_timeout = 5
    p.stack_timeout = 10
    p.connection_attempts = 1
    return p


def trusted():
    return ssl.create_default_context(cafile=AMQPS_CA)


def test_round_trip_over_tls_with_confirms():
    conn = pika.BlockingConnection(params(trusted()))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        q = "tls-" + uuid.uuid4().hex
        ch.queue_declare(q, exclusive=True)
        bodies = [b"hello over TLS", os.urandom(40_000), os.urandom(1 << 20)]
        for body in bodies:
            # confirm_delivery: raises unless the broker acks
            ch.basic_publish("", q, body, pika.BasicProperties(content_type="application/octet-stream"))
        for body in bodies:
            method, props, got = ch.basic_get(q, auto_ack=True)
            assert method is not None, "message missing"
            assert got == body
            assert props.content_type == "application/octet-stream"
        assert ch.basic_get(q, auto_ack=True)[0] is None
    finally:
        conn.close()


def test_the_connection_really_is_tls():
    conn = pika.BlockingConnection(params(trusted()))
    try:
        sock = conn._impl._transport._sock
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        assert conn.is_open
    finally:
        conn.close()


def test_a_client_that_does_not_trust_the_ca_is_refused():
    # the system's CAs only: the test CA is not among them
    # pika 1.x lets the SSL error through (ssl.SSLCertVerificationError)
    with pytest.raises((pex.AMQPConnectionError, ssl.SSLError)):
        pika.BlockingConnection(params(ssl.create_default_context()))
