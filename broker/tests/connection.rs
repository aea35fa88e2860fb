//! Connection negotiation: credentials, vhosts, tune limits, heartbeats, shutdown.

mod common;

use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, channel, connection};
use common::*;
use lapin::{Connection, ConnectionProperties};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_broker::connection::codec::Frame;

#[tokio::test]
async fn wrong_protocol_header_gets_ours_back() {
    let b = TestBroker::start().await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    s.write_all(b"AMQP\x01\x01\x00\x0a").await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut got)).await.unwrap().unwrap();
    assert_eq!(got, b"AMQP\x00\x00\x09\x01");
}

#[tokio::test]
async fn amqp_0_8_gets_a_0_8_start() {
    let b = TestBroker::start().await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    s.write_all(b"AMQP\x01\x01\x08\x00").await.unwrap();
    let mut buf = bytes::BytesMut::new();
    let start = loop {
        if let Ok(Some(f)) = warren_broker::connection::codec::next_frame(&mut buf, 0) {
            break f;
        }
        assert!(tokio::time::timeout(WAIT, s.read_buf(&mut buf)).await.unwrap().unwrap() > 0);
    };
    let Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start))) = start else {
        panic!("expected connection.start, got {start:?}")
    };
    assert_eq!((start.version_major, start.version_minor), (8, 0));
    assert!(matches!(
        start.server_properties.inner().get("capabilities"),
        Some(amq_protocol::types::AMQPValue::FieldTable(t)) if t.inner().is_empty()
    ));
}

#[tokio::test]
async fn bad_credentials_are_refused_with_403() {
    let b = TestBroker::start().await;
    let url = format!("amqp://guest:wrong@{}/%2f", b.addr);
    let err = Connection::connect(&url, ConnectionProperties::default()).await.unwrap_err();
    assert_eq!(code(&err), 403);
    let url = format!("amqp://nobody:guest@{}/%2f", b.addr);
    let err = Connection::connect(&url, ConnectionProperties::default()).await.unwrap_err();
    assert_eq!(code(&err), 403);
}

#[tokio::test]
async fn guest_is_refused_from_a_non_loopback_peer() {
    let broker = warren_broker::Broker::new(Default::default());
    let remote = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));
    assert!(broker.access.login("PLAIN", b"\0guest\0guest", remote).is_err());
    assert!(broker.access.login("PLAIN", b"\0guest\0guest", std::net::Ipv4Addr::LOCALHOST.into()).is_ok());
}

#[tokio::test]
async fn unknown_vhost_is_530() {
    let b = TestBroker::start().await;
    let url = format!("amqp://guest:guest@{}/nope", b.addr);
    let err = Connection::connect(&url, ConnectionProperties::default()).await.unwrap_err();
    assert_eq!(code(&err), 530);
}

#[tokio::test]
async fn tune_negotiates_frame_max_and_channel_max() {
    let b = TestBroker::start().await;
    let url = format!("amqp://guest:guest@{}/%2f?frame_max=8192&channel_max=10", b.addr);
    let c = Connection::connect(&url, ConnectionProperties::default()).await.unwrap();
    assert_eq!(c.configuration().frame_max(), 8192);
    assert_eq!(c.configuration().channel_max(), 10);
    // Content is split at the negotiated frame size and still arrives whole.
    let ch = c.create_channel().await.unwrap();
    ch.queue_declare("fm".into(), Default::default(), Default::default()).await.unwrap();
    let body = vec![7u8; 50_000];
    ch.basic_publish("".into(), "fm".into(), Default::default(), &body, Default::default()).await.unwrap();
    let m = ch.basic_get("fm".into(), lapin::options::BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert_eq!(m.delivery.data, body);
}

#[tokio::test]
async fn tune_ok_outside_the_limits_closes_the_socket() {
    // RabbitMQ refuses these with a silent close: 0 ("no limit") is above any server limit.
    let b = TestBroker::start().await;
    for (frame_max, channel_max) in [(1_000_000, 2047), (1024, 2047), (0, 2047), (131_072, 0), (131_072, 2048)] {
        let mut raw =
            RawClient::start_tuned(b.addr, |_| connection::TuneOk { channel_max, frame_max, heartbeat: 0 }).await;
        raw.expect_silent_close().await;
    }
}

#[tokio::test]
async fn channel_max_limits_how_many_channels_are_open() {
    // RabbitMQ counts open channels; their numbers may be anything up to 65535.
    let config = warren_broker::BrokerConfig { channel_max: 3, ..Default::default() };
    let b = TestBroker::with_config(config).await;
    let mut raw = RawClient::open(b.addr).await;
    for id in [1, 100, 65535] {
        raw.send_method(id, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
        assert!(matches!(raw.recv().await, Some(Frame::Method(ch, _)) if ch == id), "channel {id} opens");
    }
    raw.send_method(2, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    let close = raw.expect_close().await;
    assert_eq!(close.reply_code, 530);
    assert_eq!(
        close.reply_text.as_str(),
        "NOT_ALLOWED - number of channels opened (3) has reached the negotiated channel_max (3)"
    );
    assert_eq!((close.class_id, close.method_id), (0, 0));
}

#[tokio::test]
async fn handshake_mistakes_close_the_socket_without_a_word() {
    let b = TestBroker::start().await;
    // connection.open where tune-ok belongs.
    let (mut raw, _) = RawClient::until_tune(b.addr).await;
    raw.send_method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: "/".into() })),
    )
    .await;
    raw.expect_silent_close().await;
    // A frame over the handshake's 4096-octet limit.
    let (mut raw, _) = RawClient::until_tune(b.addr).await;
    raw.send_bytes(&[1, 0, 0, 0, 0, 0x20, 0]).await;
    raw.expect_silent_close().await;
    // Once tuned, a channel frame before connection.open is 505 naming its octets.
    let (mut raw, t) = RawClient::until_tune(b.addr).await;
    let tune_ok = connection::TuneOk { channel_max: t.channel_max, frame_max: t.frame_max, heartbeat: 0 };
    raw.send_method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok))).await;
    raw.send_method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    let close = raw.expect_close().await;
    assert_eq!(close.reply_text.as_str(), "UNEXPECTED_FRAME - type 1, all octets = <<0,20,0,10,0>>");
    assert_eq!((close.reply_code, close.class_id, close.method_id), (505, 0, 0));
}

#[tokio::test]
async fn unsolicited_close_ok_and_flow_ok_are_503() {
    let b = TestBroker::start().await;
    for method in [
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
        AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk { active: true })),
    ] {
        let ids = (method.get_amqp_class_id(), method.get_amqp_method_id());
        let mut raw = RawClient::open(b.addr).await;
        raw.send_method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
        assert!(raw.recv().await.is_some());
        raw.send_method(1, method).await;
        let close = raw.expect_close().await;
        assert_eq!(close.reply_text.as_str(), "COMMAND_INVALID - unimplemented method");
        assert_eq!((close.reply_code, close.class_id, close.method_id), (503, ids.0, ids.1));
    }
}

#[tokio::test]
async fn server_sends_heartbeats_and_drops_silent_clients() {
    let config = warren_broker::BrokerConfig { heartbeat: 1, ..Default::default() };
    let b = TestBroker::with_config(config).await;
    // A raw client that negotiates a 1 s heartbeat and then stays silent.
    let mut raw = RawClient::open_with_heartbeat(b.addr, 1).await;
    let started = tokio::time::Instant::now();
    let mut heartbeats = 0;
    loop {
        match raw.recv().await {
            Some(Frame::Heartbeat(0)) => heartbeats += 1,
            Some(other) => panic!("unexpected {other:?}"),
            None => break,
        }
    }
    let elapsed = started.elapsed();
    assert!(heartbeats >= 1, "server sent no heartbeat");
    assert!(elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(4), "dropped after {elapsed:?}");
}

#[tokio::test]
async fn shutdown_closes_connections_with_320() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    let shutting = tokio::spawn(b.shutdown());
    let close = raw.recv().await;
    match close {
        Some(Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => {
            assert_eq!(c.reply_code, 320);
            assert!(c.reply_text.as_str().starts_with("CONNECTION_FORCED"));
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    raw.send_method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}))).await;
    shutting.await.unwrap();
}

#[tokio::test]
async fn client_close_is_answered_with_close_ok() {
    let b = TestBroker::start().await;
    let c = b.connect().await;
    c.close(200, "bye".into()).await.unwrap();
}
