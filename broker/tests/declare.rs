//! Exchanges and queues: declare, passive, flags, bind/unbind, purge, delete, and the reply
//! codes RabbitMQ gives for each mistake.

mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};

#[tokio::test]
async fn default_exchanges_exist_and_amq_prefix_is_reserved() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        let opts = ExchangeDeclareOptions { passive: true, ..Default::default() };
        ch.exchange_declare(name.into(), kind, opts, FieldTable::default()).await.expect(name);
    }
    // Redeclaring an existing amq.* exchange with the same attributes is fine...
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare("amq.direct".into(), ExchangeKind::Direct, durable, FieldTable::default()).await.unwrap();
    // ...but a new amq.* name is refused.
    let err = ch
        .exchange_declare("amq.mine".into(), ExchangeKind::Direct, Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), 403);
}

#[tokio::test]
async fn exchange_redeclare_mismatch_is_406_and_passive_missing_is_404() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    ch.exchange_declare("x1".into(), ExchangeKind::Direct, Default::default(), FieldTable::default()).await.unwrap();
    let err = ch
        .exchange_declare("x1".into(), ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    let err = ch.exchange_declare("x1".into(), ExchangeKind::Direct, durable, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    let passive = ExchangeDeclareOptions { passive: true, ..Default::default() };
    let err =
        ch.exchange_declare("nope".into(), ExchangeKind::Direct, passive, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 404);
    // The connection survives soft errors.
    let ch = c.create_channel().await.unwrap();
    ch.exchange_declare("x1".into(), ExchangeKind::Direct, Default::default(), FieldTable::default()).await.unwrap();
}

#[tokio::test]
async fn unknown_exchange_type_closes_the_connection_with_503() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    let err = ch
        .exchange_declare(
            "x".into(),
            ExchangeKind::Custom("nonsense".into()),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 503);
    assert!(c.create_channel().await.is_err());
}

#[tokio::test]
async fn exchange_delete_if_unused_and_system_exchanges() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    ch.exchange_declare("xd".into(), ExchangeKind::Fanout, Default::default(), FieldTable::default()).await.unwrap();
    let q = ch.queue_declare("".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind(q.name().clone(), "xd".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let err = ch
        .exchange_delete("xd".into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 406);
    let ch = c.create_channel().await.unwrap();
    ch.exchange_delete("xd".into(), Default::default()).await.unwrap();
    // Deleting a missing exchange is not an error.
    ch.exchange_delete("xd".into(), Default::default()).await.unwrap();
    let err = ch.exchange_delete("amq.fanout".into(), Default::default()).await.unwrap_err();
    assert_eq!(code(&err), 403);
}

#[tokio::test]
async fn internal_exchange_refuses_publishes() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let internal = ExchangeDeclareOptions { internal: true, ..Default::default() };
    ch.exchange_declare("xi".into(), ExchangeKind::Fanout, internal, FieldTable::default()).await.unwrap();
    assert_eq!(publish_error(&ch, "xi", "", Default::default(), b"x", BasicProperties::default()).await, 403);
}

#[tokio::test]
async fn server_named_queues_and_declare_ok_counts() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let q = ch.queue_declare("".into(), Default::default(), FieldTable::default()).await.unwrap();
    assert!(q.name().as_str().starts_with("amq.gen-"), "{}", q.name());
    for _ in 0..3 {
        ch.basic_publish("".into(), q.name().clone(), Default::default(), b"m", BasicProperties::default())
            .await
            .unwrap();
    }
    ch.basic_qos(0, Default::default()).await.unwrap(); // a round trip: publishes are in
    let again = ch
        .queue_declare(
            q.name().clone(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.message_count(), 3);
    assert_eq!(again.consumer_count(), 0);
}

#[tokio::test]
async fn queue_errors() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let err = ch.queue_declare("missing".into(), passive, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 404);

    let ch = c.create_channel().await.unwrap();
    let err = ch.queue_declare("amq.q".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 403);

    let ch = c.create_channel().await.unwrap();
    ch.queue_declare("q1".into(), Default::default(), FieldTable::default()).await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let err = ch.queue_declare("q1".into(), durable, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 406);

    let ch = c.create_channel().await.unwrap();
    let err = ch
        .queue_bind("q1".into(), "no-such-exchange".into(), "k".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), 404);

    let ch = c.create_channel().await.unwrap();
    let err = ch
        .queue_bind("no-such-queue".into(), "amq.direct".into(), "k".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), 404);

    let ch = c.create_channel().await.unwrap();
    let err =
        ch.queue_bind("q1".into(), "".into(), "k".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 403);

    let ch = c.create_channel().await.unwrap();
    let err = ch.queue_purge("missing".into(), Default::default()).await.unwrap_err();
    assert_eq!(code(&err), 404);
}

#[tokio::test]
async fn exclusive_queue_is_locked_to_its_connection_and_vanishes_with_it() {
    let b = TestBroker::start().await;
    let (c1, ch1) = b.channel().await;
    let excl = QueueDeclareOptions { exclusive: true, ..Default::default() };
    ch1.queue_declare("mine".into(), excl, FieldTable::default()).await.unwrap();

    let (_c2, ch2) = b.channel().await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let err = ch2.queue_declare("mine".into(), passive, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 405);
    let ch2 = _c2.create_channel().await.unwrap();
    let err = ch2.basic_consume("mine".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 405);

    c1.close(200, "bye".into()).await.unwrap();
    let ch2 = _c2.create_channel().await.unwrap();
    let err = ch2.queue_declare("mine".into(), passive, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 404);
}

#[tokio::test]
async fn auto_delete_queue_goes_with_its_last_consumer() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    let ad = QueueDeclareOptions { auto_delete: true, ..Default::default() };
    ch.queue_declare("ad".into(), ad, FieldTable::default()).await.unwrap();
    let consumer = ch.basic_consume("ad".into(), "c1".into(), Default::default(), FieldTable::default()).await.unwrap();
    drop(consumer);
    ch.basic_cancel("c1".into(), Default::default()).await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let err = ch.queue_declare("ad".into(), passive, FieldTable::default()).await.unwrap_err();
    assert_eq!(code(&err), 404);
    drop(c);
}

#[tokio::test]
async fn purge_and_delete_report_counts_and_guard_flags() {
    let b = TestBroker::start().await;
    let (c, ch) = b.channel().await;
    ch.queue_declare("pd".into(), Default::default(), FieldTable::default()).await.unwrap();
    for _ in 0..4 {
        ch.basic_publish("".into(), "pd".into(), Default::default(), b"m", BasicProperties::default()).await.unwrap();
    }
    assert_eq!(ch.queue_purge("pd".into(), Default::default()).await.unwrap(), 4);
    ch.basic_publish("".into(), "pd".into(), Default::default(), b"m", BasicProperties::default()).await.unwrap();
    let err =
        ch.queue_delete("pd".into(), QueueDeleteOptions { if_empty: true, ..Default::default() }).await.unwrap_err();
    assert_eq!(code(&err), 406);

    let ch = c.create_channel().await.unwrap();
    let _consumer = ch.basic_consume("pd".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let ch2 = c.create_channel().await.unwrap();
    let err =
        ch2.queue_delete("pd".into(), QueueDeleteOptions { if_unused: true, ..Default::default() }).await.unwrap_err();
    assert_eq!(code(&err), 406);
    let ch3 = c.create_channel().await.unwrap();
    ch3.queue_declare("pd2".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch3.basic_publish("".into(), "pd2".into(), Default::default(), b"m", BasicProperties::default()).await.unwrap();
    ch3.basic_publish("".into(), "pd2".into(), Default::default(), b"m", BasicProperties::default()).await.unwrap();
    assert_eq!(ch3.queue_delete("pd2".into(), Default::default()).await.unwrap(), 2);
    // Deleting a missing queue is fine and reports 0.
    assert_eq!(ch3.queue_delete("pd2".into(), Default::default()).await.unwrap(), 0);
}

#[tokio::test]
async fn unbind_stops_routing() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("ub".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind("ub".into(), "amq.direct".into(), "k".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.basic_publish("amq.direct".into(), "k".into(), Default::default(), b"1", BasicProperties::default())
        .await
        .unwrap();
    ch.queue_unbind("ub".into(), "amq.direct".into(), "k".into(), FieldTable::default()).await.unwrap();
    ch.basic_publish("amq.direct".into(), "k".into(), Default::default(), b"2", BasicProperties::default())
        .await
        .unwrap();
    let got = ch.basic_get("ub".into(), BasicGetOptions { no_ack: true }).await.unwrap().expect("one message");
    assert_eq!(got.delivery.data, b"1");
    assert!(ch.basic_get("ub".into(), BasicGetOptions { no_ack: true }).await.unwrap().is_none());
}

#[tokio::test]
async fn unbind_of_what_is_missing_is_ok() {
    // RabbitMQ 3.10: no binding, no queue or no exchange: unbind-ok all the same.
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    ch.queue_declare("ubm".into(), Default::default(), FieldTable::default()).await.unwrap();
    for (queue, exchange) in [("ubm", "amq.direct"), ("no-such-queue", "amq.direct"), ("ubm", "no-such-exchange")] {
        ch.queue_unbind(queue.into(), exchange.into(), "k".into(), FieldTable::default()).await.unwrap();
    }
}

#[tokio::test]
async fn headers_binding_with_a_bad_x_match_is_406() {
    let b = TestBroker::start().await;
    let (conn, ch) = b.channel().await;
    ch.queue_declare("hb".into(), Default::default(), FieldTable::default()).await.unwrap();
    for value in [AMQPValue::LongString("some".into()), AMQPValue::LongInt(1)] {
        let ch = conn.create_channel().await.unwrap();
        let mut args = FieldTable::default();
        args.insert("x-match".into(), value);
        let err = ch.queue_bind("hb".into(), "amq.headers".into(), "".into(), Default::default(), args).await;
        assert_eq!(code(&err.expect_err("bind refused")), 406);
    }
    let mut args = FieldTable::default();
    args.insert("x-match".into(), AMQPValue::LongString("any-with-x".into()));
    ch.queue_bind("hb".into(), "amq.headers".into(), "".into(), Default::default(), args).await.unwrap();
}

#[tokio::test]
async fn routing_by_exchange_type() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    for (x, kind) in [
        ("rt.direct", ExchangeKind::Direct),
        ("rt.fanout", ExchangeKind::Fanout),
        ("rt.topic", ExchangeKind::Topic),
        ("rt.headers", ExchangeKind::Headers),
    ] {
        ch.exchange_declare(x.into(), kind, Default::default(), FieldTable::default()).await.unwrap();
    }
    let mut queues = Vec::new();
    for i in 0..4 {
        let name = format!("rq{i}");
        ch.queue_declare(name.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
        queues.push(name);
    }
    let bind = |q: &str, x: &str, k: &str, args: FieldTable| {
        let ch = ch.clone();
        let (q, x, k) = (q.to_owned(), x.to_owned(), k.to_owned());
        async move {
            ch.queue_bind(q.as_str().into(), x.as_str().into(), k.as_str().into(), Default::default(), args)
                .await
                .unwrap()
        }
    };
    bind("rq0", "rt.direct", "a", FieldTable::default()).await;
    bind("rq1", "rt.direct", "b", FieldTable::default()).await;
    bind("rq0", "rt.fanout", "ignored", FieldTable::default()).await;
    bind("rq1", "rt.fanout", "", FieldTable::default()).await;
    bind("rq2", "rt.topic", "stock.*.nyse", FieldTable::default()).await;
    bind("rq3", "rt.topic", "stock.#", FieldTable::default()).await;
    bind("rq3", "rt.topic", "#.nyse", FieldTable::default()).await; // same queue twice: one copy
    let mut all = FieldTable::default();
    all.insert("x-match".into(), AMQPValue::LongString("all".into()));
    all.insert("color".into(), AMQPValue::LongString("red".into()));
    all.insert("size".into(), AMQPValue::LongInt(3));
    bind("rq0", "rt.headers", "", all).await;
    let mut any = FieldTable::default();
    any.insert("x-match".into(), AMQPValue::LongString("any".into()));
    any.insert("color".into(), AMQPValue::LongString("red".into()));
    any.insert("size".into(), AMQPValue::LongInt(9));
    bind("rq1", "rt.headers", "", any).await;

    let publish = |x: &str, k: &str, body: &str, headers: Option<FieldTable>| {
        let ch = ch.clone();
        let (x, k, body) = (x.to_owned(), k.to_owned(), body.to_owned());
        async move {
            let mut props = BasicProperties::default();
            if let Some(h) = headers {
                props = props.with_headers(h);
            }
            ch.basic_publish(x.as_str().into(), k.as_str().into(), Default::default(), body.as_bytes(), props)
                .await
                .unwrap();
        }
    };
    publish("rt.direct", "a", "d-a", None).await;
    publish("rt.direct", "b", "d-b", None).await;
    publish("rt.direct", "c", "d-c", None).await;
    publish("rt.fanout", "whatever", "f", None).await;
    publish("rt.topic", "stock.usd.nyse", "t1", None).await;
    publish("rt.topic", "stock.eur", "t2", None).await;
    publish("rt.topic", "bond.nyse", "t3", None).await;
    let mut red3 = FieldTable::default();
    red3.insert("color".into(), AMQPValue::LongString("red".into()));
    red3.insert("size".into(), AMQPValue::LongInt(3));
    publish("rt.headers", "", "h-both", Some(red3)).await;
    let mut blue9 = FieldTable::default();
    blue9.insert("color".into(), AMQPValue::LongString("blue".into()));
    blue9.insert("size".into(), AMQPValue::LongInt(9));
    publish("rt.headers", "", "h-any", Some(blue9)).await;

    let mut drained = Vec::new();
    for q in &queues {
        let mut bodies = Vec::new();
        while let Some(m) = ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap() {
            bodies.push(String::from_utf8(m.delivery.data).unwrap());
        }
        drained.push(bodies);
    }
    assert_eq!(drained[0], ["d-a", "f", "h-both"]);
    assert_eq!(drained[1], ["d-b", "f", "h-both", "h-any"]);
    assert_eq!(drained[2], ["t1"]);
    assert_eq!(drained[3], ["t1", "t2", "t3"]);
}
