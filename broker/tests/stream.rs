//! Stream queues over AMQP 0-9-1: declaration rules, offsets, non-destructive reads, credit.

mod common;

use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};

fn stream_args() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("stream")));
    t
}

fn offset(at: AMQPValue) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-stream-offset".into(), at);
    t
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions { durable: true, ..Default::default() }
}

async fn declare_stream(ch: &lapin::Channel, name: &str) {
    ch.queue_declare(name.into(), durable(), stream_args()).await.unwrap();
}

async fn publish_all(ch: &lapin::Channel, queue: &str, bodies: &[&[u8]]) {
    ch.confirm_select(Default::default()).await.unwrap();
    for b in bodies {
        let c = ch.basic_publish("".into(), queue.into(), Default::default(), b, BasicProperties::default());
        assert!(c.await.unwrap().await.unwrap().is_ack());
    }
}

fn stream_offset(d: &lapin::message::Delivery) -> i64 {
    match d.properties.headers().as_ref().and_then(|h| h.inner().get("x-stream-offset")) {
        Some(AMQPValue::LongLongInt(n)) => *n,
        other => panic!("no x-stream-offset header: {other:?}"),
    }
}

#[tokio::test]
async fn consumers_read_from_first_offset_and_next_without_removing() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare_stream(&ch, "s1").await;
    publish_all(&ch, "s1", &[b"a", b"b", b"c"]).await;
    let (_c2, reader) = b.channel().await;
    reader.basic_qos(10, Default::default()).await.unwrap();
    for (at, expected) in [
        (AMQPValue::LongString(LongString::from("first")), vec![0, 1, 2]),
        (AMQPValue::LongLongInt(1), vec![1, 2]),
        (AMQPValue::LongString(LongString::from("last")), vec![2]),
    ] {
        let mut consumer = reader.basic_consume("s1".into(), "".into(), Default::default(), offset(at)).await.unwrap();
        for want in expected {
            let d = next_delivery(&mut consumer).await;
            assert_eq!(stream_offset(&d), want);
            d.acker.ack(Default::default()).await.unwrap();
        }
        assert_no_delivery(&mut consumer).await;
    }
    // "next" (the default) sees only what comes after it subscribed.
    let mut tail =
        reader.basic_consume("s1".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    assert_no_delivery(&mut tail).await;
    let ch2 = _c.create_channel().await.unwrap();
    publish_all(&ch2, "s1", &[b"d"]).await;
    let d = next_delivery(&mut tail).await;
    assert_eq!((d.data.as_slice(), stream_offset(&d)), (&b"d"[..], 3));
    // Reading removed nothing: a new reader from the start sees all four.
    let first = offset(AMQPValue::LongString(LongString::from("first")));
    let mut again = reader.basic_consume("s1".into(), "".into(), Default::default(), first).await.unwrap();
    for want in 0..4 {
        assert_eq!(stream_offset(&next_delivery(&mut again).await), want);
    }
    // Like RabbitMQ 3.10, declare-ok reports no message or consumer count for a stream.
    let q = ch.queue_declare("s1".into(), QueueDeclareOptions { passive: true, ..durable() }, FieldTable::default());
    let q = q.await.unwrap();
    assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
}

#[tokio::test]
async fn credit_limits_a_stream_consumer_until_it_acks() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare_stream(&ch, "s2").await;
    publish_all(&ch, "s2", &[b"1", b"2", b"3", b"4", b"5"]).await;
    let (_c2, reader) = b.channel().await;
    reader.basic_qos(2, Default::default()).await.unwrap();
    let first = offset(AMQPValue::LongString(LongString::from("first")));
    let mut consumer = reader.basic_consume("s2".into(), "".into(), Default::default(), first).await.unwrap();
    let d0 = next_delivery(&mut consumer).await;
    let d1 = next_delivery(&mut consumer).await;
    assert_no_delivery(&mut consumer).await;
    d0.acker.ack(Default::default()).await.unwrap();
    d1.acker.ack(Default::default()).await.unwrap();
    assert_eq!(stream_offset(&next_delivery(&mut consumer).await), 2);
}

#[tokio::test]
async fn stream_rules_as_rabbitmq() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    // Streams are durable, never exclusive or auto-delete.
    let err = ch.queue_declare("s3".into(), Default::default(), stream_args()).await.unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    let opts = QueueDeclareOptions { auto_delete: true, ..durable() };
    assert_eq!(code(&ch.queue_declare("s3".into(), opts, stream_args()).await.unwrap_err()), 406);
    let ch = c.create_channel().await.unwrap();
    declare_stream(&ch, "s3").await;
    // No prefetch: refused; autoack: refused; basic.get: refused.
    let err = ch.basic_consume("s3".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 406);
    // A bad retention value is refused.
    let ch = c.create_channel().await.unwrap();
    let mut args = stream_args();
    args.insert("x-max-age".into(), AMQPValue::LongString(LongString::from("7 days")));
    assert_eq!(code(&ch.queue_declare("s4".into(), durable(), args).await.unwrap_err()), 406);
    // Autoack and basic.get: 540 NOT_IMPLEMENTED, which closes the connection (RabbitMQ).
    let ch = c.create_channel().await.unwrap();
    ch.basic_qos(5, Default::default()).await.unwrap();
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    assert_eq!(code(&ch.basic_consume("s3".into(), "".into(), no_ack, FieldTable::default()).await.unwrap_err()), 540);
    let (_c, ch) = b.channel().await;
    assert_eq!(code(&ch.basic_get("s3".into(), Default::default()).await.unwrap_err()), 540);
    let (_c, ch) = b.channel().await;
    assert_eq!(code(&ch.queue_purge("s3".into(), Default::default()).await.unwrap_err()), 540);
}

#[tokio::test]
async fn stream_bound_to_a_topic_exchange_keeps_every_routed_message() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare_stream(&ch, "room").await;
    ch.exchange_declare("chat".into(), lapin::ExchangeKind::Topic, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind("room".into(), "chat".into(), "room.#".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    for key in ["room.a", "other", "room.b"] {
        let c = ch.basic_publish("chat".into(), key.into(), Default::default(), key.as_bytes(), Default::default());
        c.await.unwrap().await.unwrap();
    }
    let (_c2, reader) = b.channel().await;
    reader.basic_qos(10, Default::default()).await.unwrap();
    let first = offset(AMQPValue::LongString(LongString::from("first")));
    let mut a = reader.basic_consume("room".into(), "a".into(), Default::default(), first.clone()).await.unwrap();
    let mut bb = reader.basic_consume("room".into(), "b".into(), Default::default(), first).await.unwrap();
    for consumer in [&mut a, &mut bb] {
        assert_eq!(next_delivery(consumer).await.data, b"room.a");
        assert_eq!(next_delivery(consumer).await.data, b"room.b");
    }
}

async fn read_from_first(b: &TestBroker, queue: &str) -> Vec<Vec<u8>> {
    let (_c, reader) = b.channel().await;
    reader.basic_qos(100, Default::default()).await.unwrap();
    let first = offset(AMQPValue::LongString(LongString::from("first")));
    let mut consumer = reader.basic_consume(queue.into(), "".into(), Default::default(), first).await.unwrap();
    let mut got = Vec::new();
    while let Ok(Some(Ok(d))) = tokio::time::timeout(std::time::Duration::from_millis(300), {
        use futures_lite::StreamExt;
        consumer.next()
    })
    .await
    {
        got.push(d.data.clone());
    }
    got
}

#[tokio::test]
async fn retention_by_age_and_by_bytes() {
    // Retention drops whole chunks of the stream's index (1024 entries or 1 MiB of bodies),
    // as RabbitMQ drops whole segments: entries of 1 MiB are a chunk each.
    let mib = |fill: u8| vec![fill; 1 << 20];
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut by_age = stream_args();
    by_age.insert("x-max-age".into(), AMQPValue::LongString(LongString::from("1s")));
    ch.queue_declare("aged".into(), durable(), by_age).await.unwrap();
    let mut by_bytes = stream_args();
    by_bytes.insert("x-max-length-bytes".into(), AMQPValue::LongLongInt((5 << 20) / 2));
    ch.queue_declare("sized".into(), durable(), by_bytes).await.unwrap();
    publish_all(&ch, "sized", &[&mib(b'a'), &mib(b'b'), &mib(b'c'), &mib(b'd')]).await;
    assert_eq!(read_from_first(&b, "sized").await, [mib(b'c'), mib(b'd')]);
    let ch = _c.create_channel().await.unwrap();
    publish_all(&ch, "aged", &[&mib(1), &mib(2)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let ch = _c.create_channel().await.unwrap();
    publish_all(&ch, "aged", &[&mib(3)]).await;
    assert_eq!(read_from_first(&b, "aged").await, [mib(3)]);
}
