//! RabbitMQ queue extensions: TTLs, length limits, overflow, dead-lettering, priorities,
//! x-expires and argument validation.

mod common;

use std::time::Duration;

use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

async fn declare(ch: &lapin::Channel, name: &str, arguments: FieldTable) {
    ch.queue_declare(name.into(), Default::default(), arguments).await.unwrap();
}

async fn publish(ch: &lapin::Channel, queue: &str, body: &[u8], props: BasicProperties) {
    ch.basic_publish("".into(), queue.into(), Default::default(), body, props).await.unwrap();
}

async fn get_body(ch: &lapin::Channel, queue: &str) -> Option<Vec<u8>> {
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.unwrap().map(|m| m.delivery.data)
}

async fn count(ch: &lapin::Channel, queue: &str) -> u32 {
    let opts = QueueDeclareOptions { passive: true, ..Default::default() };
    ch.queue_declare(queue.into(), opts, FieldTable::default()).await.unwrap().message_count()
}

/// Declare a fanout dead-letter exchange with a queue bound to it.
async fn dlx(ch: &lapin::Channel, exchange: &str, queue: &str) {
    ch.exchange_declare(exchange.into(), lapin::ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    declare(ch, queue, FieldTable::default()).await;
    ch.queue_bind(queue.into(), exchange.into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
}

fn x_death(d: &lapin::message::Delivery) -> FieldTable {
    let headers = d.properties.headers().clone().expect("headers");
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else { panic!("no x-death: {headers:?}") };
    let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first() else { panic!("empty x-death") };
    first.clone()
}

#[tokio::test]
async fn queue_message_ttl_drops_old_messages() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "ttl", args(&[("x-message-ttl", AMQPValue::LongInt(50))])).await;
    publish(&ch, "ttl", b"old", BasicProperties::default()).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    publish(&ch, "ttl", b"fresh", BasicProperties::default()).await;
    assert_eq!(get_body(&ch, "ttl").await.as_deref(), Some(&b"fresh"[..]));
    assert_eq!(get_body(&ch, "ttl").await, None);
}

#[tokio::test]
async fn per_message_expiration_and_invalid_expiration() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "exp", FieldTable::default()).await;
    publish(&ch, "exp", b"short", BasicProperties::default().with_expiration("20".into())).await;
    publish(&ch, "exp", b"long", BasicProperties::default().with_expiration("60000".into())).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count(&ch, "exp").await, 1);
    assert_eq!(get_body(&ch, "exp").await.as_deref(), Some(&b"long"[..]));
    let props = BasicProperties::default().with_expiration("soon".into());
    assert_eq!(publish_error(&ch, "", "exp", Default::default(), b"x", props).await, 406);
}

#[tokio::test]
async fn expired_messages_are_dead_lettered_by_the_timer() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    dlx(&ch, "dlx.ttl", "dead.ttl").await;
    declare(
        &ch,
        "delay",
        args(&[("x-message-ttl", AMQPValue::LongInt(50)), ("x-dead-letter-exchange", text("dlx.ttl"))]),
    )
    .await;
    let mut consumer =
        ch.basic_consume("dead.ttl".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    publish(&ch, "delay", b"later", BasicProperties::default()).await;
    // Nobody touches the queue: the expiry timer dead-letters the message.
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"later");
    assert_eq!(d.exchange.as_str(), "dlx.ttl");
    assert_eq!(d.routing_key.as_str(), "delay");
    let death = x_death(&d);
    assert_eq!(death.inner().get("reason"), Some(&text("expired")));
    assert_eq!(death.inner().get("queue"), Some(&text("delay")));
    assert_eq!(death.inner().get("count"), Some(&AMQPValue::LongLongInt(1)));
}

#[tokio::test]
async fn rejected_messages_are_dead_lettered_with_routing_key() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "parking", FieldTable::default()).await;
    declare(&ch, "work", args(&[("x-dead-letter-exchange", text("")), ("x-dead-letter-routing-key", text("parking"))]))
        .await;
    publish(&ch, "work", b"bad", BasicProperties::default().with_message_id("m1".into())).await;
    let mut consumer =
        ch.basic_consume("work".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let d = next_delivery(&mut consumer).await;
    d.reject(BasicRejectOptions { requeue: false }).await.unwrap();
    let mut parked =
        ch.basic_consume("parking".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let d = next_delivery(&mut parked).await;
    assert_eq!(d.data, b"bad");
    assert_eq!(d.routing_key.as_str(), "parking");
    assert_eq!(d.properties.message_id().as_ref().map(|s| s.as_str()), Some("m1"));
    let death = x_death(&d);
    assert_eq!(death.inner().get("reason"), Some(&text("rejected")));
    let headers = d.properties.headers().clone().unwrap();
    assert_eq!(headers.inner().get("x-first-death-queue"), Some(&text("work")));
}

#[tokio::test]
async fn max_length_drops_head_into_dead_letter_exchange() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    dlx(&ch, "dlx.len", "dead.len").await;
    declare(
        &ch,
        "short",
        args(&[("x-max-length", AMQPValue::LongInt(2)), ("x-dead-letter-exchange", text("dlx.len"))]),
    )
    .await;
    for body in [b"m0", b"m1", b"m2", b"m3"] {
        publish(&ch, "short", body, BasicProperties::default()).await;
    }
    assert_eq!(count(&ch, "short").await, 2);
    assert_eq!(get_body(&ch, "short").await.as_deref(), Some(&b"m2"[..]));
    let mut dead =
        ch.basic_consume("dead.len".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let d = next_delivery(&mut dead).await;
    assert_eq!(d.data, b"m0");
    assert_eq!(x_death(&d).inner().get("reason"), Some(&text("maxlen")));
}

#[tokio::test]
async fn max_length_bytes_limits_ready_bytes() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "bytes", args(&[("x-max-length-bytes", AMQPValue::LongInt(10))])).await;
    for body in [&b"12345"[..], b"67890", b"abc"] {
        publish(&ch, "bytes", body, BasicProperties::default()).await;
    }
    assert_eq!(count(&ch, "bytes").await, 2);
    assert_eq!(get_body(&ch, "bytes").await.as_deref(), Some(&b"67890"[..]));
}

#[tokio::test]
async fn reject_publish_overflow_nacks_the_publisher() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "full", args(&[("x-max-length", AMQPValue::LongInt(1)), ("x-overflow", text("reject-publish"))]))
        .await;
    ch.confirm_select(Default::default()).await.unwrap();
    let first =
        ch.basic_publish("".into(), "full".into(), Default::default(), b"fits", Default::default()).await.unwrap();
    let second =
        ch.basic_publish("".into(), "full".into(), Default::default(), b"refused", Default::default()).await.unwrap();
    assert!(first.await.unwrap().is_ack());
    assert!(second.await.unwrap().is_nack());
    assert_eq!(count(&ch, "full").await, 1);
}

#[tokio::test]
async fn priority_queue_delivers_highest_first() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "prio", args(&[("x-max-priority", AMQPValue::ShortShortUInt(5))])).await;
    for p in [1u8, 9, 0, 3] {
        let props = BasicProperties::default().with_priority(p);
        publish(&ch, "prio", format!("p{p}").as_bytes(), props).await;
    }
    // 9 is above the maximum: it counts as 5, and still comes first.
    let mut got = Vec::new();
    while let Some(body) = get_body(&ch, "prio").await {
        got.push(String::from_utf8(body).unwrap());
    }
    assert_eq!(got, ["p9", "p3", "p1", "p0"]);
}

#[tokio::test]
async fn x_expires_deletes_an_unused_queue() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "temp", args(&[("x-expires", AMQPValue::LongInt(100))])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let opts = QueueDeclareOptions { passive: true, ..Default::default() };
    let err = ch.queue_declare("temp".into(), opts, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 404);
}

#[tokio::test]
async fn x_expires_waits_for_consumers_to_leave() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "used", args(&[("x-expires", AMQPValue::LongInt(100))])).await;
    let consumer =
        ch.basic_consume("used".into(), "c".into(), Default::default(), FieldTable::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&ch, "used").await, 0);
    ch.basic_cancel("c".into(), Default::default()).await.unwrap();
    drop(consumer);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let opts = QueueDeclareOptions { passive: true, ..Default::default() };
    assert_eq!(code(&ch.queue_declare("used".into(), opts, FieldTable::default()).await.unwrap_err()), 404);
}

#[tokio::test]
async fn invalid_arguments_are_refused_with_406() {
    let b = TestBroker::start().await;
    let conn = b.connect().await;
    for bad in [
        args(&[("x-message-ttl", AMQPValue::LongInt(-1))]),
        args(&[("x-message-ttl", text("soon"))]),
        args(&[("x-expires", AMQPValue::LongInt(0))]),
        args(&[("x-max-length", AMQPValue::LongInt(-5))]),
        args(&[("x-overflow", text("nope"))]),
        args(&[("x-max-priority", AMQPValue::LongInt(256))]),
        args(&[("x-dead-letter-routing-key", text("k"))]),
        args(&[("x-single-active-consumer", AMQPValue::LongInt(1))]),
        args(&[("x-queue-mode", text("fast"))]),
    ] {
        let ch = conn.create_channel().await.unwrap();
        let err = ch.queue_declare("bad".into(), Default::default(), bad.clone()).await.unwrap_err();
        assert_eq!(code(&err), 406, "{bad:?}");
    }
    let ch = conn.create_channel().await.unwrap();
    declare(&ch, "lazy", args(&[("x-queue-mode", text("lazy"))])).await;
}
