//! Malformed and out-of-order input from a raw socket: each gets the reply code RabbitMQ 3.x
//! gives, and a well-behaved client on the same server is unaffected.

mod common;

use amq_protocol::protocol::{AMQPClass, basic, channel, queue};
use common::*;
use lapin::options::BasicGetOptions;
use rand::{Rng, SeedableRng};

/// A lapin client that must keep working while others misbehave.
async fn bystander_still_works(b: &TestBroker, ch: &lapin::Channel, tag: &str) {
    ch.queue_declare(tag.into(), Default::default(), Default::default()).await.expect("bystander declare");
    ch.basic_publish("".into(), tag.into(), Default::default(), b"ok", Default::default()).await.unwrap();
    let got = ch.basic_get(tag.into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("bystander message");
    assert_eq!(got.delivery.data, b"ok");
    let _ = b;
}

async fn open_channel(raw: &mut RawClient, id: u16) {
    raw.send_method(id, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    assert!(raw.recv().await.is_some(), "channel.open-ok");
}

fn frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![frame_type];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(0xCE);
    f
}

#[tokio::test]
async fn random_bytes_after_open_are_a_frame_error() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..20 {
        let mut raw = RawClient::open(b.addr).await;
        let mut junk = vec![0u8; 64];
        rng.fill(&mut junk[..]);
        junk[0] = 9 + (junk[0] % 200); // never a valid frame type
        raw.send_bytes(&junk).await;
        assert_eq!(raw.expect_connection_close().await, 501, "round {round}");
    }
    bystander_still_works(&b, &ch, "random").await;
}

#[tokio::test]
async fn random_bytes_during_the_handshake_never_crash_the_server() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(b.addr).await.unwrap();
        let mut junk = vec![0u8; rng.random_range(1..300)];
        rng.fill(&mut junk[..]);
        let mut bytes = b"AMQP\x00\x00\x09\x01".to_vec();
        bytes.extend_from_slice(&junk);
        use tokio::io::AsyncWriteExt;
        let _ = s.write_all(&bytes).await;
    }
    bystander_still_works(&b, &ch, "handshake-junk").await;
}

#[tokio::test]
async fn body_frame_without_header_is_505() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    raw.send_bytes(&frame(3, 1, b"orphan body")).await;
    assert_eq!(raw.expect_connection_close().await, 505);
    bystander_still_works(&b, &ch, "orphan").await;
}

#[tokio::test]
async fn method_where_a_header_belongs_is_505() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    raw.send_method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish::default()))).await;
    raw.send_method(1, AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare::default()))).await;
    assert_eq!(raw.expect_connection_close().await, 505);
}

#[tokio::test]
async fn frame_over_frame_max_is_501_before_it_is_buffered() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    // Announce a 1 GiB frame and send only its header: the server must not wait for it.
    let mut header = vec![3u8, 0, 1];
    header.extend_from_slice(&(1u32 << 30).to_be_bytes());
    raw.send_bytes(&header).await;
    assert_eq!(raw.expect_connection_close().await, 501);
    bystander_still_works(&b, &ch, "huge").await;
}

#[tokio::test]
async fn bad_frame_end_is_501() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    let mut f = frame(8, 0, b"");
    *f.last_mut().unwrap() = 0;
    raw.send_bytes(&f).await;
    assert_eq!(raw.expect_connection_close().await, 501);
}

#[tokio::test]
async fn method_on_unopened_channel_is_504() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut raw = RawClient::open(b.addr).await;
    raw.send_method(3, AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare::default()))).await;
    assert_eq!(raw.expect_connection_close().await, 504);
    bystander_still_works(&b, &ch, "unopened").await;
}

#[tokio::test]
async fn second_channel_open_is_504() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    raw.send_method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    assert_eq!(raw.expect_connection_close().await, 504);
}

#[tokio::test]
async fn heartbeat_on_channel_1_is_505() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    raw.send_bytes(&frame(8, 1, b"")).await;
    assert_eq!(raw.expect_connection_close().await, 505);
    bystander_still_works(&b, &ch, "hb1").await;
}

#[tokio::test]
async fn truncated_method_payload_is_a_frame_error() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    // queue.declare (50, 10) with its fields cut off.
    raw.send_bytes(&frame(1, 1, &[0, 50, 0, 10, 0])).await;
    assert_eq!(raw.expect_connection_close().await, 501);
}

#[tokio::test]
async fn body_larger_than_declared_never_completes() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    raw.send_method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish::default()))).await;
    // Content header: class 60, weight 0, body size 2, no properties.
    let mut header = vec![0, 60, 0, 0];
    header.extend_from_slice(&2u64.to_be_bytes());
    header.extend_from_slice(&[0, 0]);
    raw.send_bytes(&frame(2, 1, &header)).await;
    raw.send_bytes(&frame(3, 1, b"too long")).await;
    // As in RabbitMQ, the content waits for more body; the next method is the unexpected frame.
    raw.send_method(1, AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos::default()))).await;
    let close = raw.expect_close().await;
    assert_eq!(
        close.reply_text.as_str(),
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead"
    );
    assert_eq!((close.reply_code, close.class_id, close.method_id), (505, 60, 40));
}

#[tokio::test]
async fn frame_errors_read_like_rabbitmq() {
    let b = TestBroker::start().await;
    let cases: [(&[u8], u16, &str); 4] = [
        (&frame(5, 1, &[0, 1, 2]), 501, "FRAME_ERROR - type 5, all octets = <<0,1,2>>: unknown_frame"),
        (&frame(8, 0, b"abc"), 501, "FRAME_ERROR - type 8, all octets = <<\"abc\">>: unknown_frame"),
        (&frame(3, 0, b"x"), 505, "UNEXPECTED_FRAME - type 3, all octets = <<\"x\">>"),
        (b"AMQP\x00\x00\x09\x01", 501, "FRAME_ERROR - type 65, all octets = <<>>: {frame_too_large,1342177289,131064}"),
    ];
    for (bytes, code, text) in cases {
        let mut raw = RawClient::open(b.addr).await;
        raw.send_bytes(bytes).await;
        let close = raw.expect_close().await;
        assert_eq!((close.reply_code, close.reply_text.as_str(), close.class_id), (code, text, 0));
    }
}

#[tokio::test]
async fn unknown_methods_and_bad_tables_close_the_socket() {
    let b = TestBroker::start().await;
    let table = [1, b'k', b'Z', 0, 0, 0, 1];
    let mut declare = vec![0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0, table.len() as u8];
    declare.extend_from_slice(&table);
    for payload in [&[0, 99, 0, 10][..], &[0, 60, 0, 99][..], &declare[..]] {
        let mut raw = RawClient::open(b.addr).await;
        open_channel(&mut raw, 1).await;
        raw.send_bytes(&frame(1, 1, payload)).await;
        raw.expect_silent_close().await;
    }
}

#[tokio::test]
async fn a_stray_body_on_a_closing_channel_is_505() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    let missing = queue::Declare { queue: "missing".into(), passive: true, ..Default::default() };
    raw.send_method(1, AMQPClass::Queue(queue::AMQPMethod::Declare(missing))).await;
    assert!(raw.recv().await.is_some(), "channel.close");
    raw.send_bytes(&frame(3, 1, b"stray")).await;
    let close = raw.expect_close().await;
    assert_eq!(close.reply_text.as_str(), "UNEXPECTED_FRAME - expected method frame, got non method frame instead");
}

#[tokio::test]
async fn frames_on_a_closed_channel_are_dropped_until_close_ok() {
    let b = TestBroker::start().await;
    let mut raw = RawClient::open(b.addr).await;
    open_channel(&mut raw, 1).await;
    // A soft error closes the channel...
    raw.send_method(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: "missing".into(),
            passive: true,
            ..Default::default()
        })),
    )
    .await;
    match raw.recv().await {
        Some(warren_broker::connection::codec::Frame::Method(1, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) => {
            assert_eq!(c.reply_code, 404);
            assert_eq!((c.class_id, c.method_id), (50, 10));
        }
        other => panic!("expected channel.close, got {other:?}"),
    }
    // ...and what the client sends before close-ok is ignored, content included.
    raw.send_method(1, AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish::default()))).await;
    let mut header = vec![0, 60, 0, 0];
    header.extend_from_slice(&7u64.to_be_bytes());
    header.extend_from_slice(&[0, 0]);
    raw.send_bytes(&frame(2, 1, &header)).await;
    raw.send_bytes(&frame(3, 1, b"ignored")).await;
    raw.send_method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))).await;
    // The channel id can be opened again.
    raw.send_method(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await;
    assert!(matches!(
        raw.recv().await,
        Some(warren_broker::connection::codec::Frame::Method(1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))))
    ));
}
