//! basic.*: publish, consume, get, ack/nack/reject, qos, recover, round-robin, requeue order.

mod common;

use common::*;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};

async fn declare(ch: &lapin::Channel, name: &str) {
    ch.queue_declare(name.into(), Default::default(), FieldTable::default()).await.unwrap();
}

async fn publish(ch: &lapin::Channel, queue: &str, body: &[u8]) {
    ch.basic_publish("".into(), queue.into(), Default::default(), body, BasicProperties::default()).await.unwrap();
}

#[tokio::test]
async fn properties_and_headers_round_trip() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "props").await;
    let mut headers = FieldTable::default();
    headers.insert("int".into(), AMQPValue::LongInt(-7));
    headers.insert("long".into(), AMQPValue::LongLongInt(1 << 40));
    headers.insert("bool".into(), AMQPValue::Boolean(true));
    headers.insert("str".into(), AMQPValue::LongString("héllo".into()));
    headers.insert("double".into(), AMQPValue::Double(2.5));
    headers.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
    let mut nested = FieldTable::default();
    nested.insert("k".into(), AMQPValue::ShortShortUInt(1));
    headers.insert("table".into(), AMQPValue::FieldTable(nested));
    headers.insert("void".into(), AMQPValue::Void);
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_headers(headers)
        .with_delivery_mode(2)
        .with_priority(3)
        .with_correlation_id("corr".into())
        .with_reply_to("replies".into())
        .with_expiration("60000".into())
        .with_message_id("mid".into())
        .with_timestamp(1_700_000_000)
        .with_type("kind".into())
        .with_user_id("guest".into())
        .with_app_id("app".into());
    ch.basic_publish("".into(), "props".into(), Default::default(), b"{}", props.clone()).await.unwrap();
    let mut consumer =
        ch.basic_consume("props".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.properties, props);
    assert_eq!(d.data, b"{}");
    assert_eq!(d.routing_key.as_str(), "props");
    assert!(!d.redelivered);
}

#[tokio::test]
async fn large_message_is_split_into_frames_and_reassembled() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "big").await;
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    publish(&ch, "big", &body).await;
    let got = ch.basic_get("big".into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("message");
    assert_eq!(got.delivery.data, body);
}

#[tokio::test]
async fn get_reports_remaining_count_and_get_empty() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "g").await;
    for i in 0..3u8 {
        publish(&ch, "g", &[i]).await;
    }
    let m = ch.basic_get("g".into(), BasicGetOptions { no_ack: false }).await.unwrap().unwrap();
    assert_eq!(m.message_count, 2);
    assert_eq!(m.delivery.data, [0]);
    m.delivery.acker.ack(Default::default()).await.unwrap();
    let m = ch.basic_get("g".into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert_eq!(m.message_count, 1);
    let _ = ch.basic_get("g".into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert!(ch.basic_get("g".into(), BasicGetOptions { no_ack: true }).await.unwrap().is_none());
}

#[tokio::test]
async fn reject_and_nack_requeue_in_original_order_with_redelivered() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "rq").await;
    for i in 0..4u8 {
        publish(&ch, "rq", &[i]).await;
    }
    let mut consumer =
        ch.basic_consume("rq".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut ds = Vec::new();
    for _ in 0..4 {
        ds.push(next_delivery(&mut consumer).await);
    }
    ch.basic_cancel(consumer.tag(), Default::default()).await.unwrap();
    // Requeue 1 and 2 (nack multiple up to tag 3 after acking tag 1), reject 4 without requeue.
    ds[0].acker.ack(Default::default()).await.unwrap();
    ch.basic_nack(ds[2].delivery_tag, BasicNackOptions { multiple: true, requeue: true }).await.unwrap();
    ch.basic_reject(ds[3].delivery_tag, BasicRejectOptions { requeue: false }).await.unwrap();
    let a = ch.basic_get("rq".into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    let b2 = ch.basic_get("rq".into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert_eq!((a.delivery.data.clone(), a.delivery.redelivered), (vec![1], true));
    assert_eq!((b2.delivery.data.clone(), b2.delivery.redelivered), (vec![2], true));
    assert!(ch.basic_get("rq".into(), BasicGetOptions { no_ack: true }).await.unwrap().is_none());
}

#[tokio::test]
async fn unknown_delivery_tag_is_406_and_double_ack_too() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    assert_eq!(error_after(&ch, ch.basic_ack(99, Default::default())).await, 406);
    let ch = c.create_channel().await.unwrap();
    declare(&ch, "da").await;
    publish(&ch, "da", b"x").await;
    let m = ch.basic_get("da".into(), BasicGetOptions { no_ack: false }).await.unwrap().unwrap();
    ch.basic_ack(m.delivery.delivery_tag, Default::default()).await.unwrap();
    assert_eq!(error_after(&ch, ch.basic_ack(m.delivery.delivery_tag, Default::default())).await, 406);
}

#[tokio::test]
async fn prefetch_limits_unacked_per_consumer() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "pf").await;
    for i in 0..5u8 {
        publish(&ch, "pf", &[i]).await;
    }
    ch.basic_qos(2, Default::default()).await.unwrap();
    let mut consumer =
        ch.basic_consume("pf".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let d1 = next_delivery(&mut consumer).await;
    let d2 = next_delivery(&mut consumer).await;
    assert_no_delivery(&mut consumer).await;
    d1.acker.ack(Default::default()).await.unwrap();
    let d3 = next_delivery(&mut consumer).await;
    assert_eq!(d3.data, [2]);
    assert_no_delivery(&mut consumer).await;
    ch.basic_ack(d3.delivery_tag, BasicAckOptions { multiple: true }).await.unwrap();
    let d4 = next_delivery(&mut consumer).await;
    let d5 = next_delivery(&mut consumer).await;
    assert_eq!((d4.data[0], d5.data[0]), (3, 4));
    drop(d2);
}

#[tokio::test]
async fn global_prefetch_is_shared_by_the_channel_consumers() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "gq1").await;
    declare(&ch, "gq2").await;
    for i in 0..3u8 {
        publish(&ch, "gq1", &[i]).await;
        publish(&ch, "gq2", &[i]).await;
    }
    ch.basic_qos(3, BasicQosOptions { global: true }).await.unwrap();
    let mut c1 = ch.basic_consume("gq1".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut c2 = ch.basic_consume("gq2".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut got = 0;
    for _ in 0..3 {
        got += 1;
        next_delivery(&mut c1).await;
    }
    assert_no_delivery(&mut c2).await;
    assert_eq!(got, 3);
    ch.basic_ack(0, BasicAckOptions { multiple: true }).await.unwrap();
    next_delivery(&mut c2).await;
}

#[tokio::test]
async fn per_consumer_qos_lifts_the_channel_limit() {
    // RabbitMQ 3.10: basic.qos global=false also removes an earlier global limit.
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "pq").await;
    for i in 0..4u8 {
        publish(&ch, "pq", &[i]).await;
    }
    ch.basic_qos(1, BasicQosOptions { global: true }).await.unwrap();
    ch.basic_qos(2, BasicQosOptions { global: false }).await.unwrap();
    let mut a = ch.basic_consume("pq".into(), "a".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut b2 = ch.basic_consume("pq".into(), "b".into(), Default::default(), FieldTable::default()).await.unwrap();
    for _ in 0..2 {
        next_delivery(&mut a).await;
        next_delivery(&mut b2).await;
    }
}

#[tokio::test]
async fn round_robin_between_consumers() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "rr").await;
    let mut c1 = ch
        .basic_consume(
            "rr".into(),
            "c1".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut c2 = ch
        .basic_consume(
            "rr".into(),
            "c2".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    for i in 0..6u8 {
        publish(&ch, "rr", &[i]).await;
    }
    let mut a = Vec::new();
    let mut bb = Vec::new();
    for _ in 0..3 {
        a.push(next_delivery(&mut c1).await.data[0]);
        bb.push(next_delivery(&mut c2).await.data[0]);
    }
    assert_eq!(a, [0, 2, 4]);
    assert_eq!(bb, [1, 3, 5]);
}

#[tokio::test]
async fn unacked_messages_return_when_the_channel_closes() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "ret").await;
    for i in 0..3u8 {
        publish(&ch, "ret", &[i]).await;
    }
    let ch2 = c.create_channel().await.unwrap();
    let mut consumer =
        ch2.basic_consume("ret".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    for _ in 0..3 {
        next_delivery(&mut consumer).await;
    }
    ch2.close(200, "bye".into()).await.unwrap();
    let mut seen = Vec::new();
    while let Some(m) = ch.basic_get("ret".into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        assert!(m.delivery.redelivered);
        seen.push(m.delivery.data[0]);
    }
    assert_eq!(seen, [0, 1, 2]);
}

#[tokio::test]
async fn unacked_messages_return_when_the_connection_drops() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "drop").await;
    for i in 0..3u8 {
        publish(&ch, "drop", &[i]).await;
    }
    {
        let (c2, ch2) = b.channel().await;
        let mut consumer =
            ch2.basic_consume("drop".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
        next_delivery(&mut consumer).await;
        c2.close(200, "bye".into()).await.unwrap();
    }
    let q = ch
        .queue_declare(
            "drop".into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.message_count(), 3);
    let m = ch.basic_get("drop".into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert_eq!((m.delivery.data[0], m.delivery.redelivered), (0, true));
}

#[tokio::test]
async fn recover_redelivers_unacked() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "rec").await;
    publish(&ch, "rec", b"a").await;
    let mut consumer =
        ch.basic_consume("rec".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let d = next_delivery(&mut consumer).await;
    assert!(!d.redelivered);
    ch.basic_recover(BasicRecoverOptions { requeue: true }).await.unwrap();
    let d = next_delivery(&mut consumer).await;
    assert!(d.redelivered);
    assert_eq!(d.data, b"a");
}

#[tokio::test]
async fn consumer_tags_exclusive_consumers_and_cancel() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "ct").await;
    let generated = ch.basic_consume("ct".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    assert!(generated.tag().as_str().starts_with("amq.ctag-"));
    let _named = ch.basic_consume("ct".into(), "mine".into(), Default::default(), FieldTable::default()).await.unwrap();
    // Reusing a tag on the channel is a connection error (530).
    let err =
        ch.basic_consume("ct".into(), "mine".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 530);
    drop(c);

    let (c, ch) = b.channel().await;
    let _excl = ch
        .basic_consume(
            "ct".into(),
            "x".into(),
            BasicConsumeOptions { exclusive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let ch2 = c.create_channel().await.unwrap();
    let err = ch2.basic_consume("ct".into(), "y".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 403);
    ch.basic_cancel("x".into(), Default::default()).await.unwrap();
    let ch3 = c.create_channel().await.unwrap();
    ch3.basic_consume("ct".into(), "y".into(), Default::default(), FieldTable::default()).await.unwrap();
    // Cancelling an unknown tag is fine.
    ch3.basic_cancel("never".into(), Default::default()).await.unwrap();
}

#[tokio::test]
async fn consume_from_missing_queue_is_404() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let err = ch.basic_consume("none".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 404);
}

#[tokio::test]
async fn deleting_a_queue_cancels_its_consumers() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "gone").await;
    let mut consumer =
        ch.basic_consume("gone".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let ch2 = c.create_channel().await.unwrap();
    ch2.queue_delete("gone".into(), Default::default()).await.unwrap();
    let end = tokio::time::timeout(WAIT, futures_lite::StreamExt::next(&mut consumer)).await.expect("consumer ends");
    assert!(end.is_none(), "consumer stream should end after basic.cancel, got {end:?}");
}

#[tokio::test]
async fn mandatory_unroutable_is_returned_with_312() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = ch
        .basic_publish(
            "".into(),
            "nowhere".into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    let returned = confirm.take_message().expect("returned message");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.data, b"lost");
}

#[tokio::test]
async fn immediate_is_not_implemented_540() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    declare(&ch, "imm").await;
    assert_eq!(
        publish_error(
            &ch,
            "",
            "imm",
            BasicPublishOptions { immediate: true, ..Default::default() },
            b"x",
            BasicProperties::default()
        )
        .await,
        540
    );
    assert!(c.create_channel().await.is_err());
}

#[tokio::test]
async fn publish_to_missing_exchange_is_404() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    assert_eq!(publish_error(&ch, "missing-x", "k", Default::default(), b"x", BasicProperties::default()).await, 404);
}

#[tokio::test]
async fn user_id_must_match_the_connection_user() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    declare(&ch, "uid").await;
    let props = BasicProperties::default().with_user_id("mallory".into());
    assert_eq!(publish_error(&ch, "", "uid", Default::default(), b"x", props).await, 406);
}

#[tokio::test]
async fn max_message_size_is_enforced_from_the_header() {
    let config = warren_broker::BrokerConfig { max_message_size: 1000, ..Default::default() };
    let b = TestBroker::with_config(config).await;
    let (c, ch) = b.channel().await;
    declare(&ch, "mm").await;
    publish(&ch, "mm", &[0u8; 1000]).await;
    assert_eq!(publish_error(&ch, "", "mm", Default::default(), &[0u8; 1001], BasicProperties::default()).await, 406);
    let ch = c.create_channel().await.unwrap();
    let q = ch
        .queue_declare("mm".into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    assert_eq!(q.message_count(), 1);
}

#[tokio::test]
async fn channel_flow_active_true_is_acknowledged() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    assert!(ch.channel_flow(ChannelFlowOptions { active: true }).await.unwrap());
}
