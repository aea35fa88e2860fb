//! Exchange extensions: exchange-to-exchange bindings, alternate exchanges, internal exchanges.

mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, ExchangeKind};

async fn exchange(ch: &lapin::Channel, name: &str, kind: ExchangeKind, arguments: FieldTable) {
    ch.exchange_declare(name.into(), kind, Default::default(), arguments).await.unwrap();
}

async fn queue_bound(ch: &lapin::Channel, queue: &str, exchange: &str, key: &str) {
    ch.queue_declare(queue.into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind(queue.into(), exchange.into(), key.into(), Default::default(), FieldTable::default()).await.unwrap();
}

async fn publish(ch: &lapin::Channel, exchange: &str, key: &str, body: &[u8]) {
    ch.basic_publish(exchange.into(), key.into(), Default::default(), body, BasicProperties::default()).await.unwrap();
}

async fn get_body(ch: &lapin::Channel, queue: &str) -> Option<Vec<u8>> {
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.unwrap().map(|m| m.delivery.data)
}

#[tokio::test]
async fn exchange_to_exchange_binding_routes_and_unbinds() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "top", ExchangeKind::Topic, FieldTable::default()).await;
    exchange(&ch, "fan", ExchangeKind::Fanout, FieldTable::default()).await;
    queue_bound(&ch, "e2e", "fan", "").await;
    ch.exchange_bind("fan".into(), "top".into(), "a.*".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    publish(&ch, "top", "a.b", b"yes").await;
    publish(&ch, "top", "b.a", b"no").await;
    assert_eq!(get_body(&ch, "e2e").await.as_deref(), Some(&b"yes"[..]));
    assert_eq!(get_body(&ch, "e2e").await, None);
    ch.exchange_unbind("fan".into(), "top".into(), "a.*".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    publish(&ch, "top", "a.b", b"after").await;
    assert_eq!(get_body(&ch, "e2e").await, None);
}

#[tokio::test]
async fn exchange_binding_cycle_delivers_one_copy() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "a", ExchangeKind::Fanout, FieldTable::default()).await;
    exchange(&ch, "b", ExchangeKind::Fanout, FieldTable::default()).await;
    queue_bound(&ch, "cyc", "a", "").await;
    ch.queue_bind("cyc".into(), "b".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.exchange_bind("b".into(), "a".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.exchange_bind("a".into(), "b".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    publish(&ch, "a", "", b"once").await;
    assert_eq!(get_body(&ch, "cyc").await.as_deref(), Some(&b"once"[..]));
    assert_eq!(get_body(&ch, "cyc").await, None);
}

#[tokio::test]
async fn exchange_bind_to_missing_exchange_is_404() {
    let b = TestBroker::start().await;
    let (conn, ch) = b.channel().await;
    exchange(&ch, "x", ExchangeKind::Direct, FieldTable::default()).await;
    let err = ch.exchange_bind("x".into(), "nosrc".into(), "k".into(), Default::default(), FieldTable::default()).await;
    assert_eq!(code(&err.unwrap_err()), 404);
    let ch = conn.create_channel().await.unwrap();
    let err = ch.exchange_bind("nodst".into(), "x".into(), "k".into(), Default::default(), FieldTable::default()).await;
    assert_eq!(code(&err.unwrap_err()), 404);
}

#[tokio::test]
async fn source_of_exchange_binding_is_in_use_and_deleting_destination_unbinds() {
    let b = TestBroker::start().await;
    let (conn, ch) = b.channel().await;
    exchange(&ch, "src", ExchangeKind::Fanout, FieldTable::default()).await;
    exchange(&ch, "dst", ExchangeKind::Fanout, FieldTable::default()).await;
    ch.exchange_bind("dst".into(), "src".into(), "".into(), Default::default(), FieldTable::default()).await.unwrap();
    let err = ch.exchange_delete("src".into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() }).await;
    assert_eq!(code(&err.unwrap_err()), 406);
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_delete("dst".into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() }).await.unwrap();
    // The binding went with its destination: the source is unused now.
    ch.exchange_delete("src".into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() }).await.unwrap();
}

#[tokio::test]
async fn alternate_exchange_takes_unroutable_messages() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    exchange(&ch, "ae", ExchangeKind::Fanout, FieldTable::default()).await;
    queue_bound(&ch, "unrouted", "ae", "").await;
    let mut args = FieldTable::default();
    args.insert("alternate-exchange".into(), AMQPValue::LongString(LongString::from(b"ae".to_vec())));
    exchange(&ch, "main", ExchangeKind::Direct, args).await;
    queue_bound(&ch, "routed", "main", "known").await;
    ch.confirm_select(Default::default()).await.unwrap();
    publish(&ch, "main", "known", b"routed").await;
    let opts = BasicPublishOptions { mandatory: true, ..Default::default() };
    let confirm =
        ch.basic_publish("main".into(), "unknown".into(), opts, b"to-ae", BasicProperties::default()).await.unwrap();
    // Routed through the alternate exchange: acked, not returned.
    let confirmation = confirm.await.unwrap();
    assert!(confirmation.is_ack() && confirmation.take_message().is_none());
    assert_eq!(get_body(&ch, "routed").await.as_deref(), Some(&b"routed"[..]));
    assert_eq!(get_body(&ch, "unrouted").await.as_deref(), Some(&b"to-ae"[..]));
}

#[tokio::test]
async fn internal_exchange_refuses_publish_but_routes_via_binding() {
    let b = TestBroker::start().await;
    let (_c, ch) = b.channel().await;
    let opts = ExchangeDeclareOptions { internal: true, ..Default::default() };
    ch.exchange_declare("inner".into(), ExchangeKind::Fanout, opts, FieldTable::default()).await.unwrap();
    exchange(&ch, "outer", ExchangeKind::Fanout, FieldTable::default()).await;
    queue_bound(&ch, "behind", "inner", "").await;
    ch.exchange_bind("inner".into(), "outer".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    publish(&ch, "outer", "", b"via").await;
    assert_eq!(get_body(&ch, "behind").await.as_deref(), Some(&b"via"[..]));
    let code = publish_error(&ch, "inner", "", Default::default(), b"x", BasicProperties::default()).await;
    assert_eq!(code, 403);
}
