//! Consumer extensions: x-priority, single active consumer, exclusive consumers,
//! consumer_cancel_notify, and direct reply-to.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};

async fn publish(ch: &lapin::Channel, queue: &str, body: &[u8]) {
    ch.basic_publish("".into(), queue.into(), Default::default(), body, BasicProperties::default()).await.unwrap();
}

fn priority(p: i32) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-priority".into(), AMQPValue::LongInt(p));
    t
}

#[tokio::test]
async fn higher_priority_consumer_gets_messages_while_it_has_credit() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("cp".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut low = ch.basic_consume("cp".into(), "low".into(), Default::default(), priority(1)).await.unwrap();
    let mut high = ch.basic_consume("cp".into(), "high".into(), Default::default(), priority(10)).await.unwrap();
    for i in 0..3 {
        publish(&ch, "cp", format!("m{i}").as_bytes()).await;
    }
    for i in 0..3 {
        let d = next_delivery(&mut high).await;
        assert_eq!(d.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut low).await;
}

#[tokio::test]
async fn lower_priority_consumer_gets_messages_when_higher_is_full() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    ch.queue_declare("cp2".into(), Default::default(), FieldTable::default()).await.unwrap();
    let ch_high = c.create_channel().await.unwrap();
    ch_high.basic_qos(1, Default::default()).await.unwrap();
    let mut high = ch_high.basic_consume("cp2".into(), "high".into(), Default::default(), priority(10)).await.unwrap();
    let mut low = ch.basic_consume("cp2".into(), "low".into(), Default::default(), priority(1)).await.unwrap();
    publish(&ch, "cp2", b"a").await;
    publish(&ch, "cp2", b"b").await;
    assert_eq!(next_delivery(&mut high).await.data, b"a");
    assert_eq!(next_delivery(&mut low).await.data, b"b");
}

#[tokio::test]
async fn invalid_consumer_priority_is_406() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("cp3".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-priority".into(), AMQPValue::LongString("high".into()));
    let err = ch.basic_consume("cp3".into(), "".into(), Default::default(), args).await.unwrap_err();
    assert_eq!(code(&err), 406);
}

#[tokio::test]
async fn single_active_consumer_fails_over_on_cancel() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    ch.queue_declare("sac".into(), Default::default(), args).await.unwrap();
    let mut first =
        ch.basic_consume("sac".into(), "first".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut second =
        ch.basic_consume("sac".into(), "second".into(), Default::default(), FieldTable::default()).await.unwrap();
    for body in [b"1", b"2"] {
        publish(&ch, "sac", body).await;
    }
    let opts = BasicAckOptions::default();
    next_delivery(&mut first).await.ack(opts).await.unwrap();
    next_delivery(&mut first).await.ack(opts).await.unwrap();
    assert_no_delivery(&mut second).await;
    ch.basic_cancel("first".into(), Default::default()).await.unwrap();
    publish(&ch, "sac", b"3").await;
    assert_eq!(next_delivery(&mut second).await.data, b"3");
}

#[tokio::test]
async fn exclusive_consumer_refuses_a_second_one() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    ch.queue_declare("ex".into(), Default::default(), FieldTable::default()).await.unwrap();
    let opts = BasicConsumeOptions { exclusive: true, ..Default::default() };
    // Kept alive: lapin cancels a consumer when it is dropped.
    let _one = ch.basic_consume("ex".into(), "one".into(), opts, FieldTable::default()).await.unwrap();
    let other = c.create_channel().await.unwrap();
    let second = other.basic_consume("ex".into(), "two".into(), Default::default(), FieldTable::default()).await;
    // lapin may resolve the consume before it sees the channel.close; the next call reports it.
    let err = match second {
        Err(e) => e,
        Ok(_) => other.basic_qos(0, Default::default()).await.unwrap_err(),
    };
    assert_eq!(code(&err), 403);
}

#[tokio::test]
async fn deleting_the_queue_cancels_its_consumers() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("gone".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut consumer =
        ch.basic_consume("gone".into(), "c".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_delete("gone".into(), Default::default()).await.unwrap();
    // lapin advertises consumer_cancel_notify: the server's basic.cancel ends the stream.
    let end = tokio::time::timeout(WAIT, consumer.next()).await.expect("cancelled in time");
    assert!(end.is_none(), "{end:?}");
}

#[tokio::test]
async fn direct_reply_to_round_trip() {
    let b = TestBroker::start().await;
    let (_c, client) = b.channel().await;
    let (_s, server) = b.channel().await;
    server.queue_declare("rpc".into(), Default::default(), FieldTable::default()).await.unwrap();
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let mut replies =
        client.basic_consume("amq.rabbitmq.reply-to".into(), "".into(), no_ack, FieldTable::default()).await.unwrap();
    let props =
        BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into()).with_correlation_id("42".into());
    client.basic_publish("".into(), "rpc".into(), Default::default(), b"ping", props).await.unwrap();
    let mut requests = server.basic_consume("rpc".into(), "".into(), no_ack, FieldTable::default()).await.unwrap();
    let req = next_delivery(&mut requests).await;
    let reply_to = req.properties.reply_to().clone().expect("reply_to");
    assert!(reply_to.as_str().starts_with("amq.rabbitmq.reply-to."), "{reply_to}");
    let props = BasicProperties::default().with_correlation_id("42".into());
    server.basic_publish("".into(), reply_to.as_str().into(), Default::default(), b"pong", props).await.unwrap();
    let reply = next_delivery(&mut replies).await;
    assert_eq!(reply.data, b"pong");
    assert_eq!(reply.properties.correlation_id().as_ref().map(|s| s.as_str()), Some("42"));
}

#[tokio::test]
async fn direct_reply_to_errors() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    let err = ch
        .basic_consume("amq.rabbitmq.reply-to".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    let props = BasicProperties::default().with_reply_to("amq.rabbitmq.reply-to".into());
    assert_eq!(publish_error(&ch, "", "nowhere", Default::default(), b"x", props).await, 406);
}
